"""Bounded episodes files (flow_planner_common.safe_yaml, flow_planner_ros.episodes_file): an alias bomb is refused
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
from flow_planner_ros.cli import evaluate as evaluate_cli
from flow_planner_ros.episodes_file import EpisodesError, load_episodes

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
from flow_planner_ros.cli import evaluate
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
