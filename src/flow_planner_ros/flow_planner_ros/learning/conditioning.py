"""The model's channel and conditioning layouts, defined once (training, checkpoints and inference use these).

Channels: the 12 joint positions, then the 12 joint velocities of each waypoint. Conditioning (physical units,
normalized by the checkpoint's statistics): [arms_start (12), arms_start_vel (12), arms_goal (12)] (+ phase)
(+ the scene, for obstacle models: MAX_OBSTACLES boxes × OBSTACLE_FEATURES, then the MAX_OBSTACLES mask entries).

A box's features are its centre and full size (m) and sin/cos of twice its yaw (a box is the same box after a
half turn, so 2·yaw is the angle that identifies it). Unused slots are all zero with mask 0; the model ignores them.
"""

from __future__ import annotations

import numpy as np

from flow_planner_common.motion import reference_trajectory
from flow_planner_common.obstacles import BOX_DIM, MAX_OBSTACLES
from flow_planner_common.robot import HORIZON, JOINT_NAMES, NUM_JOINTS

#: Conditioning groups, in order; the optional phase is appended as one more channel.
COND_GROUPS = ("arms_start", "arms_start_vel", "arms_goal")


#: Per-box features the model sees (obstacle models): centre, full size, sin/cos of 2·yaw.
OBSTACLE_FEATURES = ("cx", "cy", "cz", "sx", "sy", "sz", "sin2yaw", "cos2yaw")
#: Conditioning entries the scene adds: the box features, then the mask.
SCENE_DIM = MAX_OBSTACLES * (len(OBSTACLE_FEATURES) + 1)


def channel_layout(joint_names: tuple[str, ...] = JOINT_NAMES) -> list[str]:
    """Names of the model's trajectory channels: positions then velocities."""
    return [f"pos/{n}" for n in joint_names] + [f"vel/{n}" for n in joint_names]


def obstacle_layout() -> list[str]:
    """Names of the scene's conditioning entries: `obstacles/<i>/<feature>` for every slot, then `obstacle_mask/<i>`."""
    boxes = [f"obstacles/{i}/{f}" for i in range(MAX_OBSTACLES) for f in OBSTACLE_FEATURES]
    return boxes + [f"obstacle_mask/{i}" for i in range(MAX_OBSTACLES)]


def cond_layout(use_phase: bool, obstacles: bool = False, joint_names: tuple[str, ...] = JOINT_NAMES) -> list[str]:
    """Names of the conditioning channels: [arms_start, arms_start_vel, arms_goal] (+ phase) (+ scene)."""
    names = [f"{g}/{n}" for g in COND_GROUPS for n in joint_names]
    if use_phase:
        names.append("phase")
    return names + obstacle_layout() if obstacles else names


def layout_difference(found: list[str], expected: list[str]) -> str:
    """One phrase naming how two conditioning layouts differ (sizes, first differing entry, the scene part)."""
    found, expected = list(found), list(expected)
    scene = {True: "with obstacles", False: "without obstacles"}
    has_found = any(n.startswith("obstacle") for n in found)
    has_expected = any(n.startswith("obstacle") for n in expected)
    if has_found != has_expected:
        return f"the checkpoint's conditioning is {scene[has_found]}, expected {scene[has_expected]}"
    for i, (a, b) in enumerate(zip(found, expected, strict=False)):
        if a != b:
            return f"entry {i} is {a!r}, expected {b!r} ({len(found)} vs {len(expected)} entries)"
    extra = found[len(expected) :] or expected[len(found) :]
    which = "extra" if len(found) > len(expected) else "missing"
    return f"{len(found)} entries, expected {len(expected)} ({which}: {', '.join(extra[:3])})"


def obstacle_features(obstacles: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(…, MAX_OBSTACLES, 7) boxes and (…, MAX_OBSTACLES) mask → (…, SCENE_DIM) physical scene conditioning.

    Masked-out slots are zeroed (whatever they held), so they cannot carry information."""
    obstacles = np.asarray(obstacles, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if obstacles.shape[-2:] != (MAX_OBSTACLES, BOX_DIM) or mask.shape != obstacles.shape[:-1]:
        raise ValueError(
            f"obstacles must be (…, {MAX_OBSTACLES}, {BOX_DIM}) with a (…, {MAX_OBSTACLES}) mask, got "
            f"{obstacles.shape} and {mask.shape}"
        )
    yaw = obstacles[..., 6:7]
    feats = np.concatenate([obstacles[..., :6], np.sin(2 * yaw), np.cos(2 * yaw)], axis=-1)
    feats = np.where(mask[..., None], feats, 0.0)
    flat = feats.reshape(*feats.shape[:-2], MAX_OBSTACLES * len(OBSTACLE_FEATURES))
    return np.concatenate([flat, mask.astype(np.float64)], axis=-1)


def scene_slices(cond_dim: int) -> tuple[slice, slice]:
    """Where the box features and the mask are in a conditioning vector of an obstacle model (they end it)."""
    start = cond_dim - SCENE_DIM
    boxes_end = start + MAX_OBSTACLES * len(OBSTACLE_FEATURES)
    return slice(start, boxes_end), slice(boxes_end, cond_dim)


def build_cond(arrays: dict[str, np.ndarray], use_phase: bool, obstacles: bool = False) -> np.ndarray:
    """(N, 36[+1][+SCENE_DIM]) physical conditioning."""
    parts = [np.asarray(arrays[g], dtype=np.float64) for g in COND_GROUPS]
    if use_phase:
        parts.append(np.asarray(arrays["phase"], dtype=np.float64)[:, None])
    if obstacles:
        parts.append(obstacle_features(arrays["obstacles"], arrays["obstacle_mask"]))
    return np.concatenate(parts, axis=-1)


def make_cond(
    start_pos: np.ndarray, start_vel: np.ndarray, goal: np.ndarray, phase: np.ndarray | int | None,
    obstacles: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """(N, D) conditioning from per-request arrays (broadcast over a leading batch axis).

    `obstacles`: (boxes (MAX_OBSTACLES, 7), mask (MAX_OBSTACLES,)) for obstacle models, None for the others."""
    start_pos, start_vel, goal = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (start_pos, start_vel, goal))
    parts = [start_pos, start_vel, goal]
    if phase is not None:
        parts.append(np.broadcast_to(np.asarray(phase, dtype=np.float64).reshape(-1, 1), (start_pos.shape[0], 1)))
    if obstacles is not None:
        scene = obstacle_features(*obstacles)
        parts.append(np.broadcast_to(scene.reshape(-1, SCENE_DIM), (start_pos.shape[0], SCENE_DIM)))
    return np.concatenate(parts, axis=-1)


def reference_from_cond(cond: np.ndarray, dt: float, horizon: int = HORIZON) -> tuple[np.ndarray, np.ndarray]:
    """Reference motions (N, H, J) for physical conditioning rows [start, start_vel, goal(, phase)]."""
    j = NUM_JOINTS
    cond = np.asarray(cond, dtype=np.float64)
    return reference_trajectory(cond[:, :j], cond[:, j : 2 * j], cond[:, 2 * j : 3 * j], dt, horizon)
