"""Live state of a run, derived from its parsed log records — pure, bounded, no I/O.

The tailer feeds records in (:meth:`LiveState.on_server`, :meth:`LiveState.on_client`);
the hub takes a full :meth:`snapshot` for a new viewer and, at most ten times a
second, the :meth:`take_update` of what changed since the previous one.

Everything here has a fixed size however long the run: counters; round-trip
statistics kept in a histogram of 1 ms bins (exact min/avg/max and percentiles at
log resolution, see :class:`RoundTrips`); rings (``deque(maxlen=…)``) for the
latest exchanges and the chart series; a fixed-bin histogram of server delays;
the ignored requests still waiting for their client (see :class:`Attribution`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pingpong.check import DEFAULT_SLACK_MS
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
from pingpong.states import StrEnum

__all__ = [
    "EXCHANGES",
    "PENDING",
    "POINTS",
    "Attribution",
    "LiveState",
    "Outcome",
    "RoundTrips",
    "time_zone",
]

EXCHANGES = 200  # latest exchanges kept
POINTS = 300  # points per chart series
PENDING = 4096  # ignored requests (and timeouts) waiting for their pair
DELAY_BINS = 20
_MAX_BINS = 1 << 16


class Outcome(StrEnum):
    """What became of an exchange, as the page shows and filters it."""

    ANSWERED = "answered"  # a client got its PONG in time
    IGNORED = "ignored"  # the server chose not to answer (from server.log)
    TIMED_OUT = "timed out"  # a client gave up waiting
    KEEPALIVE = "keepalive"
    LATE = "late"  # a PONG after its request timed out, or answering nothing pending


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


def time_zone(now: datetime) -> dict[str, Any]:
    """The zone of the log times, for the page: the local zone of this machine at ``now``.

    The processes run here and log local wall-clock time, which says nothing of its
    zone; the page shows this once and draws its chart axes in it.
    """
    offset = now.utcoffset()
    seconds = round(offset.total_seconds()) if offset is not None else 0
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    label = f"UTC{sign}{hours:02d}:{minutes:02d}" if seconds else "UTC"
    return {"name": now.tzname() or label, "utc_offset_s": seconds, "label": label}


@dataclass(eq=False)  # compared by identity: two entries may hold equal values
class _Waiting:
    """One side of a pair not made yet: an ignored request, or a client's timeout."""

    time: datetime  # when the server received it, or when the client sent it
    request: int
    exchange: dict[str, Any] | None = None  # the ignored request's row
    client: int | None = None  # the client that timed out
    done: bool = False


