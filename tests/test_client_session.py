"""The client's session on its own: an injected clock, a seeded random source, no sockets."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pingpong.core.client_session import ClientSession
from pingpong.core.logformat import Answered, ClientRecord, TimedOut, Unpaired, parse_client_line
from pingpong.core.protocol import Keepalive, Ping, Pong
from pingpong.core.session import Calendar, Connect, Disconnect, Warn
from pingpong.core.settings import ClientSettings, MsRange

from .conftest import run
from .test_client import port_of, run_client, start_fake, stop_fake

T0 = datetime(2026, 11, 26, 13, 1, 2, tzinfo=timezone.utc).timestamp()


def session(interval_ms: tuple[int, int] = (100, 100), timeout_ms: int = 300) -> ClientSession:
    settings = ClientSettings(interval_ms=MsRange(*interval_ms), timeout_ms=timeout_ms)
    return ClientSession(settings, random.Random(1), calendar=Calendar(timedelta(0)))


def connected(interval_ms: tuple[int, int] = (100, 100), timeout_ms: int = 300) -> ClientSession:
    client = session(interval_ms, timeout_ms)
    client.start(T0)
    assert list(client.actions()) == [Connect()]
    client.connection_made(T0)
    assert list(client.actions()) == [Warn("connected to 127.0.0.1:8888")]
    return client


def run_until(client: ClientSession, end: float) -> None:
    """Tick at each deadline up to ``end``, as the shell's one timer would."""
    while (deadline := client.next_deadline()) is not None and deadline <= end:
        client.tick(deadline)


def test_sends_at_once_then_on_its_own_schedule() -> None:
    client = connected(interval_ms=(300, 3000), timeout_ms=60_000)
    mirror = random.Random(1)
    assert client.data_to_send() == b"[0] PING\n"
    due = T0
    for n in range(1, 6):
        due += mirror.uniform(300, 3000) / 1000
        assert client.next_deadline() == due  # from when the last one was due: no drift
        client.tick(due + 0.004)  # the shell is a little late
        assert client.data_to_send() == f"[{n}] PING\n".encode()
    assert client.in_flight == 6  # never waits for answers


def test_pairs_answers_by_request_number() -> None:
    client = connected()
    run_until(client, T0 + 0.2)
    assert client.data_to_send() == b"[0] PING\n[1] PING\n[2] PING\n"
    client.receive(b"[7/2] PONG (1)\n[8/0] PONG (1)\n", T0 + 0.25)
    assert client.log_text() == (
        "2026-11-26;13:01:02.200;[2] PING;13:01:02.250;[7/2] PONG (1)\n"
        "2026-11-26;13:01:02.000;[0] PING;13:01:02.250;[8/0] PONG (1)\n"
    )
    assert client.in_flight == 1


def test_timeouts_late_and_unknown_answers_and_keepalives() -> None:
    client = connected(interval_ms=(1000, 1000), timeout_ms=300)
    assert client.next_deadline() == T0 + 0.3
    client.tick(T0 + 0.3)
    client.receive(b"[5/0] PONG (1)\n[6/9] PONG (1)\n[7] keepalive\n", T0 + 0.31)
    records = [parse_client_line(line) for line in client.log_text().splitlines()]
    assert records == [
        TimedOut(
            datetime(2026, 11, 26, 13, 1, 2), Ping(0), datetime(2026, 11, 26, 13, 1, 2, 300000)
        ),
        Unpaired(datetime(2026, 11, 26, 13, 1, 2, 310000), Pong(5, 0, 1)),  # late
        Unpaired(datetime(2026, 11, 26, 13, 1, 2, 310000), Pong(6, 9, 1)),  # answers nothing
        Unpaired(datetime(2026, 11, 26, 13, 1, 2, 310000), Keepalive(7)),
    ]


