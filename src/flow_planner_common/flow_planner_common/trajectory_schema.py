"""The one trajectory data schema: per-trajectory `.npz` files and merged datasets.

A per-trajectory file holds one trajectory (one phase of one episode); a merged dataset holds the
same keys stacked on a leading axis. Schema 2 adds the scene: `obstacles` (MAX_OBSTACLES, 7) boxes
(flow_planner_common.obstacles: centre, full size, yaw), their `obstacle_mask` and the scene `template`.

Schema 3 adds the planner's check of the executed plan (flow_planner_common.scene_safety at the planner's default
margin and grip limit, from the phase's start to its goal, in its scene): `check_passed`, `check_min_margin` (m: the
smallest clearance minus its required value over waypoints and categories, the grip's slack included; < 0: refused)
and `check_max_grip` (m: the right tool's largest motion from its grasp in the left tool's frame; NaN for a reach).
A schema-3 `success` is the physics' verdict AND the check's: what the planner would refuse never enters the training
set (which keeps `success` trajectories only) as a success.

Schema-2 files are still read (read_trajectory, read_dataset: `upgrade_arrays`), their check fields filled as
unknown: `check_passed` False, `check_min_margin` and `check_max_grip` NaN, `schema_version` left at 2, and their
`success` is the physics' alone. So old per-trajectory folders still merge (into a schema-2 dataset: `merge` refuses to
mix versions) and old datasets still train. Files of any other version are refused with a message that says so. Files
are written atomically (temp file + os.replace) and read with allow_pickle=False. Every reader validates shapes, dtypes
and finiteness.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from flow_planner_common.atomic_file import TEMP_SUFFIX, atomic_path
from flow_planner_common.obstacles import BOX_DIM, MAX_OBSTACLES
from flow_planner_common.robot import HORIZON, JOINT_NAMES, NUM_JOINTS, PHASE_NAMES

SCHEMA_VERSION = 3
#: Versions this reader accepts; older ones get the newer fields filled as unknown (`upgrade_arrays`).
READABLE_VERSIONS: tuple[int, ...] = (2, 3)
POSE_DIM = 7  # x, y, z, qw, qx, qy, qz


class SchemaError(ValueError):
    """A file or array set does not follow the trajectory schema."""


@dataclass(frozen=True)
class FieldSpec:
    """Shape (per trajectory), numpy dtype kind and whether values must be finite."""

    shape: tuple[int, ...]
    dtype: str
    finite: bool = True


#: key -> spec of one trajectory. A merged dataset prepends the trajectory axis.
FIELDS: dict[str, FieldSpec] = {
    "positions": FieldSpec((HORIZON, NUM_JOINTS), "float64"),
    "velocities": FieldSpec((HORIZON, NUM_JOINTS), "float64"),
    "arms_start": FieldSpec((NUM_JOINTS,), "float64"),
    "arms_start_vel": FieldSpec((NUM_JOINTS,), "float64"),
    "arms_goal": FieldSpec((NUM_JOINTS,), "float64"),
    "phase": FieldSpec((), "int64"),
    "tray_start_pose": FieldSpec((POSE_DIM,), "float64"),
    "tray_goal_pose": FieldSpec((POSE_DIM,), "float64"),
    "grid_index": FieldSpec((), "int64"),
    "seed": FieldSpec((), "int64"),
    "success": FieldSpec((), "bool"),
    # A failed plan may carry an infinite cost; it is still recorded.
    "cost": FieldSpec((), "float64", finite=False),
    "dt": FieldSpec((), "float64"),
    "joint_names": FieldSpec((NUM_JOINTS,), "str"),
    "schema_version": FieldSpec((), "int64"),
    "obstacles": FieldSpec((MAX_OBSTACLES, BOX_DIM), "float64"),
    "obstacle_mask": FieldSpec((MAX_OBSTACLES,), "bool"),
    "template": FieldSpec((), "str"),
    # schema 3: the planner's check of the plan (NaN: unknown, i.e. a schema-2 file; check_max_grip: NaN for a reach)
    "check_passed": FieldSpec((), "bool"),
    "check_min_margin": FieldSpec((), "float64", finite=False),
    "check_max_grip": FieldSpec((), "float64", finite=False),
}
#: The schema-3 fields and the values that say "not checked" (a schema-2 file's).
CHECK_UNKNOWN: dict[str, object] = {"check_passed": False, "check_min_margin": np.nan, "check_max_grip": np.nan}


@dataclass
class TrajectoryRecord:
    """One trajectory of one episode phase, as written to `traj_<grid_index>_<phase>.npz`."""

    positions: np.ndarray
    velocities: np.ndarray
    arms_start: np.ndarray
    arms_start_vel: np.ndarray
    arms_goal: np.ndarray
    phase: int
    tray_start_pose: np.ndarray
    tray_goal_pose: np.ndarray
    grid_index: int
    seed: int
    success: bool
    cost: float
    dt: float
    joint_names: tuple[str, ...] = JOINT_NAMES
    schema_version: int = SCHEMA_VERSION
    obstacles: np.ndarray = field(default_factory=lambda: np.zeros((MAX_OBSTACLES, BOX_DIM)))
    obstacle_mask: np.ndarray = field(default_factory=lambda: np.zeros(MAX_OBSTACLES, dtype=bool))
    template: str = "empty"
    check_passed: bool = CHECK_UNKNOWN["check_passed"]  # the defaults say "not checked"
    check_min_margin: float = CHECK_UNKNOWN["check_min_margin"]
    check_max_grip: float = CHECK_UNKNOWN["check_max_grip"]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays with the schema's dtypes, validated."""
        arrays = {f.name: _as_dtype(getattr(self, f.name), FIELDS[f.name].dtype) for f in fields(self)}
        validate_arrays(arrays)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TrajectoryRecord:
        """Build from validated per-trajectory arrays."""
        validate_arrays(arrays)
        values = {}
        for name, spec in FIELDS.items():
            value = np.asarray(arrays[name])
            if spec.shape == ():
                values[name] = value.item()
            elif spec.dtype == "str":
                values[name] = tuple(str(v) for v in value)
            else:
                values[name] = value.astype(spec.dtype, copy=True)
        return cls(**values)


