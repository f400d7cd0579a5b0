"""Offscreen rendering of the scene to PNG images and MP4 videos (headless: MUJOCO_GL=egl, or osmesa).

MuJoCo reads MUJOCO_GL when it is first imported; `data_collector_ros/__init__.py` defaults it to egl on a machine
without a display, so import this package before mujoco (or export MUJOCO_GL yourself).
"""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import mujoco
import numpy as np

from data_collector_ros.scene import DEFAULT_CAMERA
from flow_planner_common.atomic_file import atomic_path


class SceneRenderer:
    """Renders frames of (model, data) from a named camera."""

    def __init__(self, model: mujoco.MjModel, width: int = 640, height: int = 480, camera: str = DEFAULT_CAMERA):
        self.renderer = mujoco.Renderer(model, height=height, width=width)
        self.camera = camera

    def frame(self, data: mujoco.MjData) -> np.ndarray:
        """(height, width, 3) uint8 RGB image of the current state."""
        self.renderer.update_scene(data, camera=self.camera)
        return self.renderer.render().copy()

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> SceneRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB image atomically as PNG."""
    with atomic_path(path, keep_suffix=True) as tmp:
        imageio.imwrite(tmp, image, format="png")
    return Path(path)


def save_mp4(path: str | Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    """Write RGB frames atomically as an H.264 MP4 (imageio-ffmpeg)."""
    if not frames:
        raise ValueError("no frames to write")
    with atomic_path(path, keep_suffix=True) as tmp, imageio.get_writer(
        tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", macro_block_size=8
    ) as writer:
        for frame in frames:
            writer.append_data(frame)
    return Path(path)
