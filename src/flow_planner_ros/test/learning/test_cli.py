"""Console scripts: end-to-end in process, and bad input → one line on stderr, exit 2, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flow_planner_ros.cli import diagnose as diagnose_cli
from flow_planner_ros.cli import synthetic_data as synthetic_cli
from flow_planner_ros.cli import train as train_cli


def test_synthetic_train_diagnose_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "syn.npz"
    assert synthetic_cli.main(["--num", "24", "--out", str(data), "--seed", "1"]) == 0
    config = tmp_path / "cfg.yaml"
    config.write_text("model:\n  type: dit\n  dit: {hidden_dim: 32, depth: 1, heads: 2}\ntraining:\n  batch_size: 16\n")
    ckpt = tmp_path / "m.safetensors"
    assert train_cli.main(["--data", str(data), "--config", str(config), "--out", str(ckpt), "--epochs", "1",
                           "--no-progress"]) == 0
    report = tmp_path / "report.json"
    plots = tmp_path / "plots"
    assert diagnose_cli.main(["--checkpoint", str(ckpt), "--data", str(data), "--report", str(report),
                              "--plots", str(plots), "--num", "4", "--steps", "2"]) == 0
    result = json.loads(report.read_text())
    for key in ("normalization_roundtrip_max_err", "formulation_max_err", "gt_mae", "gt_rmse", "scale_ratio",
                "sensitivity_goal", "sensitivity_start"):
        assert isinstance(result[key], float)
    assert len(list(plots.glob("*.png"))) == 2 * min(3, result["num_trajectories"]) == len(result["plots"])
    capsys.readouterr()


def test_bad_inputs_give_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"\x80\x04K\x01.")  # a pickle
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("training:\n  epochz: 3\n")
    data = tmp_path / "syn.npz"
    synthetic_cli.main(["--num", "4", "--out", str(data)])
    capsys.readouterr()
    cases = [
        (train_cli.main, ["--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "o")], "no such file"),
        (train_cli.main, ["--data", str(data), "--config", str(bad_cfg), "--out", str(tmp_path / "o")],
         "unknown config key"),
        (diagnose_cli.main, ["--checkpoint", str(pt), "--data", str(data), "--report", str(tmp_path / "r.json")],
         "not a safetensors checkpoint"),
        (synthetic_cli.main, ["--num", "0", "--out", str(tmp_path / "x.npz")], "--num must be >= 1"),
        (train_cli.main, ["--data", str(data), "--init", str(tmp_path / "none.safetensors"), "--out",
                          str(tmp_path / "o")], "--init: no checkpoint file"),
        (train_cli.main, ["--data", str(data), "--init", str(pt), "--out", str(tmp_path / "o"), "--no-progress"],
         "not a safetensors checkpoint"),
        (train_cli.main, ["--data", str(data), "--learning-rate", "-1", "--out", str(tmp_path / "o")],
         "learning_rate must be > 0"),
    ]
    for main, argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1, err


def test_installed_console_script_reports_errors_without_traceback(tmp_path: Path) -> None:
    """The real entry point (subprocess): a wrong-schema file is one clear line and a non-zero exit."""
    wrong = tmp_path / "wrong.npz"
    import numpy as np

    np.savez(wrong, trajectories=np.zeros((2, 60, 12)))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "flow_planner_ros.cli.train", "--data", str(wrong), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 2
    assert "missing keys" in proc.stderr and "Traceback" not in proc.stderr


def _small_checkpoint(path: Path) -> Path:
    """A real (untrained) checkpoint of a small UNet, as train writes it."""
    import numpy as np

    from flow_planner_ros.learning.checkpoint import make_meta, save_checkpoint
    from flow_planner_ros.learning.models import build_model
    from flow_planner_ros.learning.normalization import Normalizer

    rng = np.random.default_rng(0)
    normalizer = Normalizer.fit(rng.normal(size=(4, 60, 12)), rng.normal(size=(4, 60, 12)), rng.normal(size=(4, 36)))
    model_cfg = {"type": "unet", "unet": {"hidden_dims": [16, 32]}}
    flow_cfg = {"sigma": 0.0, "integration_steps": 2, "method": "euler", "reference": "none"}
    meta = make_meta(model_cfg, flow_cfg, False, 0.05, {"data_hash": "x", "epochs": 1})
    return save_checkpoint(path, build_model(model_cfg, 24, 36, 60), normalizer, meta)


def _edit(path: Path, out: Path, meta_changes: dict | None = None, scale: float | None = None) -> Path:
    """Copy of a checkpoint with metadata keys replaced and/or every model weight multiplied by `scale`."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from flow_planner_ros.learning.checkpoint import META_KEY

    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = json.loads(f.metadata()[META_KEY])
    meta.update(meta_changes or {})
    if scale is not None:
        tensors = {k: v * scale if k.startswith("model.") else v for k, v in tensors.items()}
    save_file(tensors, str(out), metadata={META_KEY: json.dumps(meta)})
    return out


