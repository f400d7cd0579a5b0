"""Print a full pin list (requirements/lock.txt) of the running venv.

Build a scratch venv from requirements/direct.txt first (torch==2.13.0 alone, then the rest with
`-c requirements/constraints.txt`), then run this inside it. Metadata folders that the ROS wheels
ship inside other wheels (no INSTALLER/RECORD) are not separate distributions and are skipped.
"""

from __future__ import annotations

import importlib.metadata as md

EXCLUDED = {"pip", "torchvision"}  # torchvision: only CUDA builds are reachable; torchdyn works without it


def main() -> None:
    pins = set()
    for dist in md.distributions():
        if dist.read_text("INSTALLER") is None or dist.read_text("RECORD") is None:
            continue
        name = dist.metadata["Name"]
        if name.lower() in EXCLUDED:
            continue
        version = dist.version.split("+")[0]  # torch 2.13.0+cpu -> the on-disk CPU build via ==2.13.0
        pins.add(f"{name}=={version}")
    print("# Every Python package of .venv, pinned; installed with --no-deps by tools/setup_venv.sh.")
    print("# Regenerate with tools/lock_requirements.py (see its docstring).")
    for pin in sorted(pins, key=str.lower):
        print(pin)


if __name__ == "__main__":
    main()