def test_a_lost_connection_keeps_the_timeouts_and_reconnects_at_once() -> None:
    client = connected(timeout_ms=300)
    client.data_to_send()
    client.connection_lost(T0 + 0.05, "connection reset by peer")
    assert list(client.actions()) == [
        Warn("connection lost (connection error: connection reset by peer); reconnecting"),
        Connect(),
    ]
    client.tick(T0 + 0.1)  # a request falls due with no connection: the schedule waits
    assert client.data_to_send() == b""
    assert client.next_deadline() == T0 + 0.3
    client.connection_made(T0 + 0.25)  # the schedule starts again with the connection
    assert client.data_to_send() == b"[1] PING\n"
    assert client.next_deadline() == T0 + 0.3
    client.tick(T0 + 0.3)
    assert client.log_text().endswith(";[0] PING;13:01:02.300;(таймаут)\n")
    assert client.next_deadline() == T0 + 0.35


def test_backoff_between_attempts_to_connect() -> None:
    client = session()
    client.start(T0)
    client.actions()
    now = T0
    waits = []
    for _ in range(7):
        client.connection_failed(now, "connection refused")
        (warning,) = client.actions()
        assert isinstance(warning, Warn)
        waits.append(warning.text.rsplit("retrying in ", 1)[1])
        deadline = client.next_deadline()
        assert deadline is not None
        client.tick(deadline)
        assert list(client.actions()) == [Connect()]
        now = deadline
    assert waits == ["0.05 s", "0.10 s", "0.20 s", "0.40 s", "0.80 s", "1.00 s", "1.00 s"]
    client.connection_made(now)
    client.connection_failed(now, "refused")  # after a success the backoff starts over
    assert "retrying in 0.05 s" in str(client.actions())


def test_bad_lines_are_skipped_and_an_overlong_one_drops_the_connection() -> None:
    client = connected()
    client.receive(b"garbage\n[0/0] PONG (01)\n", T0 + 0.01)
    assert list(client.actions()) == [
        Warn("not a response: 'garbage'; skipped"),
        Warn("not a response: '[0/0] PONG (01)'; skipped"),
    ]
    assert client.connected
    client.receive(b"[3/0] PONG (1)\n" + b"y" * 1100, T0 + 0.02)
    assert client.log_text().endswith("[3/0] PONG (1)\n")  # what came before it counts
    assert list(client.actions()) == [
        Disconnect(),
        Warn("connection lost (line longer than 1024 bytes); reconnecting"),
        Connect(),
    ]


def test_graceful_stop_waits_for_every_outcome() -> None:
    client = connected(timeout_ms=300)
    run_until(client, T0 + 0.1)
    client.stop(T0 + 0.15, "supervisor closed stdin")
    assert list(client.actions()) == [
        Warn("stopping (supervisor closed stdin): 2 requests in flight")
    ]
    client.receive(b"[0/1] PONG (1)\n", T0 + 0.2)
    assert client.in_flight == 1  # not finished: request 1 is still in flight
    run_until(client, T0 + 10)
    assert client.finished
    assert list(client.actions()) == [
        Disconnect(),
        Warn("stopped after 2 requests"),
        Warn("send lateness p50 0.00 p99 0.00 max 0.00 ms (n=2)"),
        Warn("timeout lateness p50 0.00 p99 0.00 max 0.00 ms (n=1)"),
    ]
    assert client.data_to_send() == b"[0] PING\n[1] PING\n"
    outcomes = [parse_client_line(line) for line in client.log_text().splitlines()]
    assert [type(r) for r in outcomes] == [Answered, TimedOut]
    assert client.next_deadline() is None


def test_force_stop_times_out_what_is_in_flight_now() -> None:
    client = connected(timeout_ms=5000)
    run_until(client, T0 + 0.2)
    client.force_stop(T0 + 0.25)
    assert client.finished
    lines = client.log_text().splitlines()
    assert [line.split(";")[2:] for line in lines] == [
        [f"[{n}] PING", "13:01:02.250", "(таймаут)"] for n in range(3)
    ]


