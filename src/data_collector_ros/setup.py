"""ament_python package data_collector_ros. Launch and config files live once at the workspace top level
(launch/, config/) and are installed from there into share/data_collector_ros/."""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "data_collector_ros"
# Workspace-level files this package owns, relative to this setup.py (sources stay single).
LAUNCH_FILES = ["collect.launch.py"]
CONFIG_FILES = ["collector.yaml", "sim_bridge.yaml"]
WORKSPACE = Path("..") / ".."


def workspace_files(folder: str, names: list[str]) -> list[str]:
    return [str(WORKSPACE / folder / name) for name in names]


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["assets/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", workspace_files("launch", LAUNCH_FILES)),
        (f"share/{PACKAGE}/config", workspace_files("config", CONFIG_FILES)),
        # The MJCF scene, also in the share dir for non-Python users (the code loads the package-data copy).
        (f"share/{PACKAGE}/mjcf", [f"{PACKAGE}/assets/dual_arm_tray.xml"]),
    ],
    # Runtime Python dependencies (pip names); ROS ones are in package.xml.
    install_requires=["setuptools", "numpy", "pyyaml", "tqdm", "mujoco", "torch", "imageio", "imageio-ffmpeg",
                      "rosbags", "ray"],
    zip_safe=False,
    maintainer="flow-planner team",
    maintainer_email="team@flow-planner.dev",
    description="MuJoCo dual-arm tray scene, controller bridge, CEM expert and data collector.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_bridge = data_collector_ros.sim_bridge:main",
            "collector = data_collector_ros.collector_node:main",
            "merge = data_collector_ros.merge:entry_point",
            "collect_ray = data_collector_ros.collect_ray:entry_point",
        ],
    },
)