def _as_dtype(value: object, dtype: str) -> np.ndarray:
    if dtype == "str":
        return np.asarray(value, dtype=np.str_)
    return np.asarray(value, dtype=dtype)


def _dtype_matches(array: np.ndarray, dtype: str) -> bool:
    if dtype == "str":
        return array.dtype.kind == "U"
    if dtype == "bool":
        return array.dtype == np.bool_
    if dtype == "int64":
        return array.dtype.kind in "iu"
    return array.dtype.kind == "f"


def validate_arrays(arrays: dict[str, np.ndarray], stacked: bool = False) -> int:
    """Check keys, shapes, dtypes, finiteness and joint names; return the trajectory count.

    With stacked=True every field has a leading trajectory axis of one common length.
    Raises SchemaError naming the first problem found.
    """
    if "schema_version" in arrays:
        versions = np.unique(np.asarray(arrays["schema_version"])).tolist()
        if not set(versions) <= set(READABLE_VERSIONS):
            known = ", ".join(map(str, READABLE_VERSIONS))
            raise SchemaError(f"schema_version {versions}, this reader knows {known} (re-collect or convert)")
    missing = sorted(set(FIELDS) - set(arrays))
    if missing:
        raise SchemaError(f"missing keys: {', '.join(missing)}")
    unknown = sorted(set(arrays) - set(FIELDS))
    if unknown:
        raise SchemaError(f"unknown keys: {', '.join(unknown)}")
    count = None
    for name, spec in FIELDS.items():
        array = np.asarray(arrays[name])
        expected = spec.shape
        if stacked:
            if array.ndim == 0:
                raise SchemaError(f"{name}: expected a leading trajectory axis, got a scalar")
            count = array.shape[0] if count is None else count
            expected = (count, *spec.shape)
        if array.shape != expected:
            raise SchemaError(f"{name}: shape {array.shape}, expected {expected}")
        if not _dtype_matches(array, spec.dtype):
            raise SchemaError(f"{name}: dtype {array.dtype}, expected {spec.dtype}")
        if spec.finite and array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise SchemaError(f"{name}: contains NaN or Inf")
    names = np.asarray(arrays["joint_names"])
    rows = names.reshape(-1, NUM_JOINTS)
    if not all(tuple(row) == JOINT_NAMES for row in rows):
        raise SchemaError(f"joint_names: expected {list(JOINT_NAMES)}")
    phases = set(np.unique(np.asarray(arrays["phase"])).tolist())
    if not phases <= set(PHASE_NAMES):
        raise SchemaError(f"phase: unknown values {sorted(phases - set(PHASE_NAMES))}")
    dts = np.asarray(arrays["dt"])
    if np.any(dts <= 0):
        raise SchemaError("dt: must be > 0")
    return 1 if count is None else count


