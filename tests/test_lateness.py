"""The lateness histogram the server reports when it stops."""

from __future__ import annotations

import pytest

from pingpong.core.lateness import Lateness


def test_percentiles_and_max() -> None:
    lateness = Lateness()
    assert lateness.percentile(0.5) == 0.0
    for micros in range(1, 101):  # 1 µs … 100 µs
        lateness.add(micros / 1e6)
    lateness.add(0.5)  # one very late timer, beyond the histogram
    assert lateness.count == 101
    assert lateness.percentile(0.5) == pytest.approx(60e-6)  # the 10 µs bin holding the median
    assert lateness.percentile(1.0) == 0.5
    assert lateness.max == 0.5
    assert lateness.describe() == "p50 0.06 p99 0.11 max 500.00 ms (n=101)"


def test_early_timers_count_as_on_time() -> None:
    lateness = Lateness()
    lateness.add(-0.001)
    assert lateness.max == 0.0
    assert lateness.percentile(0.99) == 0.0
