"""Bounded episodes files (flow_planner_common.safe_yaml, flow_planner_eval.episodes_file): an alias bomb is refused
fast with one short line from `evaluate`, oversized files and values are refused with a truncated echo, and a
workspace box off the table is refused."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flow_planner_common.safe_yaml import (
    MAX_ECHO_CHARS,
    YamlInputError,
    load_yaml_file,
    load_yaml_text,
    short_repr,
    truncate,
)
from flow_planner_eval.cli import evaluate as evaluate_cli
from flow_planner_eval.episodes_file import EpisodesError, load_episodes

BOX = ((0.42, 0.58), (-0.08, 0.08))


def billion_laughs(depth: int = 9) -> str:
    """The classic, inside tray_poses[0]: each level a list of 9 aliases of the level before (9**depth leaves)."""
    levels = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"&a{k} [" + ",".join([f"*a{k - 1}"] * 9) + "]" for k in range(1, depth)]
    return "tray_poses: [[" + ", ".join(levels) + "]]\n"


def test_anchors_and_aliases_are_refused() -> None:
    with pytest.raises(YamlInputError, match=r"line 1: anchors \(&a0\) are not allowed"):
        load_yaml_text(billion_laughs())
    with pytest.raises(YamlInputError, match="anchors"):
        load_yaml_text("base: &b {x: 1}\nother:\n  <<: *b\n")
    with pytest.raises(YamlInputError, match=r"aliases \(\*x\)"):
        load_yaml_text("a: *x\n")
    assert load_yaml_text("tray_poses: [[0.5, 0.5, 0.0]]  # & and * in a comment\nname: 'a&b*c'\n") == {
        "tray_poses": [[0.5, 0.5, 0.0]],
        "name": "a&b*c",
    }


def test_size_and_depth_are_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("tray_poses:\n" + "  - [0.5, 0.5, 0.0]\n" * 60_000)
    with pytest.raises(YamlInputError, match="larger than 1000000 bytes"):
        load_yaml_file(big)
    with pytest.raises(EpisodesError, match="larger than"):
        load_episodes(big, *BOX)
    with pytest.raises(YamlInputError, match="nested too deeply"):
        load_yaml_text("[" * 200_000)


def test_echoed_values_are_truncated(tmp_path: Path) -> None:
    assert truncate("x" * 1000) == "x" * (MAX_ECHO_CHARS - 1) + "…"
    assert truncate("two\nlines") == "two lines"
    nested: list = ["lol"] * 9
    for _ in range(8):
        nested = [nested] * 9  # 9**9 leaves by reference: a full repr would be gigabytes
    started = time.perf_counter()
    assert len(short_repr(nested)) <= MAX_ECHO_CHARS
    assert time.perf_counter() - started < 0.5
    path = tmp_path / "long.yaml"
    path.write_text("tray_poses: [[0.5, 0.5, '" + "y" * 5000 + "']]\n")
    with pytest.raises(EpisodesError) as info:
        load_episodes(path, *BOX)
    message = str(info.value)
    assert "tray_poses[0] must be 3 finite numbers" in message and "…" in message
    assert len(message) < len(str(path)) + 300 and "\n" not in message


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("workspace_x: [-100, 100]", r"workspace_x must lie within \[0.25, 0.75\] m \(got \[-100, 100\]\)"),
        ("workspace_y: [-0.08, 3.0]", "workspace_y must lie within"),
        ("workspace_x: [0.3, .nan]", "workspace_x must be finite"),
    ],
)
def test_workspace_off_the_table_is_refused(tmp_path: Path, extra: str, match: str) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(f"tray_poses: [[0.5, 0.5, 0.0]]\n{extra}\n")
    with pytest.raises(EpisodesError, match=match):
        load_episodes(path, *BOX)
    path.write_text("tray_poses: [[0.5, 0.5, 0.0]]\nworkspace_x: [0.3, 0.7]\nworkspace_y: [-0.4, 0.4]\n")
    assert load_episodes(path, *BOX).x_range == (0.3, 0.7)


def test_cli_refuses_workspace_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "e.yaml"
    path.write_text("tray_poses: [[0.5, 0.5, 0.0]]\nworkspace_x: [-100, 100]\n")
    assert evaluate_cli.main(["--planner", "cem", "--episodes", str(path), "--report", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evaluate: error:") and "workspace_x must lie within" in err and "\n" not in err, err
    assert not (tmp_path / "r.json").exists()


PROBE = """
import resource, sys
from flow_planner_eval.cli import evaluate
code = evaluate.main(["--planner", "cem", "--episodes", sys.argv[1], "--report", sys.argv[2]])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stdout)
sys.exit(code)
"""


def test_evaluate_refuses_an_alias_bomb_fast_with_one_short_line(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs())
    assert bomb.stat().st_size < 400  # a few hundred bytes
    report = tmp_path / "r.json"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(bomb), str(report)],
        capture_output=True, text=True, timeout=60, env=os.environ,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3)),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    err = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, err[-500:])
    assert err.startswith("evaluate: error:") and "\n" not in err and len(err) < 300, err[:500]
    assert "anchors (&a0) are not allowed" in err
    assert seconds < 20  # the interpreter and the imports; parsing stops at the first anchor
    assert int(result.stdout.split()[-1]) < 1024**2  # peak RSS in KiB: well under 1 GiB
    assert not report.exists()


# ------------------------------------------------------------------------------------------------ scene form
SCENE = """episodes:
  - tray_start: [0.55, -0.05, 0.3]
    tray_goal: [0.45, 0.1, 0.95, -0.2]
    obstacles:
      - {center: [0.6, 0.0, 0.8], size: [0.04, 0.5, 0.1], yaw: 0.3}
    template: barrier
    grid_index: 7
  - tray_start: [0.5, 0.0, 0.0]
    tray_goal: [0.5, 0.0, 0.96, 0.0]
