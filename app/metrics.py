"""Prometheus metrics of the dashboard (``GET /metrics``), made with ``prometheus_client``.

Two kinds of metric, in the app's own :class:`~prometheus_client.CollectorRegistry`
(never the library's global one, so two apps in one process never share a metric):

* **The run's**, read at each scrape from the supervisor and the run's live state by
  a custom collector, as Prometheus's guide to writing exporters advises for values
  another object already keeps: they are the numbers the page shows, never counted a
  second time. They belong to the current (or last) run and start again from zero
  when the next run starts, the way a process's counters do when it restarts, which
  ``rate()`` and ``increase()`` already handle. The run is named by the info metric
  ``pingpong_run_info{run="…"}`` rather than by a ``run`` label on every series: run
  ids are an unbounded set, and each value of a label is a new series for ever.
  ``pingpong_run_start_time_seconds`` (and each counter's ``_created`` sample) says
  when the counters started from zero.
* **The app's own**, since it started: runs ended by state, WebSocket viewers, the
  tailer's lag, and prometheus_client's process, platform and GC metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
)

from pingpong.logformat import Ignored, Record
from pingpong.states import RunState

if TYPE_CHECKING:
    from .hub import Hub
    from .live import LiveState
    from .supervisor import Supervisor

__all__ = ["LAG_BUCKETS_S", "ROUND_TRIP_BUCKETS_MS", "STATES", "Metrics", "written_at"]

#: Every state of the dashboard's run, as ``pingpong_run_state`` lists them.
STATES = tuple(state.value for state in RunState)

#: Upper bounds of the round-trip buckets: every 50 ms up to 1 s (the default delays are
#: 100–1000 ms), then wider up to 10 s for slower settings.
ROUND_TRIP_BUCKETS_MS = (*range(50, 1001, 50), 1250, 1500, 2000, 3000, 5000, 10000)
# Their "le" labels, written as the library writes them (0.05, 1.0): whole ms / 1000.
_ROUND_TRIP_LE = [(repr(bound / 1000), bound) for bound in ROUND_TRIP_BUCKETS_MS]

#: Upper bounds of the tailer's lag buckets: it polls every 25 ms, so most lines land below 50.
LAG_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def written_at(record: Record) -> datetime:
    """When a log line was written, as near as the line itself tells: its latest time."""
    return record.request_time if isinstance(record, Ignored) else record.response_time


class Metrics:
    """The registry of one app and what feeds it.

    ``observe_read`` is the tailer's hook (each record it has just read);
    :meth:`watch` connects the supervisor and the hub once they exist.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.started = time.time()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.tail_lag = Histogram(
            "pingpong_tail_lag_seconds",
            "Time from the time written on a log line to the dashboard having read it.",
            buckets=LAG_BUCKETS_S,
            registry=self.registry,
        )

    def observe_read(self, record: Record) -> None:
        lag = time.time() - written_at(record).timestamp()
        self.tail_lag.observe(max(0.0, lag))

    def watch(self, supervisor: Supervisor, hub: Hub) -> None:
        self.registry.register(_RunCollector(supervisor, hub, self.started))

    async def exposition(self, accept: str) -> tuple[bytes, str]:
        """The metrics in the format the scraper asked for (``Accept``): body, content type.

        Prometheus asks for OpenMetrics; anything else gets the classic text format. The
        values are read in the event loop, all at once between two polls of the tailer,
        so they agree with each other; the text is written in a thread (with 100 clients
        that is tens of milliseconds the viewers would otherwise wait).
        """
        encode, content_type = choose_encoder(accept)
        families = list(self.registry.collect())
        body = await asyncio.to_thread(encode, _Collected(families))
        return body, content_type


