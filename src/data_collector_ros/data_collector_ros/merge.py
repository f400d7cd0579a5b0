"""`merge`: validate per-trajectory files and stack them into one dataset file.

    merge --input DIR [DIR ...] --output FILE.npz

Every `traj_*.npz` in the input folders is read with the schema's validation (keys, shapes, dtypes, finiteness);
corrupt or invalid files are reported by name and skipped, a (grid_index, phase) seen twice keeps the first file.
Prints statistics (trajectories per phase, success rates, grid coverage, tray position range) and writes the
stacked dataset atomically. Exit codes: 0 written; 1 no valid trajectory; 2 bad arguments (including an output that
cannot be written, checked before reading anything) or a failed write.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from flow_planner_common.robot import PHASE_NAMES
from flow_planner_common.trajectory_schema import (
    SCHEMA_VERSION,
    SchemaError,
    TrajectoryRecord,
    read_schema_version,
    read_trajectory,
    stack_records,
    write_dataset,
)

EXIT_OK, EXIT_NOTHING_VALID, EXIT_BAD_ARGUMENTS = 0, 1, 2


def collect_records(
    inputs: list[Path], report=print
) -> tuple[list[TrajectoryRecord], list[str], dict[int, int]]:
    """Valid records (sorted by grid index, phase), one message per skipped file, and schema_version -> number of
    readable files carrying it (a refused file's version is read alone, so every file is read once)."""
    records: dict[tuple[int, int], TrajectoryRecord] = {}
    skipped: list[str] = []
    versions: dict[int, int] = {}
    for folder in inputs:
        for path in sorted(folder.glob("traj_*.npz")):
            try:
                record = read_trajectory(path)
            except SchemaError as exc:
                version = read_schema_version(path)
                if version is not None:
                    versions[version] = versions.get(version, 0) + 1
                reason = str(exc).removeprefix(f"{path}: ")
                skipped.append(f"skipping corrupt file {path}: {reason}")
                continue
            versions[record.schema_version] = versions.get(record.schema_version, 0) + 1
            key = (record.grid_index, record.phase)
            if key in records:
                skipped.append(f"skipping duplicate file {path}: grid index {key[0]} {PHASE_NAMES[key[1]]} seen before")
                continue
            records[key] = record
    return [records[key] for key in sorted(records)], skipped, versions


def statistics(records: list[TrajectoryRecord]) -> list[str]:
    """Human-readable dataset statistics."""
    lines = [f"{len(records)} trajectories"]
    for phase, name in PHASE_NAMES.items():
        of_phase = [r for r in records if r.phase == phase]
        rate = 100 * np.mean([r.success for r in of_phase]) if of_phase else float("nan")
        lines.append(f"  {name}: {len(of_phase)} trajectories, success rate {rate:.1f}%")
    success = np.mean([r.success for r in records])
    lines.append(f"  overall success rate {100 * success:.1f}%")
    phases_per_index = Counter(r.grid_index for r in records)
    indices = np.array(sorted(phases_per_index))
    complete = sum(count == len(PHASE_NAMES) for count in phases_per_index.values())
    span = int(indices[-1] - indices[0] + 1)
    missing = span - len(indices)
    lines.append(
        f"  grid indices {indices[0]}..{indices[-1]}: {len(indices)} present ({complete} with both phases),"
        f" {missing} missing in that range"
    )
    starts = np.array([r.tray_start_pose[:2] for r in records if r.phase == min(PHASE_NAMES)] or [[np.nan] * 2])
    if np.all(np.isfinite(starts)):
        lines.append(
            f"  tray start x {starts[:, 0].min():.3f}..{starts[:, 0].max():.3f} m,"
            f" y {starts[:, 1].min():.3f}..{starts[:, 1].max():.3f} m,"
            f" {len(np.unique(np.round(starts, 4), axis=0))} distinct positions"
        )
    return lines


def output_problem(path: Path) -> str | None:
    """Why `path` cannot be written (a directory; its folder cannot be created or written), or None.

    Probed with a real temporary file in the folder, so it also holds for root and read-only mounts."""
    if path.is_dir():
        return f"output {path} is an existing directory, not a file"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        return f"output {path}: cannot write in {path.parent} ({exc.strerror or exc})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="merge", description=__doc__.splitlines()[0])
    parser.add_argument("--input", nargs="+", required=True, type=Path, help="folders with traj_*.npz files")
    parser.add_argument("--output", required=True, type=Path, help="merged dataset file (.npz)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.input if not p.is_dir()]
    if missing:
        print(f"merge: error: input folder(s) not found: {', '.join(missing)}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    if args.output.suffix != ".npz":
        print(f"merge: error: output must be a .npz file (got {args.output})", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    problem = output_problem(args.output)
    if problem:
        print(f"merge: error: {problem}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    records, skipped, versions = collect_records(args.input)
    if len(versions) > 1:
        found = ", ".join(f"{count} file(s) of schema {v}" for v, count in sorted(versions.items()))
        print(
            f"merge: error: mixed schema versions ({found}); this merge writes schema {SCHEMA_VERSION}: "
            "merge each version separately or re-collect the old files",
            file=sys.stderr,
        )
        return EXIT_BAD_ARGUMENTS
    for message in skipped:
        print(f"merge: {message}", file=sys.stderr)
    if not records:
        print(f"merge: error: no valid trajectory files in {', '.join(map(str, args.input))}", file=sys.stderr)
        return EXIT_NOTHING_VALID
    for line in statistics(records):
        print(line)
    try:
        path = write_dataset(args.output, stack_records(records))
    except OSError as exc:
        print(f"merge: error: cannot write {args.output} ({exc.strerror or exc})", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    print(f"wrote {len(records)} trajectories to {path} ({len(skipped)} files skipped)")
    return EXIT_OK


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