"""


def test_scene_and_old_files_load(tmp_path: Path) -> None:
    path = tmp_path / "scenes.yaml"
    path.write_text(SCENE)
    episodes = load_episodes(path, *BOX)
    assert len(episodes) == 2 and not episodes.legacy and episodes.uvyaw is None
    first, second = episodes.scenes
    assert first.tray_start == (0.55, -0.05, 0.3) and first.tray_goal == (0.45, 0.1, 0.95, -0.2)
    assert first.template == "barrier" and first.grid_index == 7
    (box,) = first.obstacles
    assert box.center == (0.6, 0.0, 0.8) and box.size == (0.04, 0.5, 0.1) and box.yaw == 0.3
    assert second.obstacles == () and second.template == "empty"  # obstacles and template are optional
    assert episodes.xy_yaw(0) == (0.55, -0.05, 0.3)
    assert len(load_episodes(path, *BOX, limit=1)) == 1
    # The old form: empty scenes, the task's carry goal (lifted 0.2 m from the resting height 0.76 m, same yaw).
    path.write_text("tray_poses: [[0.5, 0.5, 0.1]]\n")
    old = load_episodes(path, *BOX)
    assert old.legacy and old.uvyaw.tolist() == [[0.5, 0.5, 0.1]]
    (scene,) = old.scenes
    assert scene.obstacles == () and scene.tray_start == pytest.approx((0.5, 0.0, 0.1))
    assert scene.tray_goal == pytest.approx((0.5, 0.0, 0.96, 0.1))


def _one(**fields: str) -> str:
    base = {"tray_start": "[0.5, 0.0, 0.0]", "tray_goal": "[0.5, 0.0, 0.96, 0.0]", "obstacles": "[]"}
    base |= fields
    return "episodes:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in base.items() if v is not None) + "\n"


BOX_OK = "{center: [0.6, 0.0, 0.8], size: [0.04, 0.5, 0.1], yaw: 0.0}"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (_one(obstacles="[{center: [0.6, .nan, 0.8], size: [0.1, 0.1, 0.1]}]"),
         r"episodes\[0\].obstacles\[0\].center must be 3 finite numbers"),
        (_one(obstacles="[{center: [0.6, 0.0, 0.8], size: [0.1, -0.1, 0.1]}]"),
         r"episodes\[0\].obstacles\[0\].size must be positive"),
        (_one(obstacles="[{center: [0.6, 0.0, 0.8], size: [0.1, 0.1, 9.0]}]"), "box edge lengths must be in"),
        (_one(obstacles="[" + ", ".join([BOX_OK] * 5) + "]"), r"obstacles: at most 4 boxes \(got 5\)"),
        (_one(obstacles="[{center: [0.6, 0.0, 0.8], size: [0.1, 0.1, 0.1], colour: red}]"),
         r"obstacles\[0\]: unknown keys \['colour'\]"),
        (_one(obstacles="[{center: [0.6, 0.0, 0.8]}]"), "'size' is missing"),
        (_one(obstacles="[{center: [0.6, 0.0], size: [0.1, 0.1, 0.1]}]"), "center must be 3 finite numbers"),
        (_one(obstacles="[[0.6, 0.0, 0.8, 0.1, 0.1, 0.1, 0.0]]"), r"obstacles\[0\] must be a mapping"),
        (_one(obstacles="{center: [0.6, 0.0, 0.8]}"), "obstacles must be a list of boxes"),
        (_one(obstacles=f"[{BOX_OK}]", yaw="0.1"), r"episodes\[0\]: unknown keys \['yaw'\]"),
        (_one(tray_start="[0.5, 0.0]"), r"tray_start must be 3 finite numbers \[x, y, yaw\]"),
        (_one(tray_goal="[0.5, 0.0, 0.96]"), r"tray_goal must be 4 finite numbers \[x, y, z, yaw\]"),
        (_one(tray_goal="[0.5, 0.0, .inf, 0.0]"), "tray_goal must be 4 finite numbers"),
        (_one(tray_start="[0.5, 0.0, true]"), "tray_start must be 3 finite numbers"),
        (_one(tray_start="[2.5, 0.0, 0.0]"), r"tray_start x must be in \[-0.3, 0.9\] \(got 2.5\)"),
        (_one(tray_goal="[0.5, 0.0, 0.5, 0.0]"), r"tray_goal z must be in \[0.75, 1.75\]"),
        (_one(tray_goal=None), "'tray_goal' is missing"),
        (_one(template="'two words'"), "template must be a name"),
        (_one(grid_index="-5"), "grid_index must be an integer"),
        ("episodes: []", "non-empty list of scenes"),
        ("episodes: [[0.5, 0.0, 0.0]]", r"episodes\[0\] must be a mapping"),
        ("episodes: [{tray_start: [0.5, 0, 0], tray_goal: [0.5, 0, 0.9, 0]}]\nextra: 1", r"unknown keys \['extra'\]"),
        ("episodes: [{tray_start: [0.5, 0, 0], tray_goal: [0.5, 0, 0.9, 0]}]\ntray_poses: [[0.5, 0.5, 0]]",
         "not both"),
    ],
)  # fmt: skip
def test_bad_scenes_are_refused(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(text)
    with pytest.raises(EpisodesError, match=match) as info:
        load_episodes(path, *BOX)
    assert "\n" not in str(info.value)


def test_cli_bad_scene_is_one_clear_line_with_a_bounded_echo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "e.yaml"
    report = tmp_path / "r.json"
    for text, match in (
        (_one(obstacles="[{center: [0.6, 0.0, 0.8], size: ['" + "z" * 5000 + "', 0.1, 0.1]}]"), "size must be 3"),
        (_one(obstacles="[{center: [0.6, .nan, 0.8], size: [0.1, 0.1, 0.1]}]"), "center must be 3 finite"),
        (_one(obstacles="[" + ", ".join([BOX_OK] * 5) + "]"), "at most 4 boxes"),
    ):
        path.write_text(text)
        assert evaluate_cli.main(["--planner", "straight", "--episodes", str(path), "--report", str(report)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("evaluate: error:") and match in err and "\n" not in err, err
        assert len(err) < len(str(path)) + 400, err
    assert not report.exists()
