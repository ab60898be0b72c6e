"""A wide timeline window's counts: exchanges per lane, outcome and bucket of whole seconds.

They come from a run index's totals per second and per ten seconds (``lane_seconds``,
``lane_tens``) and, for a live run's last seconds not settled yet, from its rows. For a
finished run they cannot change: they are read once, in tiles of a few hundred buckets
kept for the next window, so that zooming and panning over an hour of exchanges costs a
few slices, not a scan of the index each time.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Counts", "lane_counts", "window_counts"]

# lane ("1", "2", …, "server") -> outcome -> exchanges per bucket
Counts = dict[str, dict[str, list[int]]]

_SUMS = "sum(answered), sum(timed_out), sum(ignored), sum(late), sum(keepalive)"


def lane_counts(
    db: sqlite3.Connection,
    first: int,
    step: int,
    buckets: int,
    settled: int,
    outcomes: Sequence[str],
) -> Counts:
    """Counts of ``buckets`` buckets of ``step`` seconds from ``first``: whole tens of
    seconds from the tens, the seconds around them, then what is not settled yet (a live
    run's last few seconds) from the rows themselves."""
    stop = first + buckets * step
    counts: Counts = {}

    def add(rows: Iterable[Sequence[int]]) -> None:
        for bucket, lane, *numbers in rows:
            series = counts.setdefault(str(lane) if lane else "server", {})
            for outcome, n in zip(outcomes, numbers, strict=True):
                if n:
                    series.setdefault(outcome, [0] * buckets)[bucket] += n

    tens_end = min(settled, stop) // 10 * 10 if step % 10 == 0 else first
    if tens_end > first:
        add(db.execute(
            f"SELECT (ten * 10 - ?) / ? AS b, client, {_SUMS} FROM lane_tens "
            "WHERE ten >= ? AND ten < ? GROUP BY b, client",
            (first, step, first // 10, tens_end // 10),
        ))  # fmt: skip
    add(db.execute(
        f"SELECT (second - ?) / ? AS b, client, {_SUMS} FROM lane_seconds "
        "WHERE second >= ? AND second < ? GROUP BY b, client",
        (first, step, max(first, tens_end), min(settled, stop)),
    ))  # fmt: skip
    tail = []
    for bucket, lane, outcome, n in db.execute(
        "SELECT CAST((t - ?) / ? AS INTEGER) AS b, coalesce(client, 0) AS lane, outcome, "
        "count(*) FROM exchanges WHERE t >= ? AND t < ? GROUP BY b, lane, outcome",
        (first, step, max(first, settled), stop),
    ):
        numbers = [0] * len(outcomes)
        numbers[outcome] = n
        tail.append((bucket, lane, *numbers))
    add(tail)
    return counts


_TILE = 256  # buckets per tile: a window of a few hundred pixels touches two or three
_KEPT = 128  # tiles kept, the least recently used dropped first

_kept: OrderedDict[tuple[str, int, int, int, int, int], Counts] = OrderedDict()
_lock = threading.Lock()


def window_counts(
    db: sqlite3.Connection,
    path: Path,
    meta: dict[str, Any],
    first: int,
    step: int,
    buckets: int,
    outcomes: Sequence[str],
) -> Counts:
    """Counts of a window (as :func:`lane_counts`). When the index is complete (its run
    has ended) they are put together from tiles of _TILE buckets, each read once and kept;
    ``meta`` is the index's."""
    settled = int(meta.get("settled") or 0)
    if not meta.get("complete"):
        return lane_counts(db, first, step, buckets, settled, outcomes)
    # The file itself names the version: a rebuilt index is a new file.
    stat = os.stat(path)
    version = (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size, step)
    low = first // step  # the window's buckets, numbered from the epoch
    high = low + buckets
    out: Counts = {}
    for tile in range(low // _TILE, (high - 1) // _TILE + 1):
        key = (*version, tile)
        with _lock:
            counts = _kept.get(key)
            if counts is not None:
                _kept.move_to_end(key)
        if counts is None:
            counts = lane_counts(db, tile * _TILE * step, step, _TILE, settled, outcomes)
            with _lock:
                _kept[key] = counts
                while len(_kept) > _KEPT:
                    _kept.popitem(last=False)
        # This tile's part of the window.
        start, stop = max(low, tile * _TILE), min(high, (tile + 1) * _TILE)
        for lane, series in counts.items():
            for outcome, values in series.items():
                part = values[start - tile * _TILE : stop - tile * _TILE]
                if any(part):
                    window = out.setdefault(lane, {}).setdefault(outcome, [0] * buckets)
                    window[start - low : stop - low] = part
    return out
