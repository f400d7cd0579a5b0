"""Launch-argument handling shared by plan.launch.py and collect.launch.py, ROS-free (no `launch` import), so that it
is unit-tested where launch_ros is not installed.

Rules (what a ROS user expects):
- An argument that maps onto a node parameter overrides the `params_file` only when it is given: its default is
  the empty string, meaning "the params file's value (or the node's default) applies".
- Values are checked before any process starts; a bad one stops the launch with one line naming the argument.
  Booleans accept exactly what launch's IfCondition accepts (true/false/1/0, any case): `record_bag:=maybe` is
  refused like `use_sim:=yes`.
- A `params_file` that does not exist is refused (not a warning followed by the node's built-in defaults).
- A node the launch depends on that exits with a non-zero code stops the launch, whose exit code is then non-zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from flow_planner_common.safe_yaml import YamlInputError, load_yaml_file

#: Default of an argument that overrides a parameter only when given.
NOT_GIVEN = ""
_TRUE, _FALSE = ("true", "1"), ("false", "0")


class LaunchArgumentError(ValueError):
    """A launch argument value that is refused; the message names the argument."""


@dataclass(frozen=True)
class LaunchArgument:
    """One launch argument: `kind` is str, int or bool; `low`/`high` bound an int (inclusive); `parameter` = it
    overrides the node parameter of the same name when given (else it only steers the launch file)."""

    name: str
    kind: type
    description: str
    default: str = NOT_GIVEN
    low: int | None = None
    high: int | None = None
    parameter: bool = True

    @property
    def launch_description(self) -> str:
        """The description `ros2 launch --show-args` prints."""
        if self.parameter and self.default == NOT_GIVEN:
            return f"{self.description} (not given: the params_file's value applies)"
        return self.description

    def parse(self, text: str) -> object:
        """The typed value of `text`; LaunchArgumentError with a one-line reason."""
        text = text.strip()
        if self.kind is bool:
            return parse_bool(self.name, text)
        if self.kind is int:
            return parse_int(self.name, text, self.low, self.high)
        if self.parameter and not text:
            raise LaunchArgumentError(f"{self.name} must not be empty")
        return text


def parse_bool(name: str, text: str) -> bool:
    """true/false/1/0 (any case), as launch's IfCondition reads them; anything else is refused."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise LaunchArgumentError(f"{name} must be true or false, got {text[:40]!r}")


def parse_int(name: str, text: str, low: int | None = None, high: int | None = None) -> int:
    """An integer within [low, high] (either bound optional)."""
    try:
        value = int(text.strip())
    except ValueError:
        raise LaunchArgumentError(f"{name} must be an integer, got {text[:40]!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            raise LaunchArgumentError(f"{name} must be >= {low}, got {value}")
        if low is None:
            raise LaunchArgumentError(f"{name} must be <= {high}, got {value}")
        raise LaunchArgumentError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def parse_all(arguments: Iterable[LaunchArgument], values: Mapping[str, str]) -> dict[str, object]:
    """Typed values of every argument that was given (non-empty) or has a real default; checked one by one."""
    parsed = {}
    for argument in arguments:
        text = values.get(argument.name, argument.default)
        if argument.parameter and text.strip() == NOT_GIVEN:
            continue
        parsed[argument.name] = argument.parse(text)
    return parsed


def node_overrides(arguments: Iterable[LaunchArgument], values: Mapping[str, str]) -> dict[str, object]:
    """The parameter overrides of the arguments that were given: what goes after the params file."""
    arguments = list(arguments)
    parsed = parse_all(arguments, values)
    return {a.name: parsed[a.name] for a in arguments if a.parameter and a.name in parsed}


def check_params_file(text: str) -> str:
    """The params file path, which must be an existing file of valid YAML (the nodes read its parameters)."""
    path = Path(text.strip()).expanduser()
    if not text.strip():
        raise LaunchArgumentError("params_file must not be empty")
    if not path.is_file():
        raise LaunchArgumentError(f"params_file {str(path)[:200]} does not exist (or is not a file)")
    try:
        load_yaml_file(path)
    except YamlInputError as exc:
        raise LaunchArgumentError(f"params_file {' '.join(str(exc).split())}") from None
    return str(path)


def params_file_value(params_file: str, name: str, default: object) -> object:
    """A parameter as a params file sets it (under any node key, e.g. `/**`), else `default`."""
    content = load_yaml_file(params_file) or {}
    for section in content.values() if isinstance(content, dict) else ():
        parameters = section.get("ros__parameters", {}) if isinstance(section, dict) else {}
        if isinstance(parameters, dict) and name in parameters:
            return parameters[name]
    return default


def exit_failure(name: str, returncode: int | None, shutting_down: bool) -> str | None:
    """Why the launch must fail because process `name` exited, or None (a clean exit, or one during shutdown)."""
    if shutting_down or returncode == 0:
        return None
    return f"{name} exited with code {returncode}; stopping the launch"
