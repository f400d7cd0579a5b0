"""One way to declare a node's parameters: a `ParameterSpec` per parameter (default, description, inclusive
numeric range or string choices, read-only), defined once per node in ROS-free code. From the specs come the ROS
descriptors (`ros2 param describe` shows descriptions, ranges and read-only flags), the checked values, and the
node's params YAML (generated, so the shipped file cannot drift from the code).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ParameterValue = bool | int | float | str | list
INT64_MAX = 2**63 - 1  # the upper end of an integer range without a limit (ROS integers are int64)


class ParameterError(ValueError):
    """A parameter value a node refuses; the message names the parameter."""


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter: default, description, inclusive numeric range or string choices, read_only = start-up only.

    low with high None: no upper limit (just >= low). dynamic_typing: the value's type may differ from the
    default's (e.g. a list that may be empty)."""

    name: str
    default: ParameterValue | None
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False
    dynamic_typing: bool = False


def checked_value(spec: ParameterSpec, value: object) -> object:
    """`value` checked against the spec's type (that of its default), range and choices; ParameterError if not."""
    default = spec.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParameterError(f"{spec.name} must be true or false")
        return value
    if isinstance(default, int | float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterError(f"{spec.name} must be a number")
        if isinstance(default, int) and not float(value).is_integer():
            raise ParameterError(f"{spec.name} must be an integer")
        number = int(value) if isinstance(default, int) else float(value)
        if spec.low is not None:
            in_range = math.isfinite(number) and spec.low <= number and (spec.high is None or number <= spec.high)
            if not in_range and spec.high is None:
                raise ParameterError(f"need {spec.name} >= {spec.low:g} (got {number})")
            if not in_range:
                raise ParameterError(f"{spec.name}={number} not in [{spec.low}, {spec.high}]")
        if not math.isfinite(number):
            raise ParameterError(f"{spec.name} must be finite")
        return number
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ParameterError(f"{spec.name} must be a string")
        if spec.choices and value not in spec.choices:
            raise ParameterError(f"{spec.name} must be one of {', '.join(spec.choices)}, got {value[:40]!r}")
        return value
    return list(value) if isinstance(value, list | tuple) else value


def parameter_descriptor(spec: ParameterSpec):  # -> rcl_interfaces.msg.ParameterDescriptor
    """The ROS descriptor of a parameter: description, range or choices, read-only and dynamic-typing flags."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    descriptor = ParameterDescriptor(
        name=spec.name, description=spec.description, read_only=spec.read_only, dynamic_typing=spec.dynamic_typing
    )
    if spec.choices:
        descriptor.additional_constraints = "one of: " + ", ".join(spec.choices)
    if isinstance(spec.default, bool) or spec.low is None:
        return descriptor
    if isinstance(spec.default, int):
        high = INT64_MAX if spec.high is None else int(spec.high)
        descriptor.integer_range = [IntegerRange(from_value=int(spec.low), to_value=high, step=1)]
    else:
        high = math.inf if spec.high is None else spec.high
        descriptor.floating_point_range = [FloatingPointRange(from_value=spec.low, to_value=high, step=0.0)]
    return descriptor


def declare_parameters(node, specs: Iterable[ParameterSpec]) -> dict[str, object]:
    """Declare every spec on an rclpy node (with its descriptor); the values it starts with, by name."""
    return {spec.name: node.declare_parameter(spec.name, spec.default, parameter_descriptor(spec)).value
            for spec in specs}  # fmt: skip


def yaml_value(value: ParameterValue | None) -> str:
    """A parameter value as YAML text (ROS params-file conventions: .nan, true/false, "" for an empty string)."""
    if value is None:
        return "[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return ".nan" if math.isnan(value) else repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return '""' if value == "" else value
    return str(value)


def parameters_yaml(node_name: str, specs: Sequence[ParameterSpec], header: Sequence[str]) -> str:
    """A params file: `header` comment lines, then every parameter with its description, range and default
    ((*) marks read-only ones; [low, inf) a range without an upper limit)."""
    lines = [f"# {line}" if line else "#" for line in header]
    lines += [f"{node_name}:", "  ros__parameters:"]
    for spec in specs:
        upper = "inf)" if spec.high is None else f"{spec.high:g}]"
        limits = f" [{spec.low:g}, {upper}" if spec.low is not None else ""
        lines.append(f"    # {spec.description}{limits}{' (*)' if spec.read_only else ''}")
        lines.append(f"    {spec.name}: {yaml_value(spec.default)}")
    return "\n".join(lines) + "\n"
