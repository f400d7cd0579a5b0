"""Package metadata is consistent with the code: every third-party import of a package's modules is
declared in its package.xml (for rosdep / a ROS install) and in setup.py (for pip), every console script
points at a real function and is installed where `ros2 run` / launch look for it."""

from __future__ import annotations

import ast
import importlib
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

WORKSPACE = Path(__file__).resolve().parents[1]
#: Packages with nodes, launch and config files; flow_planner_common is a library they both depend on;
#: flow_planner_eval (evaluation) depends on both, and neither on it.
NODE_PACKAGES = ("flow_planner_ros", "data_collector_ros")
PYTHON_PACKAGES = (*NODE_PACKAGES, "flow_planner_common", "flow_planner_eval")
ALL_PACKAGES = ("flow_planner_msgs", *PYTHON_PACKAGES)

# Import name of a ROS package = its package.xml key. Everything else maps to a rosdep key and a pip name.
ROS_MODULES = {
    "rclpy", "std_msgs", "std_srvs", "sensor_msgs", "geometry_msgs", "trajectory_msgs", "builtin_interfaces",
    "rosgraph_msgs", "rcl_interfaces", "ament_index_python", "launch", "launch_ros", "shape_msgs", "visualization_msgs",
    *ALL_PACKAGES,
}  # fmt: skip
#: import name -> (package.xml key, setup.py install_requires name)
THIRD_PARTY = {
    "numpy": ("python3-numpy", "numpy"),
    "numba": ("python3-numba", "numba"),
    "yaml": ("python3-yaml", "pyyaml"),
    "tqdm": ("python3-tqdm", "tqdm"),
    "matplotlib": ("python3-matplotlib", "matplotlib"),
    "torch": ("python3-torch", "torch"),
    "torchcfm": ("python3-torchcfm-pip", "torchcfm"),
    "safetensors": ("python3-safetensors-pip", "safetensors"),
    "onnxruntime": ("python3-onnxruntime-pip", "onnxruntime"),
    "onnx": ("python3-onnx-pip", "onnx"),
    "mujoco": ("python3-mujoco-pip", "mujoco"),
    "mink": ("python3-mink-pip", "mink"),
    "imageio": ("python3-imageio", "imageio"),
    "imageio_ffmpeg": ("python3-imageio-ffmpeg-pip", "imageio-ffmpeg"),
    "rosbags": ("python3-rosbags-pip", "rosbags"),
    "scipy": ("python3-scipy", "scipy"),
    "ray": ("python3-ray-pip", "ray"),
    "ompl": ("python3-ompl-pip", "ompl"),
    "threadpoolctl": ("python3-threadpoolctl", "threadpoolctl"),
}


def package_dir(package: str) -> Path:
    return WORKSPACE / "src" / package


def imported_top_level_modules(source_root: Path) -> dict[str, set[Path]]:
    """Absolute imports (level 0) of every .py file under source_root -> the files importing them."""
    found: dict[str, set[Path]] = {}
    for path in source_root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path)
    return found


def package_xml_dependencies(package: str) -> set[str]:
    root = ET.parse(package_dir(package) / "package.xml").getroot()
    tags = ("depend", "exec_depend", "build_depend", "buildtool_depend")
    return {element.text.strip() for tag in tags for element in root.iter(tag)}


def setup_tree(package: str) -> ast.Module:
    return ast.parse((package_dir(package) / "setup.py").read_text(encoding="utf-8"))


def setup_constant(package: str, name: str) -> object:
    """Value of a module-level literal assignment NAME = ... in the package's setup.py."""
    for node in setup_tree(package).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{package}/setup.py: no literal {name} = ...")