class _Collected:
    """Metrics already read, for the encoder (which takes a collector)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


class _RunCollector:
    """The run's metrics and the app's counts, read fresh at every scrape."""

    def __init__(self, supervisor: Supervisor, hub: Hub, started: float) -> None:
        self.supervisor = supervisor
        self.hub = hub
        self.started = started

    def collect(self) -> Iterator[Metric]:
        yield from self._app()
        yield from self._run()
        live = self.supervisor.live
        run = self.supervisor.run
        created = None if run is None else run.started_at.timestamp()
        yield from self._server(live, created)
        clients = [] if run is None else range(1, run.settings.clients + 1)
        yield from self._clients(live, clients, created)

    def _app(self) -> Iterable[Metric]:
        ended = CounterMetricFamily(
            "pingpong_runs_ended",
            "Runs that ended since the dashboard started, by how they ended.",
            labels=["state"],
        )
        for state in (RunState.FINISHED, RunState.FAILED):
            ended.add_metric([state.value], self.supervisor.ended[state], created=self.started)
        viewers = GaugeMetricFamily(
            "pingpong_websocket_viewers",
            "Browsers (or scripts) connected to the live WebSocket.",
            value=self.hub.viewers,
        )
        return [ended, viewers]

    def _run(self) -> Iterable[Metric]:
        supervisor, run = self.supervisor, self.supervisor.run
        state = StateSetMetricFamily(
            "pingpong_run_state",
            "The state of the current or last run; idle before the first one.",
            value={name: name == supervisor.state for name in STATES},
        )
        info = InfoMetricFamily(
            "pingpong_run",
            "The current or last run: its id (its folder's name) and its settings.",
        )
        start = GaugeMetricFamily(
            "pingpong_run_start_time_seconds",
            "When the current or last run started, in seconds since the epoch; "
            "its counters started from zero then.",
            unit="seconds",
        )
        elapsed = GaugeMetricFamily(
            "pingpong_run_elapsed_seconds",
            "Seconds since the run's server started listening (frozen once the run ended).",
            unit="seconds",
        )
        connected = GaugeMetricFamily(
            "pingpong_server_clients_connected", "Clients connected to the run's server."
        )
        if run is not None:
            settings = run.settings.to_json().items()
            labels = {
                name: _label(value)
                for name, value in settings
                if name not in _NOT_LABELS and value is not None  # seed: none, no label
            }
            info.add_metric([], {"run": run.id, **labels})
            start.add_metric([], run.started_at.timestamp())
            elapsed.add_metric([], run.elapsed())
            connected.add_metric([], len(run.connected))
        return [state, info, start, elapsed, connected]

    def _server(self, live: LiveState | None, created: float | None) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "pingpong_server_requests",
            "Requests the run's server logged, by outcome (answered or ignored).",
            labels=["outcome"],
        )
        keepalives = CounterMetricFamily(
            "pingpong_server_keepalives", "Keepalives the run's server sent (one per client)."
        )
        last = GaugeMetricFamily(
            "pingpong_server_last_response_number",
            "The number of the last response the run's server logged (absent before the first).",
        )
        bad = CounterMetricFamily(
            "pingpong_tail_bad_lines", "Lines of the run's logs that did not parse."
        )
        if live is not None:
            requests.add_metric(["answered"], live.answered, created=created)
            requests.add_metric(["ignored"], live.ignored, created=created)
            keepalives.add_metric([], live.keepalives, created=created)
            bad.add_metric([], live.bad_lines, created=created)
            if live.last_response is not None:
                last.add_metric([], live.last_response)
        return [requests, keepalives, last, bad]

    def _clients(
        self, live: LiveState | None, numbers: Iterable[int], created: float | None
    ) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "pingpong_client_requests",
            "Requests a client logged with their outcome (answered or timed_out); "
            "their sum is the requests it sent, as far as the log shows.",
            labels=["client", "outcome"],
        )
        late = CounterMetricFamily(
            "pingpong_client_late_responses",
            "PONGs a client got after their request had timed out (or for no request).",
            labels=["client"],
        )
        keepalives = CounterMetricFamily(
            "pingpong_client_keepalives", "Keepalives a client got.", labels=["client"]
        )
        round_trip = HistogramMetricFamily(
            "pingpong_client_round_trip_seconds",
            "Round trip of a client's answered requests: request sent to answer logged.",
            labels=["client"],
            unit="seconds",
        )
        if live is not None:
            for number in sorted({*numbers, *live.clients}):
                client = live.clients.get(number)  # None until its log has a line
                label = str(number)
                for outcome in ("answered", "timed_out"):
                    value = 0 if client is None else getattr(client, outcome)
                    requests.add_metric([label, outcome], value, created=created)
                late.add_metric([label], 0 if client is None else client.late, created=created)
                keepalives.add_metric(
                    [label], 0 if client is None else client.keepalives, created=created
                )
                trips = None if client is None else client.round_trips
                buckets = [
                    (le, 0 if trips is None else trips.count_at_most(bound))
                    for le, bound in _ROUND_TRIP_LE
                ]
                buckets.append(("+Inf", 0 if trips is None else trips.count))
                total_s = 0.0 if trips is None else trips.total / 1000
                round_trip.add_metric([label], buckets, total_s)
        return [requests, late, keepalives, round_trip]


# Not labels of pingpong_run_info: host and port are where the server listens, not what
# the run is (the address is in the API).
_NOT_LABELS = {"host", "port"}


def _label(value: object) -> str:
    if isinstance(value, list):
        return "-".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
