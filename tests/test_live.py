"""Live state from recorded log lines: exact counters and statistics, bounded memory."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from app.live import EXCHANGES, POINTS, LiveState, RoundTrips
from pingpong.logformat import parse_client_line, parse_server_line
from pingpong.settings import MsRange, RunSettings
from pingpong.stats import percentile, summarize

SERVER = [
    "2026-11-26;13:01:02.345;[0] PING;13:01:02.977;[0/0] PONG (1)",
    "2026-11-26;13:01:03.100;[1] PING;(проигнорировано);(проигнорировано)",
    "2026-11-26;13:01:03.200;[0] PING;13:01:03.400;[1/0] PONG (2)",
    "2026-11-26;;;13:01:05.000;[2] keepalive",
    "2026-11-26;;;13:01:05.000;[3] keepalive",
]
CLIENT1 = [
    "2026-11-26;13:01:02.344;[0] PING;13:01:02.979;[0/0] PONG (1)",
    "2026-11-26;13:01:03.099;[1] PING;13:01:05.099;(таймаут)",
    "2026-11-26;;;13:01:05.001;[2] keepalive",
]
CLIENT2 = [
    "2026-11-26;13:01:03.199;[0] PING;13:01:03.401;[1/0] PONG (2)",
    "2026-11-26;;;13:01:05.001;[3] keepalive",
    "2026-11-26;;;13:01:05.900;[9/7] PONG (2)",
]


def feed() -> LiveState:
    live = LiveState(RunSettings(delay_ms=MsRange(100, 1000)))
    for line in SERVER:
        live.on_server(parse_server_line(line))
    for number, lines in ((1, CLIENT1), (2, CLIENT2)):
        for line in lines:
            live.on_client(number, parse_client_line(line))
    return live


def test_counters_are_exact() -> None:
    counters = feed().counters()
    assert counters["server"] == {
        "requests": 3, "answered": 2, "ignored": 1, "ignored_pct": 33.3, "keepalives": 2,
        "last_response": 3, "bad_lines": 0,
    }  # fmt: skip
    one, two = counters["clients"]
    assert (one["sent"], one["answered"], one["timed_out"], one["keepalives"]) == (2, 1, 1, 1)
    assert (two["sent"], two["answered"], two["late"], two["keepalives"]) == (1, 1, 1, 1)
    assert one["round_trip_ms"] == {"min": 635.0, "avg": 635.0, "p50": 635.0, "p95": 635.0,
                                    "max": 635.0}  # fmt: skip


def test_same_figures_as_the_run_summary(tmp_path: Path) -> None:
    for name, lines in (("server.log", SERVER), ("client1.log", CLIENT1), ("client2.log", CLIENT2)):
        (tmp_path / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    summary = summarize(tmp_path)
    live = feed().counters()
    for from_logs, from_live in zip(summary["clients"], live["clients"], strict=True):
        assert from_logs["round_trip_ms"] == from_live["round_trip_ms"]
        for key in ("sent", "answered", "timed_out", "late", "keepalives"):
            assert from_logs[key] == from_live[key]


def test_exchanges_and_outcomes() -> None:
    live = feed()
    outcomes = [(e["client"], e["outcome"]) for e in live.snapshot()["exchanges"]]
    assert outcomes == [
        (None, "ignored"), (1, "answered"), (1, "timed out"), (1, "keepalive"),
        (2, "answered"), (2, "keepalive"), (2, "late"),
    ]  # fmt: skip


def test_updates_hold_only_what_changed() -> None:
    live = feed()
    first = live.take_update()
    assert first is not None
    assert len(first["exchanges"]) == 7
    assert live.take_update() is None  # nothing new
    live.on_client(
        1, parse_client_line("2026-11-26;13:01:06.000;[2] PING;13:01:06.100;[4/2] PONG (1)")
    )
    update = live.take_update()
    assert update is not None
    assert [e["request"] for e in update["exchanges"]] == [2]
    ((_time, round_trip, exchange),) = update["round_trips"]["1"]
    assert (round_trip, exchange) == (100.0, update["exchanges"][0]["id"])
    assert [r["t"] for r in update["rates"]] == []  # answers are counted on the server side


def test_delay_histogram_bins() -> None:
    live = feed()
    delays = live.snapshot()["delays"]
    assert delays["low"] == 100
    assert delays["width"] == 46  # 901 ms over 20 bins
    assert sum(delays["counts"]) == 2
    assert delays["counts"][(632 - 100) // 46] == 1  # 632 ms
    assert delays["counts"][(200 - 100) // 46] == 1  # 200 ms


def test_memory_stays_bounded() -> None:
    live = LiveState(RunSettings())
    for n in range(20_000):
        second, ms = divmod(n, 1000)
        stamp = f"{13 + second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}.{ms:03d}"
        live.on_client(
            1, parse_client_line(f"2026-11-26;{stamp};[{n}] PING;{stamp};[{n}/{n}] PONG (1)")
        )
        live.on_server(
            parse_server_line(f"2026-11-26;{stamp};[{n}] PING;{stamp};[{n}/{n}] PONG (1)")
        )
    snapshot = live.snapshot()
    assert len(snapshot["exchanges"]) == EXCHANGES
    assert len(snapshot["round_trips"]["1"]) == POINTS
    assert len(snapshot["rates"]) <= POINTS
    assert snapshot["clients"][0]["sent"] == 20_000


@given(st.lists(st.integers(min_value=0, max_value=2999), min_size=1, max_size=300))
def test_round_trip_percentiles_are_exact(values: list[int]) -> None:
    trips = RoundTrips(3000)
    for value in values:
        trips.add(float(value))
    ordered = sorted(map(float, values))
    for q in (0.5, 0.95, 0.01, 1.0):
        assert trips.percentile(q) == percentile(ordered, q)


def test_round_trips_with_a_huge_limit_stay_small() -> None:
    trips = RoundTrips(3_600_000)
    assert trips.size <= 70_000
    for value in random.Random(1).sample(range(3_600_000), 100):
        trips.add(float(value))
    assert trips.stats() is not None


def test_a_snapshot_leaves_the_pending_update_alone() -> None:
    live = feed()
    live.snapshot()  # a new viewer arrives
    update = live.take_update()  # the others still get every change
    assert update is not None
    assert len(update["exchanges"]) == 7
