"""Live state from recorded log lines: exact counters and statistics, bounded memory."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from app.live import EXCHANGES, PENDING, POINTS, LiveState, RoundTrips, time_zone
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
        (1, "ignored"), (1, "answered"), (1, "timed out"), (1, "keepalive"),
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


IGNORED = "2026-11-26;{};[{}] PING;(проигнорировано);(проигнорировано)"
TIMED_OUT = "2026-11-26;{};[{}] PING;{};(таймаут)"


def ignore(live: LiveState, received: str, request: int) -> None:
    live.on_server(parse_server_line(IGNORED.format(received, request)))


def time_out(live: LiveState, client: int, sent: str, request: int) -> None:
    at = datetime.strptime(sent, "%H:%M:%S.%f") + timedelta(milliseconds=live.settings.timeout_ms)
    line = TIMED_OUT.format(sent, request, at.strftime("%H:%M:%S.%f")[:12])
    live.on_client(client, parse_client_line(line))


def ignored_rows(live: LiveState) -> list[tuple[str, int | None]]:
    return [(e["time"], e["client"]) for e in live.snapshot()["exchanges"]
            if e["outcome"] == "ignored"]  # fmt: skip


def test_an_ignored_request_is_attributed_by_its_timeout() -> None:
    live = LiveState(RunSettings())
    ignore(live, "13:01:03.100", 7)
    first = live.take_update()
    assert first is not None
    (row,) = first["exchanges"]
    assert row["client"] is None  # server.log does not say whose it was
    assert first["attributed"] == []
    time_out(live, 2, "13:01:03.099", 7)
    update = live.take_update()
    assert update is not None
    # The row already sent gets its client through the next update, for every viewer.
    assert update["attributed"] == [{"id": row["id"], "client": 2}]
    assert ignored_rows(live) == [("13:01:03.100", 2)]
    again = live.take_update()
    assert again is None or again["attributed"] == []


def test_same_request_number_on_several_clients_pairs_by_time() -> None:
    live = LiveState(RunSettings())
    # Three clients' request 5 ignored, 2 ms and 700 ms apart, read in any order.
    ignore(live, "13:01:03.001", 5)
    ignore(live, "13:01:03.003", 5)
    ignore(live, "13:01:03.701", 5)
    time_out(live, 3, "13:01:03.700", 5)  # the latest one times out first in the log read
    time_out(live, 2, "13:01:03.002", 5)  # 1 ms before the second, 1 ms after the first
    time_out(live, 1, "13:01:03.000", 5)
    assert ignored_rows(live) == [("13:01:03.001", 1), ("13:01:03.003", 2), ("13:01:03.701", 3)]


def test_a_timeout_read_before_its_ignored_request_still_pairs() -> None:
    live = LiveState(RunSettings())
    time_out(live, 4, "13:01:03.099", 1)  # the server log lags behind in a backlog
    ignore(live, "13:01:01.000", 1)  # an older request 1 of another client: no pair
    ignore(live, "13:01:03.100", 1)
    assert ignored_rows(live) == [("13:01:01.000", None), ("13:01:03.100", 4)]


def test_no_pair_outside_the_timeout() -> None:
    live = LiveState(RunSettings(timeout_ms=2000))
    ignore(live, "13:01:03.100", 1)
    time_out(live, 1, "13:01:00.000", 1)  # received 3.1 s after it was sent: not this one
    time_out(live, 2, "13:01:03.200", 1)  # sent after the server received it
    assert ignored_rows(live) == [("13:01:03.100", None)]


def test_waiting_ignored_requests_are_bounded() -> None:
    live = LiveState(RunSettings())
    start = datetime(2026, 11, 26, 13)
    for n in range(PENDING + 500):
        stamp = (start + timedelta(milliseconds=n)).strftime("%H:%M:%S.%f")[:12]
        ignore(live, stamp, n)
        time_out(live, 1, stamp, 10_000_000 + n)  # timeouts that pair with nothing
    waiting = live.attribution
    assert sum(map(len, waiting.ignored.values())) == PENDING
    assert sum(map(len, waiting.timeouts.values())) == PENDING
    assert min(waiting.ignored) == 500  # the oldest went first
    time_out(live, 2, "13:00:00.000", 0)  # its ignored request was forgotten
    time_out(live, 2, (start + timedelta(milliseconds=600)).strftime("%H:%M:%S.%f")[:12], 600)
    assert 600 not in waiting.ignored
    assert 0 in waiting.timeouts


def test_exchanges_carry_their_epoch_time() -> None:
    rows = feed().snapshot()["exchanges"]
    for row in rows:
        assert datetime.fromtimestamp(row["t"]).strftime("%H:%M:%S.%f")[:12] == row["time"]


def test_time_zone_of_the_logs() -> None:
    def at(offset: timedelta, name: str | None = None) -> dict[str, object]:
        zone = timezone(offset) if name is None else timezone(offset, name)
        return time_zone(datetime(2026, 11, 26, 13, tzinfo=zone))

    assert at(timedelta(hours=1), "CET") == {"name": "CET", "utc_offset_s": 3600,
                                             "label": "UTC+01:00"}  # fmt: skip
    assert at(timedelta(hours=5, minutes=30))["label"] == "UTC+05:30"
    assert at(timedelta(hours=-3, minutes=-30))["label"] == "UTC-03:30"
    assert at(timedelta(hours=-3, minutes=-30))["utc_offset_s"] == -12600
    assert at(timedelta(0), "UTC")["label"] == "UTC"
    local = time_zone(datetime.now().astimezone())
    offset = datetime.now().astimezone().utcoffset()
    assert offset is not None
    assert local["utc_offset_s"] == round(offset.total_seconds())
