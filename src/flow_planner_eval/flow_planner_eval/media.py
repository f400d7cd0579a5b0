"""What `evaluate` records of its episodes besides numbers: one episode's joint curves (published vs. measured,
for evaluation_plots) and an MP4 of the first episodes rendered from the recorded states."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

VIDEO_STRIDE = 2  # every 2nd recorded state (FRAME_DT 0.05 s) is a frame: software rendering costs ~0.1 s a frame
VIDEO_SIZE = (384, 288)  # multiples of 8 (H.264 macro blocks)

#: Per phase name, the (sim time, qpos) samples recorded while it ran.
PhaseRecords = Mapping[str, Sequence[tuple[float, np.ndarray]]]


def joint_curves(
    records: PhaseRecords, planned: Mapping[str, list], qpos_adr: Sequence[int], dt: float, episode: int = 0
) -> dict[str, Any]:
    """{"dt", "episode", "phases": {name: {"measured_t", "measured", "planned"}}} of one episode; the measured
    arm joints are read at `qpos_adr` (JOINT_NAMES order)."""
    q = np.asarray(qpos_adr)
    phases = {}
    for name, rec in records.items():
        if not rec:
            continue
        t0 = rec[0][0]
        phases[name] = {
            "measured_t": [t - t0 for t, _ in rec],
            "measured": [qpos[q].tolist() for _, qpos in rec],
            "planned": planned.get(name, []),
        }
    return {"dt": dt, "episode": episode, "phases": phases}


def write_video(model: Any, episodes: Sequence[PhaseRecords], path: Path, sample_dt: float) -> list[Path]:
    """Render the recorded reach and carry states of `episodes` into one MP4 at `path` ([] when nothing was
    recorded); `sample_dt`: sim time between recorded states."""
    import mujoco  # already imported by the bridge's simulation, after data_collector_ros set MUJOCO_GL

    from data_collector_ros.render import SceneRenderer, save_mp4

    data = mujoco.MjData(model)
    frames = []
    width, height = VIDEO_SIZE
    with SceneRenderer(model, width=width, height=height) as renderer:
        for records in episodes:
            for name in ("reach", "carry"):
                for _, qpos in list(records.get(name, []))[::VIDEO_STRIDE]:
                    data.qpos[:] = qpos
                    mujoco.mj_forward(model, data)
                    frames.append(renderer.frame(data))
    if not frames:
        return []
    save_mp4(path, frames, fps=1.0 / (sample_dt * VIDEO_STRIDE))
    path.chmod(0o644)
    return [path]
