"""make_scenes --seed S --count N --out FILE.yaml [--template NAME]: write N valid episodes of the cluttered scene
family (data_collector_ros.scene_family) as an `evaluate` episodes file (scene form, world frame of the MuJoCo
scene: table top at z = 0.75 m, arm bases at (0, ±0.35, 0.75)).

It walks the grid of FamilyConfig(seed=S) from index 0 (the family's shuffled, stratified order), keeps the scenes
of --template if given, rounds each to the file's precision (1 µm, 1 µrad) and keeps it only if the validity
filter (data_collector_ros.scene_validity.check_scene: IK reach and carry, nothing in collision at the start, the
grasp and the goal) passes on the rounded scene, so every written episode is valid as written. Each episode keeps
its `grid_index` (the same index gives the same scene in the collector's family of that seed). The file is written
atomically (flow_planner_common.atomic_file).

Bad arguments give one line on stderr and exit code 2; fewer valid scenes than asked within --max-indices grid
indices, one line and exit code 1 (nothing written).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from data_collector_ros.scene_family import TEMPLATES, FamilyConfig, SceneEpisode
from flow_planner_common.obstacles import Box

MAX_COUNT = 10_000
DIGITS = 6  # decimals written (m, rad)


class ArgumentError(ValueError):
    """A bad command-line argument (one line, exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="make_scenes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", required=True, help="the family's seed (FamilyConfig(seed=S)), an integer >= 0")
    parser.add_argument("--count", required=True, help=f"valid episodes to write (1..{MAX_COUNT})")
    parser.add_argument("--out", required=True, help="episodes YAML to write")
    parser.add_argument("--template", default=None, help=f"only this template ({', '.join(TEMPLATES)})")
    parser.add_argument("--max-indices", default=None, help="grid indices to try at most (default 50 * count + 200)")
    parser.add_argument("--quiet", action="store_true", help="no per-scene lines")
    return parser


def _integer(text: str, name: str, low: int, high: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ArgumentError(f"{name} must be an integer (got {str(text)[:40]!r})") from None
    if not low <= value <= high:
        raise ArgumentError(f"{name} must be in {low}..{high} (got {value})")
    return value


def _number(value: float) -> str:
    text = f"{round(float(value), DIGITS):.{DIGITS}f}".rstrip("0")
    text = text + "0" if text.endswith(".") else text
    return "0.0" if text == "-0.0" else text


def rounded(scene: SceneEpisode) -> SceneEpisode:
    """The scene exactly as `scene_yaml` writes it (numbers rounded; box yaw wrapped into [-pi, pi])."""

    def r(values: Any) -> tuple[float, ...]:
        return tuple(float(_number(v)) for v in values)

    boxes = tuple(Box(r(b.center), r(b.size), r([math.remainder(b.yaw, 2 * math.pi)])[0]) for b in scene.obstacles)
    return SceneEpisode(r(scene.tray_start), r(scene.tray_goal), boxes, scene.template, scene.grid_index)


def scene_yaml(scene: SceneEpisode) -> str:
    """One episode as an item of the episodes file's `episodes` list."""

    def nums(values: Any) -> str:
        return "[" + ", ".join(_number(v) for v in values) + "]"

    lines = [f"  - tray_start: {nums(scene.tray_start)}", f"    tray_goal: {nums(scene.tray_goal)}"]
    if scene.obstacles:
        lines.append("    obstacles:")
        lines += [f"      - {{center: {nums(b.center)}, size: {nums(b.size)}, yaw: {_number(b.yaw)}}}"
                  for b in scene.obstacles]  # fmt: skip
    else:
        lines.append("    obstacles: []")
    lines += [f"    template: {scene.template}", f"    grid_index: {scene.grid_index}"]
    return "\n".join(lines) + "\n"


def generate(
    seed: int,
    count: int,
    template: str | None = None,
    max_indices: int | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[SceneEpisode], list[tuple[int, str, str]]]:
    """(valid scenes, skipped (grid index, template, reason)) of FamilyConfig(seed=seed), walking grid indices
    0, 1, ... until `count` valid scenes (of `template`, if given) or `max_indices` indices. Deterministic."""
    import data_collector_ros  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)
    from data_collector_ros.ik import IKSolver
    from data_collector_ros.scene_family import scene_for_index, template_of
    from data_collector_ros.scene_validity import StraightReach, check_scene
    from data_collector_ros.simulation import Simulation

    family = FamilyConfig(seed=seed)
    sim = Simulation()
    ik = IKSolver(sim.model)
    reach = StraightReach(sim, ik)
    limit = 50 * count + 200 if max_indices is None else max_indices
    scenes: list[SceneEpisode] = []
    skipped: list[tuple[int, str, str]] = []
    for index in range(limit):
        if len(scenes) >= count:
            break
        if template is not None and template_of(family, index) != template:
            continue
        scene = rounded(scene_for_index(family, index, reach))
        check = check_scene(sim, ik, scene, seed=index)
        if check.valid:
            scenes.append(scene)
        else:
            skipped.append((index, scene.template, check.reason))
        if log is not None:
            verdict = "valid" if check.valid else f"skipped: {check.reason}"
            log(f"grid index {index:5d} {scene.template:10s} {verdict}")
    return scenes, skipped


