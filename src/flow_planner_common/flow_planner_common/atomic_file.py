"""Atomic file writes: write to a temp file in the target's directory, then os.replace onto the target.

A kill at any moment leaves either the old file or the complete new one, plus at most a `*.partial*` temp file
(which readers ignore and `trajectory_schema.remove_partial_files` deletes). Every writer of the project uses this.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".partial"


@contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temp path to write; on a clean exit it replaces `path`, on an error it is deleted.

    keep_suffix=True ends the temp name with the target's suffix too (e.g. `.partial.png`) for writers that pick
    the format from the file name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = TEMP_SUFFIX + (path.suffix if keep_suffix else "")
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; the result is an ordinary readable file
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # the data is on disk before the rename makes it visible
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, obj: object) -> Path:
    """Write `obj` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
    return Path(path)


def save_figure(figure: object, path: str | Path, **savefig_kwargs: object) -> Path:
    """Save a matplotlib figure atomically (the format follows the file name's suffix)."""
    with atomic_path(path, keep_suffix=True) as tmp:
        figure.savefig(tmp, **savefig_kwargs)
    return Path(path)
