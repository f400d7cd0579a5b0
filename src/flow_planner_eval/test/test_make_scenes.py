"""make_scenes: deterministic per seed, only valid scenes (re-checked in the simulation after reading the file back
with evaluate's loader), --template filters, bad arguments are one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_collector_ros.scene_family import TEMPLATES
from flow_planner_eval.make_scenes import generate, main


def _run(tmp_path: Path, name: str, *args: str) -> Path:
    out = tmp_path / name
    assert main(["--out", str(out), "--quiet", *args]) == 0
    return out


def test_deterministic_per_seed_and_only_valid_scenes(tmp_path: Path) -> None:
    from data_collector_ros.ik import IKSolver
    from data_collector_ros.scene_validity import check_scene
    from data_collector_ros.simulation import Simulation
    from flow_planner_eval.episodes_file import load_episodes

    a = _run(tmp_path, "a.yaml", "--seed", "3", "--count", "12")
    b = _run(tmp_path, "b.yaml", "--seed", "3", "--count", "12")
    c = _run(tmp_path, "c.yaml", "--seed", "4", "--count", "12")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert not list(tmp_path.glob("*.partial"))
    episodes = load_episodes(a, (0.42, 0.58), (-0.08, 0.08))
    assert len(episodes) == 12 and not episodes.legacy
    assert {s.template for s in episodes.scenes} <= set(TEMPLATES)
    assert any(s.obstacles for s in episodes.scenes)
    # Every written scene, exactly as read back, passes the validity filter; the generator also skipped some.
    sim = Simulation()
    ik = IKSolver(sim.model)
    for scene in episodes.scenes:
        check = check_scene(sim, ik, scene, seed=scene.grid_index)
        assert check.valid, (scene.grid_index, check.reason)
    _, skipped = generate(3, 12)
    assert skipped and all(reason for _, _, reason in skipped)
    indices = [s.grid_index for s in episodes.scenes]
    assert indices == sorted(indices) and not set(indices) & {i for i, _, _ in skipped}


def test_template_filter(tmp_path: Path) -> None:
    from flow_planner_eval.episodes_file import load_episodes

    out = _run(tmp_path, "barrier.yaml", "--seed", "1", "--count", "3", "--template", "barrier")
    scenes = load_episodes(out, (0.42, 0.58), (-0.08, 0.08)).scenes
    assert [s.template for s in scenes] == ["barrier"] * 3
    assert all(len(s.obstacles) == 1 for s in scenes)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--seed", "-1", "--count", "2"], "--seed must be in"),
        (["--seed", "x", "--count", "2"], "--seed must be an integer"),
        (["--seed", "0", "--count", "0"], "--count must be in 1..10000"),
        (["--seed", "0", "--count", "2", "--template", "pillar" * 30], "--template must be one of"),
        (["--seed", "0", "--count", "2", "--max-indices", "0"], "--max-indices must be in"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], match: str
) -> None:
    out = tmp_path / "s.yaml"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("make_scenes: error:") and match in err and "\n" not in err and len(err) < 300, err
    assert not out.exists()
    assert main(["--seed", "0", "--count", "2", "--out", str(tmp_path)]) == 2  # a directory
    assert "is a directory" in capsys.readouterr().err


def test_too_few_valid_scenes_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.yaml"
    assert main(["--seed", "0", "--count", "50", "--max-indices", "3", "--quiet", "--out", str(out)]) == 1
    assert "nothing written" in capsys.readouterr().err
    assert not out.exists()


WORKSPACE = Path(__file__).resolve().parents[3]


def test_every_shipped_episodes_file_parses() -> None:
    from flow_planner_eval.episodes_file import collector_workspace, load_episodes

    box = collector_workspace(WORKSPACE / "config" / "collector.yaml")
    files = sorted((WORKSPACE / "config").glob("eval_*.yaml"))
    assert {"eval_scenes_40.yaml", "eval_scenes_seed202.yaml"} <= {f.name for f in files}
    for path in files:
        assert len(load_episodes(path, *box)) > 0, path.name


@pytest.mark.parametrize(("name", "seed"), [("eval_scenes_40.yaml", 101), ("eval_scenes_seed202.yaml", 202)])
def test_held_out_scene_files_are_their_seeds_valid_scenes(name: str, seed: int) -> None:
    """The held-out files are exactly make_scenes' output of their family seed (8 valid scenes per template,
    interleaved barrier, bar, platform, handle_box, empty, barrier, ...), so every scene is a valid scene of it."""
    from flow_planner_eval.make_scenes import scene_yaml

    order = ("barrier", "bar", "platform", "handle_box", "empty")
    assert set(order) == set(TEMPLATES)
    per_template = {t: generate(seed, 8, template=t)[0] for t in order}
    expected = "".join(scene_yaml(per_template[t][i]) for i in range(8) for t in order)
    text = (WORKSPACE / "config" / name).read_text()
    assert f"FamilyConfig(seed={seed})" in text and f"--seed {seed}" in text
    assert text.split("\nepisodes:\n", 1)[1] == expected
