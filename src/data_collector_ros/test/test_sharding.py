"""Shards of the grid are disjoint, contiguous and cover the requested range exactly once."""

from __future__ import annotations

import pytest

from data_collector_ros.sharding import shard_ranges


@pytest.mark.parametrize(("start", "count", "shards"), [(0, 10, 1), (0, 10, 3), (5, 7, 7), (3, 2, 5), (0, 0, 2)])
def test_shards_cover_range_once(start: int, count: int, shards: int) -> None:
    ranges = shard_ranges(start, count, shards)
    indices = [i for s, n in ranges for i in range(s, s + n)]
    assert indices == list(range(start, start + count))
    sizes = [n for _, n in ranges]
    assert all(n > 0 for n in sizes) and (not sizes or max(sizes) - min(sizes) <= 1)
    assert len(ranges) == min(shards, count)


@pytest.mark.parametrize(("start", "count", "shards"), [(-1, 3, 1), (0, -2, 1), (0, 3, 0)])
def test_bad_shard_arguments_are_rejected(start: int, count: int, shards: int) -> None:
    with pytest.raises(ValueError):
        shard_ranges(start, count, shards)
