"""GET /metrics: valid exposition, the names and types Prometheus expects, values that match
a run's own totals, counters that never go back within a run and start again with the next."""

from __future__ import annotations

import itertools
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from app.live import LiveState, RoundTrips
from app.main import create_app
from app.metrics import LAG_BUCKETS_S, ROUND_TRIP_BUCKETS_MS, Metrics, written_at
from app.tail import RunTailer
from pingpong.logformat import (
    Answered,
    Ignored,
    Record,
    format_time,
    parse_client_line,
    parse_server_line,
)
from pingpong.runlogs import load_run
from pingpong.settings import RunSettings

RUN = {"clients": 2, "duration": 4, "interval_ms": [50, 200], "delay_ms": [100, 400],
       "timeout_ms": 600, "keepalive_s": 0.5}  # fmt: skip
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"

Key = tuple[str, frozenset[tuple[str, str]]]


@pytest.fixture
def client(tmp_path: Path, no_stray_processes: None) -> Iterator[TestClient]:
    with TestClient(create_app(tmp_path / "runs"), base_url="http://localhost") as test_client:
        yield test_client


def scrape(client: TestClient) -> tuple[dict[str, str], dict[Key, float]]:
    """Metric types by name and every sample's value, from the classic text format."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    types: dict[str, str] = {}
    samples: dict[Key, float] = {}
    for family in parse_text(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return types, samples


def value(samples: dict[Key, float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def series(samples: dict[Key, float], name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


EXPECTED_TYPES = {
    "pingpong_run": "info",
    "pingpong_run_state": "stateset",
    "pingpong_run_start_time_seconds": "gauge",
    "pingpong_run_elapsed_seconds": "gauge",
    "pingpong_server_clients_connected": "gauge",
    "pingpong_server_requests": "counter",
    "pingpong_server_keepalives": "counter",
    "pingpong_server_last_response_number": "gauge",
    "pingpong_tail_bad_lines": "counter",
    "pingpong_client_requests": "counter",
    "pingpong_client_late_responses": "counter",
    "pingpong_client_keepalives": "counter",
    "pingpong_client_round_trip_seconds": "histogram",
    "pingpong_tail_lag_seconds": "histogram",
    "pingpong_websocket_viewers": "gauge",
    "pingpong_runs_ended": "counter",
}


def openmetrics_types(client: TestClient) -> dict[str, str]:
    response = client.get("/metrics", headers={"accept": OPENMETRICS})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    families = parse_openmetrics(response.text)  # type: ignore[no-untyped-call]
    return {family.name: family.type for family in families}


def test_a_fresh_app_exposes_valid_metrics(client: TestClient) -> None:
    # OpenMetrics (what Prometheus asks for) has the precise types; its parser is strict.
    om_types = openmetrics_types(client)
    assert {name: om_types.get(name) for name in EXPECTED_TYPES} == EXPECTED_TYPES
    assert "process_cpu_seconds" in om_types or sys.platform != "linux"  # it reads /proc
    types, samples = scrape(client)
    # The classic format spells counters with _total; info and state sets are gauges there.
    assert types["pingpong_server_requests"] == "counter"
    assert types["pingpong_run_info"] == "gauge"
    assert types["pingpong_client_round_trip_seconds"] == "histogram"
    assert series(samples, "pingpong_run_state") == {
        frozenset({("pingpong_run_state", state)}): float(state == "idle")
        for state in ("idle", "starting", "running", "stopping", "finished", "failed")
    }
    assert value(samples, "pingpong_runs_ended_total", state="finished") == 0
    assert value(samples, "pingpong_runs_ended_total", state="failed") == 0
    assert value(samples, "pingpong_websocket_viewers") == 0
    assert value(samples, "pingpong_tail_lag_seconds_count") == 0
    for name in (
        "pingpong_run_info",
        "pingpong_server_requests_total",
        "pingpong_client_requests_total",
        "pingpong_client_round_trip_seconds_count",
    ):
        assert series(samples, name) == {}, name  # no run yet: nothing to say about one
    for sample_name, _labels in samples:
        assert sample_name.startswith(("pingpong_", "process_", "python_")), sample_name


def test_metrics_refuse_a_foreign_host(client: TestClient) -> None:
    assert client.get("/metrics", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/metrics", headers={"host": "127.0.0.1:9999"}).status_code == 200


def wait_for(client: TestClient, *states: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get("/api/status").json()
        if status["state"] in states:
            return status
        time.sleep(0.05)
    raise AssertionError(f"state never became {states}")


def monotone_series(samples: dict[Key, float]) -> dict[Key, float]:
    """The samples that must never go down within a run: counters and histograms."""
    return {
        key: v
        for key, v in samples.items()
        if key[0].endswith(("_total", "_bucket", "_count", "_sum"))
        and not key[0].startswith(("process_", "python_"))
    }


def expected_from_summary(summary: dict[str, Any]) -> dict[Key, float]:
    server = summary["server"]
    requests = "pingpong_server_requests_total"
    expected: dict[Key, float] = {
        (requests, frozenset({("outcome", "answered")})): server["answered"],
        (requests, frozenset({("outcome", "ignored")})): server["ignored"],
        ("pingpong_server_keepalives_total", frozenset()): server["keepalives"],
        ("pingpong_server_last_response_number", frozenset()): server["last_response"],
        ("pingpong_tail_bad_lines_total", frozenset()): 0,
    }
    for totals in summary["clients"]:
        label = ("client", str(totals["client"]))
        for outcome in ("answered", "timed_out"):
            key = ("pingpong_client_requests_total", frozenset({label, ("outcome", outcome)}))
            expected[key] = totals[outcome]
        expected[("pingpong_client_late_responses_total", frozenset({label}))] = totals["late"]
        expected[("pingpong_client_keepalives_total", frozenset({label}))] = totals["keepalives"]
        count = ("pingpong_client_round_trip_seconds_count", frozenset({label}))
        expected[count] = totals["answered"]
    return expected


def differences(samples: dict[Key, float], expected: dict[Key, float]) -> dict[Key, Any]:
    return {k: (samples.get(k), v) for k, v in expected.items() if samples.get(k) != v}


def test_metrics_follow_a_run_and_match_its_summary(client: TestClient, tmp_path: Path) -> None:
    started = client.post("/api/start", json=RUN).json()
    history: list[dict[Key, float]] = []
    viewers = None
    with client.websocket_connect("ws://localhost/ws") as ws:
        ws.receive_json()
        while client.get("/api/status").json()["state"] not in ("finished", "failed"):
            _types, samples = scrape(client)
            history.append(samples)
            viewers = value(samples, "pingpong_websocket_viewers")
            time.sleep(0.1)
    assert viewers == 1
    status = wait_for(client, "finished")
    summary = status["run"]["summary"]
    assert status["run"]["check"]["ok"] is True

    # The tailer reads the last lines as the run ends; the metrics catch up with them.
    expected = expected_from_summary(summary)
    deadline = time.monotonic() + 10
    while differences(samples := scrape(client)[1], expected) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert differences(samples, expected) == {}
    history.append(samples)

    # Counters never went back within the run, and they did rise.
    for earlier, later in itertools.pairwise(history):
        went_back = {k: (v, later[k]) for k, v in monotone_series(earlier).items() if later[k] < v}
        assert went_back == {}
    assert len(history) > 10
    requests = [sum(series(s, "pingpong_server_requests_total").values()) for s in history]
    assert len(set(requests)) > 3, requests

    # The round-trip histogram against the logs themselves, bucket by bucket.
    logs = load_run(tmp_path / "runs" / started["id"])
    for number, lines in logs.clients.items():
        trips = [
            round((r.response_time - r.request_time).total_seconds() * 1000)
            for r in (line.record for line in lines)
            if isinstance(r, Answered)
        ]
        label = ("client", str(number))
        buckets = series(samples, "pingpong_client_round_trip_seconds_bucket")
        for bound in ROUND_TRIP_BUCKETS_MS:
            key = frozenset({label, ("le", str(bound / 1000))})
            assert buckets[key] == sum(1 for t in trips if t <= bound), (number, bound)
        assert buckets[frozenset({label, ("le", "+Inf")})] == len(trips)
        total = value(samples, "pingpong_client_round_trip_seconds_sum", client=str(number))
        assert total == pytest.approx(sum(trips) / 1000)

    # The run's identity and state; the app's own counts.
    (info,) = series(samples, "pingpong_run_info")
    assert dict(info) == {
        "run": started["id"], "clients": "2", "duration": "4", "interval_ms": "50-200",
        "delay_ms": "100-400", "ignore": "0.1", "keepalive_s": "0.5", "timeout_ms": "600",
    }  # fmt: skip
    assert value(samples, "pingpong_run_state", pingpong_run_state="finished") == 1
    assert value(samples, "pingpong_run_state", pingpong_run_state="running") == 0
    assert value(samples, "pingpong_runs_ended_total", state="finished") == 1
    start = datetime.fromisoformat(status["run"]["started_at"]).timestamp()
    assert value(samples, "pingpong_run_start_time_seconds") == pytest.approx(start, abs=0.001)
    assert value(samples, "pingpong_run_elapsed_seconds") == pytest.approx(
        status["run"]["elapsed"], abs=0.001
    )
    read = len(logs.server) + sum(len(lines) for lines in logs.clients.values())
    assert value(samples, "pingpong_tail_lag_seconds_count") == read
    assert value(samples, "pingpong_tail_lag_seconds_bucket", le="5.0") == read  # polled live

    # The next run starts its counters from zero, under a new id and a later start time.
    second = client.post("/api/start", json={**RUN, "duration": 30}).json()
    _types, fresh = scrape(client)
    wait_for(client, "running")
    assert client.post("/api/stop").status_code == 202
    (info,) = series(fresh, "pingpong_run_info")
    assert dict(info)["run"] == second["id"] != started["id"]
    assert value(fresh, "pingpong_run_start_time_seconds") > start
    assert sum(series(fresh, "pingpong_server_requests_total").values()) < sum(
        series(samples, "pingpong_server_requests_total").values()
    )
    assert value(fresh, "pingpong_runs_ended_total", state="finished") == 1  # the app's: kept
    wait_for(client, "finished", "failed")


def test_a_failed_run_is_counted(client: TestClient) -> None:
    client.post("/api/start", json={**RUN, "duration": 60})
    status = wait_for(client, "running")
    client1 = next(p for p in status["run"]["processes"] if p["role"] == "client1")
    os.kill(client1["pid"], signal.SIGKILL)
    assert wait_for(client, "finished", "failed")["state"] == "failed"
    deadline = time.monotonic() + 10
    while value(samples := scrape(client)[1], "pingpong_runs_ended_total", state="failed") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert value(samples, "pingpong_runs_ended_total", state="finished") == 0
    assert value(samples, "pingpong_run_state", pingpong_run_state="failed") == 1


def test_count_at_most_is_exact_per_millisecond() -> None:
    rng = random.Random(7)
    trips = RoundTrips(2600)
    values = [rng.randint(0, 2600) for _ in range(2000)]
    for v in values:
        trips.add(float(v))
    for bound in [-1, 0, 1, 50, 99, 100, 101, 999, 1000, 2599, 2600, 5000, *values[:50]]:
        assert trips.count_at_most(bound) == sum(1 for v in values if v <= bound), bound


def test_count_at_most_with_wide_bins_is_exact_on_bin_edges() -> None:
    trips = RoundTrips(200_000)  # past 65536 bins: several ms per bin
    assert trips.width > 1
    rng = random.Random(8)
    values = [rng.randint(0, 200_000) for _ in range(500)]
    for v in values:
        trips.add(float(v))
    for edge in range(0, 200_000, 7919):
        bound = (edge // trips.width + 1) * trips.width - 1  # the last ms of a bin
        assert trips.count_at_most(bound) == sum(1 for v in values if v <= bound)


def test_written_at_is_the_latest_time_on_the_line() -> None:
    answered = parse_server_line("2026-11-26;13:01:02.345;[4] PING;13:01:02.977;[11/4] PONG (2)")
    ignored = parse_server_line(
        "2026-11-26;13:01:03.100;[5] PING;(проигнорировано);(проигнорировано)"
    )
    timed_out = parse_client_line("2026-11-26;13:01:03.099;[5] PING;13:01:05.099;(таймаут)")
    keepalive = parse_client_line("2026-11-26;;;13:01:05.001;[12] keepalive")
    assert isinstance(ignored, Ignored)
    assert [written_at(r).isoformat(timespec="milliseconds")[11:] for r in
            (answered, ignored, timed_out, keepalive)] == [
        "13:01:02.977", "13:01:03.100", "13:01:05.099", "13:01:05.001"]  # fmt: skip


def test_tail_lag_is_from_the_time_on_the_line_to_reading_it(tmp_path: Path) -> None:
    metrics = Metrics()
    seen: list[Record] = []

    def on_read(record: Record) -> None:
        seen.append(record)
        metrics.observe_read(record)

    tailer = RunTailer(tmp_path, 1, LiveState(RunSettings()), on_read)
    now = datetime.now()
    received, sent = now - timedelta(seconds=0.6), now - timedelta(seconds=0.3)
    line = f"{sent:%Y-%m-%d};{format_time(received)};[0] PING;{format_time(sent)};[0/0] PONG (1)"
    (tmp_path / "server.log").write_text(f"{line}\nbad line\n", encoding="utf-8")
    assert tailer.poll() == 2
    tailer.close()
    assert len(seen) == 1  # the bad line is counted by the live state, not timed
    registry = metrics.registry
    assert registry.get_sample_value("pingpong_tail_lag_seconds_count") == 1
    lag = registry.get_sample_value("pingpong_tail_lag_seconds_sum")
    assert lag is not None
    assert 0.3 <= lag < 0.3 + 5  # + the millisecond cut; the machine may be slow
    below = [b for b in LAG_BUCKETS_S if b < 0.3]
    for bound in below:
        labels = {"le": str(bound)}
        assert registry.get_sample_value("pingpong_tail_lag_seconds_bucket", labels) == 0