def upgrade_arrays(arrays: dict[str, np.ndarray], stacked: bool = False) -> dict[str, np.ndarray]:
    """Arrays of a schema-2 file (per trajectory or `stacked`) with the schema-3 check fields added as unknown
    (CHECK_UNKNOWN); anything else is returned as it is (validate_arrays judges it)."""
    version = np.asarray(arrays.get("schema_version", SCHEMA_VERSION))
    if not np.all(version == 2) or any(name in arrays for name in CHECK_UNKNOWN):
        return arrays
    shape = version.shape if stacked else ()
    added = {name: np.full(shape, value, dtype=FIELDS[name].dtype) for name, value in CHECK_UNKNOWN.items()}
    return {**arrays, **added}


def trajectory_filename(grid_index: int, phase: int) -> str:
    """File name of one trajectory: traj_<grid_index:06d>_<phase name>.npz."""
    return f"traj_{grid_index:06d}_{PHASE_NAMES[phase]}.npz"


def save_npz_atomic(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write arrays to path atomically (see atomic_file): a kill leaves the old file or the new one, plus at
    most a `*.partial` temp file that readers ignore and `remove_partial_files` deletes."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of an .npz without unpickling anything."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # ValueError: object arrays (pickle) refused; BadZipFile/zlib.error/EOFError: truncated or corrupt.
        raise SchemaError(f"{path}: unreadable npz ({type(exc).__name__}: {exc})") from exc


def read_schema_version(path: str | Path) -> int | None:
    """The schema_version a file claims (reading that one array only); None if it has none or is unreadable."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            return int(np.asarray(data["schema_version"]).reshape(-1)[0])
    except (OSError, ValueError, EOFError, KeyError, IndexError, TypeError, zipfile.BadZipFile, zlib.error):
        return None


def write_trajectory(directory: str | Path, record: TrajectoryRecord) -> Path:
    """Atomically write one record as directory/traj_<grid_index>_<phase>.npz."""
    path = Path(directory) / trajectory_filename(record.grid_index, record.phase)
    return save_npz_atomic(path, record.to_arrays())


def read_trajectory(path: str | Path) -> TrajectoryRecord:
    """Read and validate one per-trajectory file."""
    arrays = upgrade_arrays(load_npz(path))
    try:
        return TrajectoryRecord.from_arrays(arrays)
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from exc


def stack_records(records: list[TrajectoryRecord]) -> dict[str, np.ndarray]:
    """Stack records into merged-dataset arrays (leading trajectory axis)."""
    if not records:
        raise SchemaError("no trajectories to stack")
    per_record = [r.to_arrays() for r in records]
    return {name: np.stack([a[name] for a in per_record]) for name in FIELDS}


def write_dataset(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Validate stacked arrays and write them atomically as one merged dataset file."""
    validate_arrays(arrays, stacked=True)
    return save_npz_atomic(path, arrays)


def read_dataset(path: str | Path) -> dict[str, np.ndarray]:
    """Read and validate a merged dataset file (stacked arrays)."""
    arrays = upgrade_arrays(load_npz(path), stacked=True)
    try:
        validate_arrays(arrays, stacked=True)
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from exc
    return arrays


def remove_partial_files(directory: str | Path, targets: Collection[str] | None = None) -> list[Path]:
    """Delete temp files left by a killed writer; return what was removed.

    `targets`: only the temp files of these file names (a temp file is `<target>.<random>.partial`), so that a
    shard never deletes what another shard writing into the same folder has in flight; None = every temp file.
    """
    removed = []
    for path in Path(directory).glob(f"*{TEMP_SUFFIX}"):
        if targets is not None and path.name.rsplit(".", 2)[0] not in targets:
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed
