"""ament_python package flow_planner_eval: closed-loop evaluation (the evaluation scene configs live once at the
workspace top level, config/, and are installed from there into share/flow_planner_eval/)."""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "flow_planner_eval"
# Workspace-level files this package owns, relative to this setup.py (sources stay single).
CONFIG_FILES = ["eval_episodes.yaml", "eval_scenes.yaml", "eval_scenes_40.yaml"]
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
        (f"share/{PACKAGE}/config", workspace_files("config", CONFIG_FILES)),
    ],
    # Runtime Python dependencies (pip names); ROS ones are in package.xml.
    install_requires=["setuptools", "numpy", "pyyaml", "matplotlib", "mujoco", "torch"],
    zip_safe=False,
    maintainer="flow-planner team",
    maintainer_email="team@flow-planner.dev",
    description="Closed-loop evaluation of the flow planner beside the straight line and the CEM expert.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "evaluate = flow_planner_eval.cli.evaluate:main",
            "evaluate_compare = flow_planner_eval.cli.evaluate_compare:main",
            "make_scenes = flow_planner_eval.make_scenes:entry_point",
        ],
    },
)
