"""Split a range of grid indices into disjoint, contiguous shards (one per collector process)."""

from __future__ import annotations


def shard_ranges(start_index: int, count: int, shards: int) -> list[tuple[int, int]]:
    """Return (start_index, count) per shard; together they cover [start, start + count) once.

    Shards differ in size by at most one; empty shards are dropped.
    """
    if start_index < 0 or count < 0 or shards < 1:
        raise ValueError(f"need start_index >= 0, count >= 0, shards >= 1 (got {start_index}, {count}, {shards})")
    base, extra = divmod(count, shards)
    ranges = []
    cursor = start_index
    for shard in range(shards):
        size = base + (1 if shard < extra else 0)
        if size:
            ranges.append((cursor, size))
        cursor += size
    return ranges
