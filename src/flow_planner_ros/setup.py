"""ament_python package flow_planner_ros. Launch and config files live once at the workspace top level
(launch/, config/) and are installed from there into share/flow_planner_ros/."""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "flow_planner_ros"
# Workspace-level files this package owns, relative to this setup.py (sources stay single).
LAUNCH_FILES = ["plan.launch.py"]
CONFIG_FILES = ["planner.yaml", "flow_config.yaml", "flow_planner.rviz"]
# The default checkpoint trained by tools/pipeline.sh and its metadata (installed when present).
CHECKPOINT_FILES = [
    str(p) for p in sorted(Path("checkpoints").glob("default*")) if p.suffix in (".safetensors", ".json")
]
WORKSPACE = Path("..") / ".."


def workspace_files(folder: str, names: list[str]) -> list[str]:
    return [str(WORKSPACE / folder / name) for name in names]


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", workspace_files("launch", LAUNCH_FILES)),
        (f"share/{PACKAGE}/config", workspace_files("config", CONFIG_FILES)),
        (f"share/{PACKAGE}/checkpoints", CHECKPOINT_FILES),
    ],
    # Runtime Python dependencies (pip names); ROS ones are in package.xml.
    install_requires=[
        "setuptools", "numpy", "pyyaml", "tqdm", "matplotlib", "torch", "torchcfm", "safetensors",
        "onnx", "onnxruntime", "scipy", "ompl",
    ],
    zip_safe=False,
    maintainer="flow-planner team",
    maintainer_email="team@flow-planner.dev",
    description="Conditional flow matching planner for a dual-arm tray task.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "synthetic_data = flow_planner_ros.cli.synthetic_data:main",
            "train = flow_planner_ros.cli.train:main",
            "diagnose = flow_planner_ros.cli.diagnose:main",
            "planner = flow_planner_ros.node.planner_node:main",
        ],
    },
)
