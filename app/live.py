"""Live state of a run, derived from its parsed log records — pure, bounded, no I/O.

The tailer feeds records in (:meth:`LiveState.on_server`, :meth:`LiveState.on_client`);
the hub takes a full :meth:`snapshot` for a new viewer and, at most ten times a
second, the :meth:`take_update` of what changed since the previous one.

Everything here has a fixed size however long the run: counters; round-trip
statistics kept in a histogram of 1 ms bins (exact min/avg/max and percentiles at
log resolution, see :class:`RoundTrips`); rings (``deque(maxlen=…)``) for the
latest exchanges and the chart series; a fixed-bin histogram of server delays.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pingpong.logformat import (
    Answered,
    ClientRecord,
    Ignored,
    ServerRecord,
    TimedOut,
    Unpaired,
    format_time,
)
from pingpong.protocol import Keepalive
from pingpong.settings import RunSettings

__all__ = ["EXCHANGES", "POINTS", "LiveState", "RoundTrips"]

EXCHANGES = 200  # latest exchanges kept
POINTS = 300  # points per chart series
DELAY_BINS = 20
_MAX_BINS = 1 << 16


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


class RoundTrips:
    """Round-trip times of one client: exact count, sum, min, max; percentiles by histogram.

    Values are whole milliseconds (the logs' resolution), so a histogram of 1 ms bins
    up to the timeout gives exact percentiles in fixed memory. A Fenwick tree over
    the bins makes adding a value and finding a percentile O(log bins).
    """

    def __init__(self, limit_ms: int) -> None:
        self.width = max(1, -(-(limit_ms + 1) // _MAX_BINS))  # ms per bin, 1 unless huge
        self.size = (limit_ms + 1) // self.width + 2
        self._tree = [0] * (self.size + 1)
        self.count = 0
        self.total = 0.0
        self.min: float | None = None
        self.max: float | None = None

    def add(self, value_ms: float) -> None:
        self.count += 1
        self.total += value_ms
        self.min = value_ms if self.min is None else min(self.min, value_ms)
        self.max = value_ms if self.max is None else max(self.max, value_ms)
        index = min(max(0, round(value_ms) // self.width), self.size - 1) + 1
        while index <= self.size:
            self._tree[index] += 1
            index += index & -index

    def percentile(self, q: float) -> float:
        """Nearest rank, as :func:`pingpong.stats.percentile`: the ⌈q·n⌉-th smallest value."""
        rank = max(1, math.ceil(q * self.count))
        position, step = 0, 1 << self.size.bit_length()
        while step:
            following = position + step
            if following <= self.size and self._tree[following] < rank:
                position = following
                rank -= self._tree[following]
            step >>= 1
        return float(position * self.width)  # position is the 0-based bin index

    def count_at_most(self, value_ms: float) -> int:
        """How many values are at most ``value_ms`` (exact with 1 ms bins; a Prometheus bucket)."""
        index = min(max(-1, int(value_ms // self.width)), self.size - 1) + 1
        total = 0
        while index > 0:
            total += self._tree[index]
            index -= index & -index
        return total

    def stats(self) -> dict[str, float] | None:
        if not self.count:
            return None
        assert self.min is not None and self.max is not None  # noqa: PT018
        return {
            "min": self.min,
            "avg": round(self.total / self.count, 1),
            "p50": self.percentile(0.5),
            "p95": self.percentile(0.95),
            "max": self.max,
        }


@dataclass
class _Client:
    number: int
    round_trips: RoundTrips
    sent: int = 0
    answered: int = 0
    timed_out: int = 0
    late: int = 0
    keepalives: int = 0
    # (epoch seconds, round trip ms, id of its exchange)
    points: deque[tuple[float, float, int]] = field(default_factory=lambda: deque(maxlen=POINTS))

    def counters(self) -> dict[str, Any]:
        return {
            "client": self.number,
            "sent": self.sent,
            "answered": self.answered,
            "timed_out": self.timed_out,
            "late": self.late,
            "keepalives": self.keepalives,
            "round_trip_ms": self.round_trips.stats(),
        }


class LiveState:
    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.requests = 0
        self.answered = 0
        self.ignored = 0
        self.keepalives = 0
        self.last_response: int | None = None
        self.bad_lines = 0
        self.clients: dict[int, _Client] = {}
        self.exchanges: deque[dict[str, Any]] = deque(maxlen=EXCHANGES)
        self._next_exchange = 0
        # Per-second counts, keyed by whole epoch second.
        self.rates: dict[int, dict[str, int]] = {}
        low, high = settings.delay_ms.low, settings.delay_ms.high
        self.delay_low = low
        self.delay_width = max(1, -(-(high - low + 1) // DELAY_BINS))
        self.delays = [0] * DELAY_BINS
        # What changed since the last take_update().
        self._new_exchanges: list[dict[str, Any]] = []
        self._new_points: dict[int, list[tuple[float, float, int]]] = {}
        self._touched_seconds: set[int] = set()
        self._changed = False

    # -- feeding ------------------------------------------------------------------

    def client(self, number: int) -> _Client:
        if number not in self.clients:
            self.clients[number] = _Client(number, RoundTrips(self.settings.timeout_ms + 1000))
        return self.clients[number]

    def _count(self, when: datetime, name: str) -> None:
        second = int(when.timestamp())
        bucket = self.rates.get(second)
        if bucket is None:
            if self.rates and second < min(self.rates) and len(self.rates) >= POINTS:
                return  # older than the window
            bucket = self.rates[second] = {
                "requests": 0,
                "answered": 0,
                "ignored": 0,
                "timed_out": 0,
            }
            while len(self.rates) > POINTS:
                del self.rates[min(self.rates)]
        bucket[name] += 1
        self._touched_seconds.add(second)

    def _exchange(
        self,
        when: datetime,
        outcome: str,
        client: int | None,
        request: int | None,
        response: int | None,
        round_trip_ms: float | None = None,
    ) -> None:
        exchange = {
            "id": self._next_exchange,
            "time": format_time(when),
            "client": client,
            "request": request,
            "response": response,
            "round_trip_ms": round_trip_ms,
            "outcome": outcome,
        }
        self._next_exchange += 1
        self.exchanges.append(exchange)
        self._new_exchanges.append(exchange)
        del self._new_exchanges[:-EXCHANGES]

    def on_server(self, record: ServerRecord) -> None:
        self._changed = True
        if isinstance(record, Unpaired):
            self.keepalives += 1
            self.last_response = record.response.response
            return
        self.requests += 1
        self._count(record.request_time, "requests")
        if isinstance(record, Ignored):
            self.ignored += 1
            self._count(record.request_time, "ignored")
            self._exchange(record.request_time, "ignored", None, record.request.request, None)
            return
        self.answered += 1
        self.last_response = record.response.response
        self._count(record.response_time, "answered")
        delay = _ms(record.response_time, record.request_time)
        index = int((delay - self.delay_low) // self.delay_width)
        self.delays[min(max(index, 0), DELAY_BINS - 1)] += 1

    def on_client(self, number: int, record: ClientRecord) -> None:
        self._changed = True
        client = self.client(number)
        if isinstance(record, Answered):
            client.sent += 1
            client.answered += 1
            round_trip = float(round(_ms(record.response_time, record.request_time)))
            client.round_trips.add(round_trip)
            point = (record.response_time.timestamp(), round_trip, self._next_exchange)
            client.points.append(point)
            self._new_points.setdefault(number, []).append(point)
            self._exchange(
                record.response_time, "answered", number, record.request.request,
                record.response.response, round_trip,
            )  # fmt: skip
        elif isinstance(record, TimedOut):
            client.sent += 1
            client.timed_out += 1
            self._count(record.response_time, "timed_out")
            self._exchange(record.response_time, "timed out", number, record.request.request, None)
        elif isinstance(record.response, Keepalive):
            client.keepalives += 1
            self._exchange(
                record.response_time, "keepalive", number, None, record.response.response
            )
        else:
            client.late += 1
            self._exchange(
                record.response_time, "late", number, record.response.request,
                record.response.response,
            )  # fmt: skip

    def on_bad_line(self) -> None:
        self.bad_lines += 1
        self._changed = True

    # -- reading ------------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        return {
            "server": {
                "requests": self.requests,
                "answered": self.answered,
                "ignored": self.ignored,
                "ignored_pct": round(100 * self.ignored / self.requests, 1) if self.requests else 0,
                "keepalives": self.keepalives,
                "last_response": self.last_response,
                "bad_lines": self.bad_lines,
            },
            "clients": [self.clients[n].counters() for n in sorted(self.clients)],
        }

    def _delays(self) -> dict[str, Any]:
        return {"low": self.delay_low, "width": self.delay_width, "counts": list(self.delays)}

    def _rates(self, seconds: list[int]) -> list[dict[str, int]]:
        return [{"t": s, **self.rates[s]} for s in sorted(seconds) if s in self.rates]

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows of the run's traffic.

        It leaves the pending update alone: other viewers still need it. A viewer
        that gets both may see an exchange or a point twice, and drops it by its
        ``id`` (exchanges, and the points, which carry their exchange's id).
        """
        return {
            **self.counters(),
            "exchanges": list(self.exchanges),
            "round_trips": {str(n): list(c.points) for n, c in sorted(self.clients.items())},
            "rates": self._rates(list(self.rates)),
            "delays": self._delays(),
        }

    def take_update(self) -> dict[str, Any] | None:
        """What changed since the last call (``None`` if nothing), in the snapshot's shape."""
        if not self._changed:
            return None
        update = {
            **self.counters(),
            "exchanges": self._new_exchanges,
            "round_trips": {str(n): points for n, points in sorted(self._new_points.items())},
            "rates": self._rates(list(self._touched_seconds)),
            "delays": self._delays(),
        }
        self._new_exchanges, self._new_points, self._touched_seconds = [], {}, set()
        self._changed = False
        return update