class Attribution:
    """Finds the client of each ignored request, as the checker does.

    ``server.log`` does not name the client of a request it ignored; that client's
    timeout for the same request number does, one timeout later. Request numbers
    are per client, so several clients may have an ignored request with the same
    number waiting: a timeout pairs with one whose server receive time is within
    ``timeout_ms`` (plus slack) after the client sent it, the closest in time.
    Either side may be read first (the server's log can lag behind a client's when
    the tailer works off a backlog), so both wait. At most :data:`PENDING` of each
    wait; older ones are forgotten (their rows stay unattributed).
    """

    def __init__(self, timeout_ms: int, slack_ms: float = DEFAULT_SLACK_MS) -> None:
        self.low_ms = -slack_ms
        self.high_ms = timeout_ms + slack_ms
        self.ignored: dict[int, list[_Waiting]] = {}
        self.timeouts: dict[int, list[_Waiting]] = {}
        self._ignored_order: deque[_Waiting] = deque()
        self._timeouts_order: deque[_Waiting] = deque()

    @staticmethod
    def _wait(
        waiting: _Waiting, by_request: dict[int, list[_Waiting]], order: deque[_Waiting]
    ) -> None:
        if len(order) >= PENDING:
            oldest = order.popleft()
            if not oldest.done:
                oldest.done = True
                by_request[oldest.request].remove(oldest)
                if not by_request[oldest.request]:
                    del by_request[oldest.request]
        by_request.setdefault(waiting.request, []).append(waiting)
        order.append(waiting)

    def _take(
        self,
        by_request: dict[int, list[_Waiting]],
        request: int,
        delay: Callable[[_Waiting], float],
    ) -> _Waiting | None:
        """The waiting entry that pairs best, removed from the waiting; ``delay(entry)`` is
        the server receive time minus the client send time, in ms, were they a pair."""
        candidates = by_request.get(request)
        if not candidates:
            return None
        best: tuple[bool, float, int] | None = None
        for index, waiting in enumerate(candidates):
            delta = delay(waiting)
            if self.low_ms <= delta <= self.high_ms:
                key = (delta < 0, abs(delta), index)
                if best is None or key < best:
                    best = key
        if best is None:
            return None
        found = candidates.pop(best[2])
        if not candidates:
            del by_request[request]
        found.done = True
        return found

    def on_ignored(self, received: datetime, request: int, exchange: dict[str, Any]) -> int | None:
        """The client of this ignored request if its timeout was read already, else ``None``."""
        timeout = self._take(self.timeouts, request, lambda sent: _ms(received, sent.time))
        if timeout is not None:
            return timeout.client
        waiting = _Waiting(received, request, exchange=exchange)
        self._wait(waiting, self.ignored, self._ignored_order)
        return None

    def on_timeout(self, sent: datetime, request: int, client: int) -> dict[str, Any] | None:
        """The row of the ignored request this timeout pairs with, if it was read already."""
        ignored = self._take(self.ignored, request, lambda received: _ms(received.time, sent))
        if ignored is not None:
            return ignored.exchange
        self._wait(_Waiting(sent, request, client=client), self.timeouts, self._timeouts_order)
        return None


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
        self.attribution = Attribution(settings.timeout_ms)
        # Per-second counts, keyed by whole epoch second.
        self.rates: dict[int, dict[str, int]] = {}
        low, high = settings.delay_ms.low, settings.delay_ms.high
        self.delay_low = low
        self.delay_width = max(1, -(-(high - low + 1) // DELAY_BINS))
        self.delays = [0] * DELAY_BINS
        # What changed since the last take_update().
        self._new_exchanges: list[dict[str, Any]] = []
        self._new_attributed: list[dict[str, int]] = []  # rows shown whose client became known
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
        outcome: Outcome,
        client: int | None,
        request: int | None,
        response: int | None,
        round_trip_ms: float | None = None,
    ) -> dict[str, Any]:
        exchange = {
            "id": self._next_exchange,
            "time": format_time(when),
            "t": round(when.timestamp(), 3),  # orders rows by the time shown
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
        return exchange

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
            request = record.request.request
            row = self._exchange(record.request_time, Outcome.IGNORED, None, request, None)
            row["client"] = self.attribution.on_ignored(record.request_time, request, row)
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
                record.response_time, Outcome.ANSWERED, number, record.request.request,
                record.response.response, round_trip,
            )  # fmt: skip
        elif isinstance(record, TimedOut):
            client.sent += 1
            client.timed_out += 1
            self._count(record.response_time, "timed_out")
            request = record.request.request
            self._exchange(record.response_time, Outcome.TIMED_OUT, number, request, None)
            ignored = self.attribution.on_timeout(record.request_time, request, number)
            if ignored is not None:
                ignored["client"] = number
                if ignored["id"] >= self.exchanges[0]["id"]:  # still shown
                    self._new_attributed.append({"id": ignored["id"], "client": number})
                    del self._new_attributed[:-EXCHANGES]
        elif isinstance(record.response, Keepalive):
            client.keepalives += 1
            self._exchange(
                record.response_time, Outcome.KEEPALIVE, number, None, record.response.response
            )
        else:
            client.late += 1
            self._exchange(
                record.response_time, Outcome.LATE, number, record.response.request,
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
        """What changed since the last call (``None`` if nothing), in the snapshot's shape,
        plus ``attributed``: ``{"id", "client"}`` of each row already sent whose ignored
        request's client has become known since."""
        if not self._changed:
            return None
        update = {
            **self.counters(),
            "exchanges": self._new_exchanges,
            "round_trips": {str(n): points for n, points in sorted(self._new_points.items())},
            "rates": self._rates(list(self._touched_seconds)),
            "delays": self._delays(),
            "attributed": self._new_attributed,
        }
        self._new_exchanges, self._new_points, self._touched_seconds = [], {}, set()
        self._new_attributed = []
        self._changed = False
        return update
