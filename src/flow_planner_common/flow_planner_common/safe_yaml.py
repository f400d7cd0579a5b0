"""Bounded YAML input files and bounded error messages.

`load_yaml_file` reads a YAML file of at most `MAX_YAML_BYTES` with a SafeLoader that refuses anchors and aliases
(`&a`, `*a`, merge keys), so a small file cannot expand into a huge value; `short_repr` renders a value for an
error message with bounded work and length (one line, at most `MAX_ECHO_CHARS` characters).
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

import yaml

MAX_YAML_BYTES = 1_000_000
MAX_ECHO_CHARS = 200
ELLIPSIS = "…"


class YamlInputError(ValueError):
    """A YAML input file is missing, too large, uses anchors/aliases or is not valid YAML."""


class NoAliasSafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses anchors and aliases (their expansion is unbounded in size)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            kind = "aliases (*" if isinstance(event, yaml.AliasEvent) else "anchors (&"
            raise YamlInputError(f"line {event.start_mark.line + 1}: {kind}{truncate(anchor, 40)}) are not allowed")
        return super().compose_node(parent, index)


def truncate(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """`text` on one line (line breaks become spaces), cut to `limit` characters with a trailing '…'."""
    text = " ".join(str(text)[: limit + 1].splitlines())
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8
_REPR.maxstring = _REPR.maxother = MAX_ECHO_CHARS


def short_repr(value: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """repr(value) for an error message: nested containers elided (bounded work), one line, <= `limit` chars."""
    return truncate(_REPR.repr(value), limit)


def load_yaml_text(text: str, source: str = "<string>") -> Any:
    """Parse YAML text without anchors/aliases; YamlInputError with one short line otherwise."""
    try:
        return yaml.load(text, Loader=NoAliasSafeLoader)  # a SafeLoader subclass
    except YamlInputError as exc:
        raise YamlInputError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise YamlInputError(f"{source}: not valid YAML ({truncate(first)})") from None
    except RecursionError:
        raise YamlInputError(f"{source}: YAML nested too deeply") from None


def load_yaml_file(path: str | Path, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """Read and parse a YAML file of at most `max_bytes` bytes (UTF-8), without anchors/aliases."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise YamlInputError(f"{path} not found") from None
    except OSError as exc:
        raise YamlInputError(f"{path}: cannot read ({truncate(exc.strerror or str(exc))})") from None
    if len(raw) > max_bytes:
        raise YamlInputError(f"{path}: larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise YamlInputError(f"{path}: not UTF-8 text") from None
    return load_yaml_text(text, str(path))