def test_exactly_one_outcome_per_request_whatever_happens() -> None:
    """Random answers, losses and reconnections: still one line per request sent."""
    for seed in range(30):
        chaos = random.Random(seed)
        client = connected(interval_ms=(10, 50), timeout_ms=200)
        now = T0
        responses = 0
        while now < T0 + 5:
            now += chaos.uniform(0.001, 0.03)
            run_until(client, now)
            roll = chaos.random()
            if client.connected and roll < 0.5 and client.sent:
                request = chaos.randrange(client.sent + 2)
                client.receive(f"[{responses}/{request}] PONG (1)\n".encode(), now)
                responses += 1
            elif client.connected and roll < 0.55:
                client.connection_lost(now, "reset")
            elif not client.connected and roll < 0.8:
                client.connection_made(now)
        client.stop(now, "test")
        run_until(client, now + 1)
        assert client.finished
        outcomes = [
            r.request.request
            for line in client.log_text().splitlines()
            if isinstance(r := parse_client_line(line), Answered | TimedOut)
        ]
        assert sorted(outcomes) == list(range(client.sent)), seed


def test_the_session_keeps_the_schedule_the_asyncio_client_keeps(tmp_path: Path) -> None:
    """Same seed: the same start-to-start intervals as client.py (within scheduling noise)."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline():
            pass

    async def real() -> list[ClientRecord]:
        fake = await start_fake(silent)
        records, _err, _sent = await run_client(
            tmp_path, port_of(fake), 3.0, interval_ms=(200, 600), timeout_ms=100
        )
        await stop_fake(fake)
        return records

    records = run(real())
    sent = sorted(r.request_time for r in records if isinstance(r, TimedOut))
    client = connected(interval_ms=(200, 600), timeout_ms=100)  # seed 1, as run_client's
    assert client.data_to_send() == b"[0] PING\n"
    dues = [T0]
    while len(dues) < len(sent):
        deadline = client.next_deadline()
        assert deadline is not None
        client.tick(deadline)
        if client.data_to_send():
            dues.append(deadline)
    assert len(sent) >= 5
    # Lateness does not add up (each request is due an interval after the last was due),
    # so each request is where the schedule puts it, give or take the loop's lateness.
    for when, due in zip(sent, dues, strict=True):
        assert abs((when - sent[0]).total_seconds() - (due - T0)) < 0.15


def test_reports_about_bad_lines_cost_no_more_than_the_server_sent() -> None:
    """The throttle runs on the session's instants, so a simulated run is bounded too."""
    client = connected(interval_ms=(10_000, 10_000))
    client.actions()
    client.receive(b"garbage\n" * 10_000, T0 + 0.5)
    said = [a.text for a in client.actions() if isinstance(a, Warn)]
    assert said[0] == "not a response: 'garbage'; skipped"
    assert sum(len(f"client: {text}\n") for text in said) <= 4096  # the allowance
    client.force_stop(T0 + 0.6)
    said = [a.text for a in client.actions() if isinstance(a, Warn)]
    assert said[-4].endswith(
        "more like this not shown; the last: not a response: 'garbage'; skipped"
    )
    assert said[-3] == "stopped after 1 requests"


def test_the_session_reports_how_late_its_timers_fired_when_it_stops() -> None:
    client = connected(interval_ms=(100, 100), timeout_ms=250)
    client.tick(T0 + 0.130)  # request 1 was due at +100 ms: sent 30 ms late
    client.tick(T0 + 0.200)  # request 2, on time
    client.tick(T0 + 0.295)  # request 0 was due to time out at +250 ms: 45 ms late
    assert client.data_to_send() == b"[0] PING\n[1] PING\n[2] PING\n"
    client.force_stop(T0 + 0.35)  # timing out the rest at the stop is not lateness
    said = [a.text for a in client.actions() if isinstance(a, Warn)]
    assert said[-3:] == [
        "stopped after 3 requests",
        "send lateness p50 0.01 p99 30.00 max 30.00 ms (n=3)",
        "timeout lateness p50 45.00 p99 45.00 max 45.00 ms (n=1)",
    ]
