"""A wide timeline window's counts: exchanges per lane, outcome and bucket of whole seconds.

They come from a run index's totals per second and per ten seconds (``lane_seconds``,
``lane_tens``) and, for a live run's last seconds not settled yet, from its rows. For a
finished run they cannot change: the counts of the whole run at a bucket size are read
once and kept (a few at a time), and each window is a slice of them, so that zooming and
panning over an hour of exchanges costs a slice, not a scan of the index.
"""

from __future__ import annotations

import math
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

_KEPT = 16  # whole-run counts kept, the least recently used dropped first
_MAX_CELLS = 2_000_000  # buckets × lanes × outcomes of one whole run, beyond which none is kept

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


class _WholeRun:
    """The counts of a whole finished run at one bucket size, from the bucket at ``first``."""

    def __init__(self, first: int, counts: Counts) -> None:
        self.first = first
        self.counts = counts

    def window(self, first: int, step: int, buckets: int) -> Counts:
        offset = (first - self.first) // step
        low, high = max(0, offset), max(0, offset + buckets)
        before = [0] * (low - offset)
        out: Counts = {}
        for lane, series in self.counts.items():
            for outcome, values in series.items():
                part = values[low:high]
                if any(part):
                    window = before + part
                    window += [0] * (buckets - len(window))
                    out.setdefault(lane, {})[outcome] = window
        return out


_kept: OrderedDict[tuple[str, int, int, int, int], _WholeRun] = OrderedDict()
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
    """Counts of a window (as :func:`lane_counts`), sliced from the whole run's when the
    index is complete (its run has ended); ``meta`` is the index's."""
    settled = int(meta.get("settled") or 0)
    run_first, run_last = meta.get("first"), meta.get("last")
    if not meta.get("complete") or run_first is None or run_last is None:
        return lane_counts(db, first, step, buckets, settled, outcomes)
    whole_first = math.floor(run_first / step) * step
    whole_buckets = max(1, math.ceil((math.floor(run_last) + 1 - whole_first) / step))
    lanes = db.execute("SELECT count(DISTINCT client) FROM lane_seconds").fetchone()[0]
    if whole_buckets * max(1, lanes) * len(outcomes) > _MAX_CELLS:
        return lane_counts(db, first, step, buckets, settled, outcomes)
    # The file itself names the version: a rebuilt index is a new file.
    stat = os.stat(path)
    key = (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size, step)
    with _lock:
        whole = _kept.get(key)
        if whole is not None:
            _kept.move_to_end(key)
    if whole is None:
        counts = lane_counts(db, whole_first, step, whole_buckets, settled, outcomes)
        whole = _WholeRun(whole_first, counts)
        with _lock:
            _kept[key] = whole
            while len(_kept) > _KEPT:
                _kept.popitem(last=False)
    return whole.window(first, step, buckets)
