"""How late timers fire: a fixed-size histogram of lateness, for the server's own report.

The server schedules each answer and each keepalive round for an exact instant; the
difference between when the timer ran and that instant is its scheduling lateness.
It is what the protocol's timing promises come down to, so the server measures it
itself and reports p50/p99/max when it stops (the benchmark reads that line).
Bins of 10 µs up to 100 ms keep it exact enough in fixed memory; the maximum is
kept exactly.
"""

from __future__ import annotations

__all__ = ["Lateness"]

_BIN_S = 1e-5
_BINS = 10_000  # 100 ms; later values share the last bin (the maximum stays exact)


class Lateness:
    def __init__(self) -> None:
        self._bins = [0] * _BINS
        self.count = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.count += 1
        self.max = max(self.max, seconds)
        self._bins[min(int(seconds / _BIN_S), _BINS - 1)] += 1

    def percentile(self, q: float) -> float:
        """Seconds: the upper edge of the bin holding the q-quantile."""
        if not self.count:
            return 0.0
        rank = max(1, round(q * self.count))
        seen = 0
        for index, count in enumerate(self._bins):
            seen += count
            if seen >= rank:
                return self.max if index == _BINS - 1 else min((index + 1) * _BIN_S, self.max)
        return self.max  # pragma: no cover - the loop always reaches the rank

    def describe(self) -> str:
        """``p50 0.05 p99 0.31 max 2.10 ms (n=1234)``."""
        return (
            f"p50 {self.percentile(0.5) * 1000:.2f} p99 {self.percentile(0.99) * 1000:.2f} "
            f"max {self.max * 1000:.2f} ms (n={self.count})"
        )
