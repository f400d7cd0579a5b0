"""ament_python package flow_planner_common: the shared definitions of the collector and the planner."""

from __future__ import annotations

from setuptools import find_packages, setup

PACKAGE = "flow_planner_common"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    # the robot geometry (kinematics.GEOMETRY_JSON) and the collision checker's spheres (robot_spheres.SPHERES_JSON)
    package_data={PACKAGE: ["robot_geometry.json", "robot_spheres.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    # Runtime Python dependencies (pip names); ROS ones are in package.xml.
    install_requires=["setuptools", "numpy", "numba", "pyyaml", "torch", "threadpoolctl"],
    zip_safe=False,
    maintainer="flow-planner team",
    maintainer_email="team@flow-planner.dev",
    description="Robot definition, trajectory schema, reference motion, message builders and file helpers "
    "shared by data_collector_ros and flow_planner_ros.",
    license="Apache-2.0",
    entry_points={"console_scripts": []},  # a library: no executables
)
