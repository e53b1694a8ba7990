"""Sorted, merged lists of closed integer intervals: the arithmetic under port sets and IP address sets."""

from __future__ import annotations

Intervals = tuple[tuple[int, int], ...]


def merge(intervals: list[tuple[int, int]]) -> Intervals:
    """Sorted, with overlapping and adjacent intervals joined."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def intersect(a: Intervals, b: Intervals) -> Intervals:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def subtract(a: Intervals, b: Intervals) -> Intervals:
    """What of `a` no interval of `b` covers."""
    remaining = list(a)
    for blo, bhi in b:
        nxt = []
        for lo, hi in remaining:
            if bhi < lo or blo > hi:
                nxt.append((lo, hi))
                continue
            if lo < blo:
                nxt.append((lo, blo - 1))
            if hi > bhi:
                nxt.append((bhi + 1, hi))
        remaining = nxt
    return tuple(remaining)
