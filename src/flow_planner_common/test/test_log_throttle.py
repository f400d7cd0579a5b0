"""Throttled warnings (log_throttle.Throttle): the first of a kind at once, then at most one per period, the next
one let through counting those held back; kinds are independent."""

from __future__ import annotations

import pytest

from flow_planner_common.log_throttle import Throttle


def test_one_warning_per_kind_and_period_counting_the_rest() -> None:
    now = [0.0]
    throttle = Throttle(1.0, clock=lambda: now[0])
    assert throttle("scene", "bad scene 0") == "bad scene 0"
    for i in range(1, 1000):  # a 1 kHz flood for a second
        now[0] = i / 1000
        assert throttle("scene", f"bad scene {i}") is None
    assert throttle("request", "bad request") == "bad request"  # another kind is not held back
    now[0] = 1.0
    assert throttle("scene", "bad scene 1000") == "bad scene 1000 (and 999 more like it in the last 1.0 s, not logged)"
    now[0] = 5.0
    assert throttle("scene", "bad scene again") == "bad scene again"  # nothing held back: no count


def test_a_negative_period_is_refused() -> None:
    with pytest.raises(ValueError, match="period must be >= 0"):
        Throttle(-1.0)
    assert Throttle(0.0)("k", "m") == "m"