def write_scenes(path: str | Path, scenes: list[SceneEpisode], header: str) -> Path:
    """The episodes file (scene form), written atomically."""
    from flow_planner_common.atomic_file import atomic_path

    text = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    text += "episodes:\n" + "".join(scene_yaml(s) for s in scenes)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        seed = _integer(args.seed, "--seed", 0, 2**32 - 1)
        count = _integer(args.count, "--count", 1, MAX_COUNT)
        max_indices = None if args.max_indices is None else _integer(args.max_indices, "--max-indices", 1, 10**7)
        if args.template is not None and args.template not in TEMPLATES:
            raise ArgumentError(f"--template must be one of {', '.join(TEMPLATES)} (got {str(args.template)[:40]!r})")
        out = Path(args.out)
        if out.is_dir():
            raise ArgumentError(f"--out {out} is a directory, not a file")
        if out.parent.exists() and not out.parent.is_dir():
            raise ArgumentError(f"--out {out}: {out.parent} is not a directory")
    except ArgumentError as exc:
        print(f"make_scenes: error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    log = None if args.quiet else (lambda line: print(line, flush=True))
    scenes, skipped = generate(seed, count, args.template, max_indices, log)
    if len(scenes) < count:
        print(f"make_scenes: only {len(scenes)} valid scenes of {count} within {len(scenes) + len(skipped)} tried "
              f"(raise --max-indices); nothing written", file=sys.stderr)  # fmt: skip
        return 1
    which = f"template {args.template}" if args.template else "all templates"
    header = (
        f"make_scenes --seed {seed} --count {count}" + (f" --template {args.template}" if args.template else "")
        + f"\n{count} valid scenes of FamilyConfig(seed={seed}) ({which}); {len(skipped)} grid indices skipped as"
        " invalid.\nWorld frame of the MuJoCo scene: table top z = 0.75 m, arm bases (0, +-0.35, 0.75) m; tray_start"
        " [x, y, yaw],\ntray_goal [x, y, z, yaw] (tray centre), boxes: centre, full edge lengths (m), yaw (rad)."
    )  # fmt: skip
    try:
        write_scenes(out, scenes, header)
    except OSError as exc:
        print(f"make_scenes: error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    templates: dict[str, int] = {}
    for scene in scenes:
        templates[scene.template] = templates.get(scene.template, 0) + 1
    summary = ", ".join(f"{name} {n}" for name, n in sorted(templates.items()))
    print(f"make_scenes: {out}: {count} valid scenes ({summary}), {len(skipped)} skipped, "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    return 0


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
