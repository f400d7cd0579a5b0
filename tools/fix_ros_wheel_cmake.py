"""Rewrite the wheel-build machine's paths baked into the ROS 2 wheels' CMake exports.

The ros-jazzy-* wheels on PyPI were built under /opt/python/cp311-cp311; their exported CMake
targets name that interpreter's include dir and numpy's. Point them at this venv's interpreter and
numpy so that `colcon build` of our interface package finds real paths. Idempotent.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

import numpy

WHEEL_PREFIX = "/opt/python/cp311-cp311"
REPLACEMENTS = (
    (f"{WHEEL_PREFIX}/lib/python3.11/site-packages/numpy/_core/include", numpy.get_include()),
    (f"{WHEEL_PREFIX}/include/python3.11", sysconfig.get_paths()["include"]),
)


def fix_tree(share_dir: Path) -> int:
    """Rewrite every *.cmake file under share_dir; return how many files changed."""
    changed = 0
    for path in share_dir.rglob("*.cmake"):
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        new_text = text
        for old, new in REPLACEMENTS:
            new_text = new_text.replace(old, new)
        if new_text != text:
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(new_text, encoding="utf-8", errors="surrogateescape")
            tmp.replace(path)
            changed += 1
    return changed


def main() -> int:
    share_dir = Path(sys.prefix) / "share"
    if not share_dir.is_dir():
        print(f"fix_ros_wheel_cmake: no {share_dir}; are the ROS wheels installed?", file=sys.stderr)
        return 1
    changed = fix_tree(share_dir)
    print(f"fix_ros_wheel_cmake: rewrote {changed} CMake file(s) under {share_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
