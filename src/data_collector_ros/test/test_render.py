"""Offscreen rendering (headless GL): a frame of the scene is a non-empty image; PNG and MP4 files are written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_collector_ros.simulation import Simulation


@pytest.fixture(scope="module")
def renderer():
    from data_collector_ros.render import SceneRenderer

    sim = Simulation()
    try:
        scene_renderer = SceneRenderer(sim.model, width=320, height=240)
    except Exception as exc:  # no EGL/OSMesa on this machine
        pytest.skip(f"headless OpenGL unavailable ({type(exc).__name__}: {exc}); run tools/install_system_deps.sh")
    yield sim, scene_renderer
    scene_renderer.close()


def test_rendered_frame_shows_the_scene(renderer, tmp_path: Path) -> None:
    from data_collector_ros.render import save_mp4, save_png

    sim, scene_renderer = renderer
    frame = scene_renderer.frame(sim.data)
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    assert frame.std() > 10  # not a blank image
    # The tray (orange) is visible: many pixels with red >> blue.
    orange = (frame[..., 0] > 150) & (frame[..., 2] < 100)
    assert orange.sum() > 100
    png = save_png(tmp_path / "scene.png", frame)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frames = []
    for _ in range(5):
        sim.step(25)
        frames.append(scene_renderer.frame(sim.data))
    mp4 = save_mp4(tmp_path / "clip.mp4", frames, fps=10)
    assert mp4.stat().st_size > 1000
    assert not list(tmp_path.glob("*.partial*"))