def setup_keyword(package: str, keyword: str) -> object:
    """Value of setup(keyword=...): a literal, or a module-level constant's name."""
    for node in ast.walk(setup_tree(package)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for kw in node.keywords:
                if kw.arg == keyword:
                    if isinstance(kw.value, ast.Name):
                        return setup_constant(package, kw.value.id)
                    return ast.literal_eval(kw.value)
    raise AssertionError(f"{package}/setup.py: setup() has no {keyword}=")


def console_scripts(package: str) -> dict[str, str]:
    entries = setup_keyword(package, "entry_points").get("console_scripts", [])
    return dict(tuple(part.strip() for part in entry.split("=", 1)) for entry in entries)


@pytest.mark.parametrize("package", PYTHON_PACKAGES)
def test_every_import_is_declared(package: str) -> None:
    imports = imported_top_level_modules(package_dir(package) / package)
    declared_xml = package_xml_dependencies(package)
    declared_pip = set(setup_keyword(package, "install_requires"))
    problems = []
    for module, files in sorted(imports.items()):
        where = ", ".join(sorted(str(f.relative_to(WORKSPACE)) for f in files))
        if module in sys.stdlib_module_names or module == "__future__" or module == package:
            continue
        if module in ROS_MODULES:
            if module not in declared_xml:
                problems.append(f"{module} (imported by {where}) missing from package.xml")
        elif module in THIRD_PARTY:
            xml_key, pip_name = THIRD_PARTY[module]
            if xml_key not in declared_xml:
                problems.append(f"{module} (imported by {where}) needs <exec_depend>{xml_key}</exec_depend>")
            if pip_name not in declared_pip:
                problems.append(f"{module} (imported by {where}) needs '{pip_name}' in setup.py install_requires")
        else:
            problems.append(f"{module} (imported by {where}) is unknown: add it to THIRD_PARTY in this test")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("package", PYTHON_PACKAGES)
def test_declared_python_dependencies_are_installed(package: str) -> None:
    by_pip_name = {pip_name: module for module, (_, pip_name) in THIRD_PARTY.items()}
    for pip_name in setup_keyword(package, "install_requires"):
        if pip_name == "setuptools":
            continue
        assert pip_name in by_pip_name, f"{package}: '{pip_name}' has no import mapping in this test"
        importlib.import_module(by_pip_name[pip_name])


@pytest.mark.parametrize("package", ALL_PACKAGES)
def test_package_xml_names_the_package(package: str) -> None:
    root = ET.parse(package_dir(package) / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == package
    build_type = root.find("export/build_type").text
    assert build_type == ("ament_cmake" if package == "flow_planner_msgs" else "ament_python")
    if build_type == "ament_python":
        assert setup_keyword(package, "name") == package
        assert (package_dir(package) / "resource" / package).is_file()
        assert "install_scripts=$base/lib/" + package in (package_dir(package) / "setup.cfg").read_text()


@pytest.mark.parametrize("package", PYTHON_PACKAGES)
def test_console_scripts_resolve_and_are_installed(package: str) -> None:
    prefix = Path(os.environ["AMENT_PREFIX_PATH"].split(":")[0]).parent  # install/
    for name, target in console_scripts(package).items():
        module_name, function_name = target.split(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, function_name)), f"{name} -> {target} is not callable"
        installed = prefix / package / "lib" / package / name
        assert installed.is_file() and os.access(installed, os.X_OK), f"{installed} missing: run `make setup`"


def test_launch_and_config_files_are_installed() -> None:
    from ament_index_python.packages import get_package_share_directory

    for package in (*NODE_PACKAGES, "flow_planner_eval"):
        share = Path(get_package_share_directory(package))
        for folder, keyword in (("launch", "LAUNCH_FILES"), ("config", "CONFIG_FILES")):
            if package == "flow_planner_eval" and folder == "launch":
                continue  # evaluation has no launch file
            names = setup_constant(package, keyword)
            assert names, f"{package} installs no {folder} files"
            for name in names:
                source = WORKSPACE / folder / name
                installed = share / folder / name
                assert source.is_file(), f"{source} is listed in {package}/setup.py but missing"
                assert installed.resolve().read_bytes() == source.read_bytes(), f"{installed} is stale: make setup"


@pytest.mark.parametrize("package", ["flow_planner_ros", "data_collector_ros"])
def test_planner_and_simulator_do_not_depend_on_evaluation_or_each_other(package: str) -> None:
    """The planner installs on a robot without MuJoCo or the simulator; neither package needs the evaluation."""
    root = ET.parse(package_dir(package) / "package.xml").getroot()
    runtime = {e.text.strip() for tag in ("depend", "exec_depend", "build_depend") for e in root.iter(tag)}
    pip = set(setup_keyword(package, "install_requires"))
    imports = imported_top_level_modules(package_dir(package) / package)
    assert "flow_planner_eval" not in runtime | set(imports)
    if package == "flow_planner_ros":
        assert not {"data_collector_ros", "python3-mujoco-pip"} & runtime, runtime
        assert "mujoco" not in pip, pip
        assert not {"data_collector_ros", "mujoco"} & set(imports), sorted(imports)
