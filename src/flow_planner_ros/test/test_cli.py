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