def test_diagnose_refuses_bad_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "syn.npz"
    synthetic_cli.main(["--num", "4", "--out", str(data)])
    good = _small_checkpoint(tmp_path / "good.safetensors")
    huge = {"type": "dit", "dit": {"hidden_dim": 4096, "depth": 1000, "heads": 4}}  # ~800 GB of float32 weights
    cases = {
        "dt 100000000.0 must be": _edit(good, tmp_path / "dt_big.safetensors", {"dt": 1e8}),
        "dt 0.0 must be": _edit(good, tmp_path / "dt_zero.safetensors", {"dt": 0.0}),
        "flow.method 'evil'": _edit(good, tmp_path / "evil.safetensors", {"flow": {"method": "evil"}}),
        "non-finite values": _edit(good, tmp_path / "nan.safetensors", scale=float("nan")),
        "beyond": _edit(good, tmp_path / "1e30.safetensors", scale=1e30),
        "weights do not match the model config": _edit(good, tmp_path / "huge.safetensors", {"model": huge}),
    }
    capsys.readouterr()
    for message, checkpoint in cases.items():
        report = tmp_path / "r.json"
        argv = ["--checkpoint", str(checkpoint), "--data", str(data), "--report", str(report), "--num", "2"]
        assert diagnose_cli.main(argv) == 2, message
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1, err
        assert not report.exists()
    report = tmp_path / "r.json"
    argv = ["--checkpoint", str(good), "--data", str(data), "--report", str(report), "--num", "2", "--steps", "1"]
    assert diagnose_cli.main([*argv, "--perturbation", "nan"]) == 2  # NaN metrics are an error, not a report
    err = capsys.readouterr().err
    assert "non-finite diagnostics (perturbation_rad, sensitivity_goal" in err and err.count("\n") == 1, err
    assert not report.exists()
    assert diagnose_cli.main(argv) == 0 and report.is_file()


def test_unwritable_outputs_and_yaml_syntax_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "syn.npz"
    synthetic_cli.main(["--num", "8", "--out", str(data)])
    taken = tmp_path / "taken"
    taken.mkdir()
    broken = tmp_path / "broken.yaml"
    broken.write_text("training:\n  epochs: [1\n")
    wrong_type = tmp_path / "wrong_type.yaml"
    wrong_type.write_text("flow:\n  integration_steps: [1]\n")
    checkpoint = _small_checkpoint(tmp_path / "good.safetensors")
    diagnose_args = ["--checkpoint", str(checkpoint), "--data", str(data), "--num", "2"]
    cases = [
        (train_cli.main, ["--data", str(data), "--out", str(taken), "--epochs", "1", "--no-progress"],
         f"--out {taken} is an existing directory"),
        (train_cli.main, ["--data", str(data), "--out", "/proc/nope/m.safetensors", "--no-progress"],
         "cannot write in /proc/nope"),
        (train_cli.main, ["--data", str(data), "--config", str(broken), "--out", str(tmp_path / "o")],
         f"{broken}:3:1: invalid YAML: expected ',' or ']'"),
        (train_cli.main, ["--data", str(data), "--config", str(wrong_type), "--out", str(tmp_path / "o")],
         "flow.integration_steps must be an integer in [1, 1000]"),
        (diagnose_cli.main, [*diagnose_args, "--report", str(taken)], f"--report {taken} is an existing directory"),
    ]
    capsys.readouterr()
    for main, argv, message in cases:
        assert main(argv) == 2, message
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1, err
    assert list(taken.iterdir()) == []  # nothing was trained into or next to the directory
    assert not list(tmp_path.glob("taken.*"))
