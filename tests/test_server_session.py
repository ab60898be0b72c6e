"""The server's session on its own: an injected clock, a seeded random source, no sockets."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pingpong.core import server_session
from pingpong.core.diagnostics import ClientConnected, ClientDisconnected
from pingpong.core.server_session import KEEPALIVE_BATCH, MAX_WRITE_BUFFER, ServerSession
from pingpong.core.session import Calendar, CloseConnection, PauseReading, ResumeReading, Warn
from pingpong.core.settings import MsRange, ServerSettings

from .conftest import run, serving

T0 = datetime(2026, 11, 26, 13, 1, 2, tzinfo=timezone.utc).timestamp()


def session(
    delay_ms: tuple[int, int] = (0, 0),
    ignore: float = 0.0,
    keepalive_s: float = 3600,
    seed: int = 1,
) -> ServerSession:
    settings = ServerSettings(delay_ms=MsRange(*delay_ms), ignore=ignore, keepalive_s=keepalive_s)
    server = ServerSession(settings, random.Random(seed), calendar=Calendar(timedelta(0)))
    server.start(T0)
    return server


def connect(server: ServerSession, count: int = 1) -> list[int]:
    numbers = [server.connection_made(T0, f"peer {n}") for n in range(count)]
    server.actions()
    return [n for n in numbers if n is not None]


def warnings(server: ServerSession) -> list[str]:
    return [a.text for a in server.actions() if isinstance(a, Warn)]


def test_exact_bytes_on_the_wire_and_in_the_log() -> None:
    server = session()
    assert server.connection_made(T0, "127.0.0.1:5000") == 1
    assert list(server.actions()) == [ClientConnected(1, "127.0.0.1:5000")]
    server.receive(1, b"[0] PING\n[1] PING\r\n", T0 + 0.345)
    assert server.data_to_send() == [(1, b"[0/0] PONG (1)\n[1/1] PONG (1)\n")]
    assert server.log_text() == (
        "2026-11-26;13:01:02.345;[0] PING;13:01:02.345;[0/0] PONG (1)\n"
        "2026-11-26;13:01:02.345;[1] PING;13:01:02.345;[1/1] PONG (1)\n"
    )
    assert server.data_to_send() == []
    assert server.log_text() == ""


def test_each_request_gets_its_own_delay_drawn_after_the_ignore_choice() -> None:
    server = session(delay_ms=(100, 1000), ignore=0.3, seed=5)
    mirror = random.Random(5)
    connect(server)
    server.receive(1, b"".join(f"[{n}] PING\n".encode() for n in range(20)), T0)
    expected: dict[int, float] = {}
    ignored = []
    for n in range(20):
        if mirror.random() < 0.3:
            ignored.append(n)
        else:
            expected[n] = T0 + mirror.uniform(100, 1000) / 1000
    assert server.log_text().count("(проигнорировано);(проигнорировано)") == len(ignored)
    assert server.next_deadline() == min(expected.values())
    # Each answer goes out at its own instant, none queued behind another.
    for request, due in sorted(expected.items(), key=lambda item: item[1]):
        server.tick(due - 1e-6)
        assert server.data_to_send() == []
        server.tick(due)
        ((_number, data),) = server.data_to_send()
        assert data.endswith(f"/{request}] PONG (1)\n".encode())
    assert server.next_deadline() == T0 + 3600  # only the keepalive grid is left


def test_response_numbers_count_pongs_and_each_keepalive_copy() -> None:
    server = session(keepalive_s=5)
    connect(server, 2)
    server.receive(1, b"[0] PING\n", T0 + 1)
    server.receive(2, b"[0] PING\n", T0 + 2)
    server.tick(T0 + 5)
    server.receive(1, b"[1] PING\n", T0 + 6)
    sent = server.data_to_send()
    assert sent == [(1, b"[0/0] PONG (1)\n[2] keepalive\n[4/1] PONG (1)\n"),
                    (2, b"[1/0] PONG (2)\n[3] keepalive\n")]  # fmt: skip
    log = server.log_text().splitlines()
    assert log[2:4] == [
        "2026-11-26;;;13:01:07.000;[2] keepalive",
        "2026-11-26;;;13:01:07.000;[3] keepalive",
    ]


def test_keepalive_grid_has_no_drift_and_skips_missed_rounds() -> None:
    server = session(keepalive_s=5)
    connect(server)
    server.tick(T0 + 5.004)  # round 1, 4 ms late
    assert server.next_deadline() == T0 + 10  # not 10.004: no drift
    server.tick(T0 + 21.5)  # the shell stalled: rounds 3 and 4 are past
    assert warnings(server) == ["loop stalled: 2 keepalive rounds skipped"]
    assert server.next_deadline() == T0 + 25
    server.data_to_send()
    assert [line[-13:] for line in server.log_text().splitlines()] == [
        "[0] keepalive", "[1] keepalive"
    ]  # fmt: skip
    assert server.keepalive_lateness.count == 2


def test_a_big_keepalive_round_goes_out_in_batches_with_answers_between() -> None:
    server = session(delay_ms=(1, 1), keepalive_s=5)
    clients = connect(server, 250)
    server.receive(clients[-1], b"[0] PING\n", T0 + 4.9995)  # due at T0 + 5.0005
    server.tick(T0 + 5)
    assert [n for n, _ in server.data_to_send()] == list(range(1, KEEPALIVE_BATCH + 1))
    assert server.next_deadline() == T0 + 5  # the next batch: at once
    server.tick(T0 + 5.001)  # the answer goes out between two batches
    second = dict(server.data_to_send())
    assert sorted(second) == [*range(KEEPALIVE_BATCH + 1, 2 * KEEPALIVE_BATCH + 1), 250]
    assert second[250] == b"[200/0] PONG (250)\n"
    assert server.next_deadline() == T0 + 5.001
    server.tick(T0 + 5.002)
    assert len(server.data_to_send()) == 50
    assert server.next_deadline() == T0 + 10
    numbers = [line.rsplit("[", 1)[1] for line in server.log_text().splitlines()]
    assert len(numbers) == 251
    assert len(set(numbers)) == 251


def test_bad_lines_are_reported_and_the_connection_stays_usable() -> None:
    server = session()
    connect(server)
    server.receive(1, b"hello\n[01] PING\n\xff\n\n[5] PING\n", T0)
    assert warnings(server) == [
        "client 1: not a request: 'hello'; not answered",
        "client 1: not a request: '[01] PING'; not answered",
        "client 1: not ASCII: b'\\xff'; not answered",
        "client 1: empty line; not answered",
    ]
    assert server.data_to_send() == [(1, b"[0/5] PONG (1)\n")]
    assert server.connections == 1


def test_an_overlong_line_closes_after_the_answers_before_it() -> None:
    server = session(delay_ms=(200, 200))
    connect(server, 2)
    server.receive(1, b"[0] PING\n" + b"x" * 2000, T0)
    assert warnings(server) == ["client 1: line longer than 1024 bytes; closing the connection"]
    server.receive(1, b"[1] PING\n", T0 + 0.1)  # no longer read
    server.tick(T0 + 0.2)
    assert server.data_to_send() == [(1, b"[0/0] PONG (1)\n")]
    assert list(server.actions()) == [
        CloseConnection(1),
        ClientDisconnected(1),
        Warn("client 1: closed (line too long)"),
    ]
    assert server.connections == 1  # the other client is untouched


def test_a_client_leaving_with_answers_pending_costs_a_report() -> None:
    server = session(delay_ms=(500, 500))
    connect(server)
    server.receive(1, b"[0] PING\n[1] PING\n[2", T0)
    server.eof(1, T0 + 0.1)
    assert list(server.actions()) == [
        Warn("client 1: unfinished line at close dropped"),
        Warn("client 1: 2 pending answers dropped"),
        CloseConnection(1),
        ClientDisconnected(1),
    ]
    server.tick(T0 + 1)
    assert server.data_to_send() == []
    assert server.log_text() == ""
    assert server.responses == 0  # a message that is not sent takes no number


def test_a_broken_connection_sends_nothing_more() -> None:
    server = session()
    connect(server)
    server.receive(1, b"[0] PING\n", T0)
    server.connection_lost(1, T0, "connection reset by peer")
    assert server.data_to_send() == []
    assert warnings(server) == ["client 1: closed (connection error: connection reset by peer)"]


def test_in_flight_requests_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_session, "MAX_IN_FLIGHT", 3)
    server = session(delay_ms=(100, 100))
    connect(server)
    server.receive(1, b"".join(f"[{n}] PING\n".encode() for n in range(5)), T0)
    assert list(server.actions()) == [PauseReading(1)]
    assert server.in_flight == 3
    server.receive(1, b"[5] PING\n", T0 + 0.05)  # what the shell had already read waits too
    server.tick(T0 + 0.1)
    assert list(server.actions()) == [ResumeReading(1)]
    assert server.in_flight == 3
    server.tick(T0 + 0.2)
    assert server.in_flight == 0
    lines = server.log_text().splitlines()
    assert [line.split(";")[2] for line in lines] == [f"[{n}] PING" for n in range(6)]
    # Taken up when there was room: that is when the log says they were received.
    assert [line.split(";")[1] for line in lines] == ["13:01:02.000"] * 3 + ["13:01:02.100"] * 3


def test_a_client_not_reading_its_answers_is_dropped() -> None:
    server = session(delay_ms=(10, 10))
    connect(server, 2)
    server.receive(1, b"[0] PING\n", T0)
    server.receive(2, b"[0] PING\n", T0)
    server.write_buffer(1, MAX_WRITE_BUFFER + 1)
    server.tick(T0 + 0.01)
    assert server.data_to_send() == [(2, b"[0/0] PONG (2)\n")]  # client 1's took no number
    assert Warn("client 1: closed (not reading its answers)") in server.actions()


def test_graceful_stop_answers_what_is_pending_then_closes() -> None:
    server = session(delay_ms=(300, 300), keepalive_s=1)
    connect(server, 2)
    server.receive(1, b"[0] PING\n", T0 + 0.5)
    server.stop(T0 + 0.6)
    assert list(server.actions()) == [
        Warn("stopping: 2 connections, 1 answers still to send"),
        CloseConnection(2),
        ClientDisconnected(2),
        Warn("client 2: closed (server stopping)"),
    ]
    assert server.connection_made(T0 + 0.7, "late") is None  # no longer accepting
    server.receive(1, b"[1] PING\n", T0 + 0.7)  # no longer read
    assert server.next_deadline() == T0 + 0.8  # no keepalive any more
    server.tick(T0 + 0.8)
    assert server.data_to_send() == [(1, b"[0/0] PONG (1)\n")]
    assert server.finished
    assert [str(a) for a in server.actions()][:3] == [
        str(CloseConnection(1)),
        str(ClientDisconnected(1)),
        str(Warn("client 1: closed (server stopping)")),
    ]


def test_force_stop_drops_what_is_pending() -> None:
    server = session(delay_ms=(300, 300))
    connect(server)
    server.receive(1, b"[0] PING\n", T0)
    server.force_stop(T0 + 0.1)
    assert server.finished
    assert "client 1: 1 pending answers dropped" in warnings(server)
    server.tick(T0 + 1)
    assert server.data_to_send() == []


def test_the_same_seed_makes_the_same_choices() -> None:
    def play(seed: int) -> str:
        server = session(delay_ms=(100, 1000), ignore=0.2, seed=seed)
        connect(server, 3)
        for n in range(50):
            server.receive(1 + n % 3, f"[{n}] PING\n".encode(), T0 + n * 0.1)
        server.tick(T0 + 10)
        return server.log_text()

    assert play(9) == play(9)
    assert play(9) != play(10)


def test_the_session_decides_as_the_asyncio_server_does(tmp_path: Path) -> None:
    """Same seed, same requests: the same ignores, answer order and numbers as server.py."""
    chunk = b"".join(f"[{n}] PING\n".encode() for n in range(40))

    async def real() -> list[str]:
        async with serving(tmp_path, delay_ms=(10, 300), ignore=0.3, seed=21) as s:
            reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
            writer.write(chunk)
            await writer.drain()
            while len(s.log_lines()) < 40:
                await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            return s.log_lines()

    def without_times(lines: list[str]) -> list[tuple[str, str]]:
        return [(fields[2], fields[4]) for fields in (line.split(";") for line in lines)]

    server = session(delay_ms=(10, 300), ignore=0.3, seed=21)
    connect(server)
    server.receive(1, chunk, T0)
    server.tick(T0 + 1)
    expected = without_times(server.log_text().splitlines())
    assert without_times(run(real())) == expected


def test_reports_about_clients_cost_no_more_than_they_sent() -> None:
    """The throttle runs on the session's instants, so a simulated run is bounded too."""
    server = session()
    connect(server)
    flood = b"\n" * 100_000
    server.receive(1, flood, T0 + 0.5)
    said = warnings(server)
    assert said[0] == "client 1: empty line; not answered"
    assert sum(len(f"server: {text}\n") for text in said) <= 4096  # the allowance, not 100 000
    # A second on, bytes that pay for it: the held-back ones are summed up in one line.
    server.receive(1, b"[0] PING\n" * 30, T0 + 1.6)
    (summary,) = warnings(server)
    assert summary.endswith(
        "more like this not shown; the last: client 1: empty line; not answered"
    )
    assert int(summary.split()[0]) == 100_000 - len(said)
    server.receive(1, b"\n" * 10, T0 + 1.7)  # held back again: the budget went on the summary
    server.stop(T0 + 2)
    said = warnings(server)
    # What is still held back is said at the stop, before the last word.
    held = next(n for n, text in enumerate(said) if "more like this not shown" in text)
    assert held < next(n for n, text in enumerate(said) if text.startswith("stopped after"))


def test_failed_accepts_are_reported_within_the_budget() -> None:
    server = session()
    for _ in range(1000):
        server.accept_failed(T0, "[Errno 24] Too many open files")
    said = warnings(server)
    assert said[0] == "cannot accept a connection: [Errno 24] Too many open files"
    assert sum(len(f"server: {text}\n") for text in said) <= 4096
