"""Warnings about repeated bad input, throttled (ROS-free): a node that logs every bad message of a 1 kHz topic or
every refused request of a flood drowns its log. `Throttle` lets the first warning of a kind through at once and then
at most one per `period` seconds; the next one let through says how many of that kind were held back meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable


class Throttle:
    """At most one warning per kind (`key`) every `period` seconds of `clock`."""

    def __init__(self, period: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not period >= 0:
            raise ValueError(f"period must be >= 0, got {period}")
        self.period, self._clock = period, clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def __call__(self, key: str, message: str) -> str | None:
        """The line to log for `message` now, or None while warnings of this kind are held back."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.period:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            return f"{message} (and {held} more like it in the last {now - last:.1f} s, not logged)"
        return message
