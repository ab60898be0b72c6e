"""The server over real loopback sockets: concurrency, exact bytes, numbering, bad input."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import time
from pathlib import Path

import pytest

from pingpong import server as server_module
from pingpong.logformat import Answered, Ignored, Unpaired, parse_server_line
from pingpong.protocol import Keepalive, Pong, parse_response

from .conftest import (
    LATE_MS,
    RunningServer,
    child_env,
    pingpong_argv,
    run,
    serving,
    wait_until_async,
)


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def in_flight(s: RunningServer) -> int:
    """Requests the server has read and not yet answered."""
    return sum(len(conn.timers) for conn in s.server._connections.values())


async def read_responses(reader: asyncio.StreamReader, count: int) -> list[Pong | Keepalive]:
    return [parse_response(await reader.readline()) for _ in range(count)]


def test_exact_bytes_on_the_wire_and_in_the_log(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:
            reader, writer = await connect(s.port)
            writer.write(b"[0] PING\n[1] PING\r\n")
            assert await reader.readline() == b"[0/0] PONG (1)\n"
            assert await reader.readline() == b"[1/1] PONG (1)\n"
            await close(writer)
            lines = s.log_lines()
            assert len(lines) == 2
            assert lines[0].split(";")[2] == "[0] PING"
            assert lines[0].endswith(";[0/0] PONG (1)")
            assert "client 1 connected from 127.0.0.1:" in s.out.getvalue()

    run(scenario())


def test_burst_is_answered_out_of_order_none_queued(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, delay_ms=(100, 600), seed=3) as s:
            reader, writer = await connect(s.port)
            started = time.monotonic()
            writer.write(b"".join(f"[{n}] PING\n".encode() for n in range(40)))
            responses = await read_responses(reader, 40)
            elapsed = time.monotonic() - started
            # Queued one behind another, 40 delays of >= 100 ms would take >= 4 s; side by
            # side they take the longest one, 600 ms, and whatever a loaded machine adds.
            assert elapsed < 3.5
            requests = [r.request for r in responses if isinstance(r, Pong)]
            assert sorted(requests) == list(range(40))
            assert requests != sorted(requests)  # answered in order of their delays
            assert [r.response for r in responses] == list(range(40))  # numbered in send order
            records = [parse_server_line(line) for line in s.log_lines()]
            for record in records:
                assert isinstance(record, Answered)
                delay_ms = (record.response_time - record.request_time).total_seconds() * 1000
                assert 99 <= delay_ms <= 600 + LATE_MS  # its own delay, never a wait behind others
            await close(writer)

    run(scenario())


def test_numbering_across_pongs_and_keepalives(tmp_path: Path) -> None:
    def enough(got: list[Pong | Keepalive]) -> bool:
        pongs = sum(isinstance(r, Pong) for r in got)
        return pongs == 8 and sum(isinstance(r, Keepalive) for r in got) >= 3

    async def client(port: int, got: list[Pong | Keepalive]) -> None:
        reader, writer = await connect(port)
        for n in range(8):
            writer.write(f"[{n}] PING\n".encode())
            await asyncio.sleep(0.05)  # spread over several keepalive rounds
        while line := await reader.readline():  # until the server closes
            got.append(parse_response(line))
        await close(writer)

    async def scenario() -> None:
        async with serving(tmp_path, delay_ms=(10, 80), keepalive_s=0.2) as s:
            first: list[Pong | Keepalive] = []
            second: list[Pong | Keepalive] = []
            clients = asyncio.gather(client(s.port, first), client(s.port, second))
            await wait_until_async(
                lambda: enough(first) and enough(second), "8 PONGs and 3 keepalives each"
            )
            # A graceful stop: every message numbered so far reaches its client.
            await s.server.stop()
            await clients
            numbers = [r.response for r in first + second]
            assert sorted(numbers) == list(range(len(numbers)))  # each number exactly once
            for got in (first, second):
                assert [r.response for r in got] == sorted(r.response for r in got)
                assert sum(isinstance(r, Keepalive) for r in got) >= 3
                assert sum(isinstance(r, Pong) for r in got) == 8
            # The server log accounts for every number, in send order.
            sent = [
                rec.response.response
                for rec in map(parse_server_line, s.log_lines())
                if not isinstance(rec, Ignored)
            ]
            assert sent == list(range(len(numbers)))

    run(scenario())


def test_keepalive_rounds_keep_a_fixed_rate(tmp_path: Path) -> None:
    period = 0.2

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        before = loop.time()
        async with serving(tmp_path, keepalive_s=period) as s:
            started = loop.time()  # the server's own start is between the two
            reader, writer = await connect(s.port)

            async def next_round() -> float:
                """When the next keepalive came, in periods since the start (at most)."""
                assert isinstance(parse_response(await reader.readline()), Keepalive)
                return (loop.time() - before) / period

            assert await next_round() >= 1
            # A stalled loop, past rounds 2 to 4 and half way to round 5: a server timing
            # each round from the one before would stay half a period off the grid.
            time.sleep(max(0.0, started + 4.5 * period - loop.time()))  # noqa: ASYNC251 - on purpose
            await next_round()  # round 2, late, as soon as the loop runs again
            after = [await next_round() for _ in range(5)]
            await close(writer)
        # Rounds 3 and 4 are skipped, not sent in a burst once the loop runs again...
        assert after[0] >= 5, after
        skipped = re.search(r"loop stalled: ([0-9]+) keepalive rounds skipped", s.err.getvalue())
        assert skipped is not None
        assert int(skipped[1]) >= 2
        # ...and the later rounds sit on the grid of the start again. Lateness under load
        # only ever adds, so the median round tells.
        off_grid = sorted(x - round(x) for x in after)
        assert abs(off_grid[2]) < 0.25, after
        rounds = [rec for rec in map(parse_server_line, s.log_lines())]
        assert all(isinstance(rec, Unpaired) for rec in rounds)

    run(scenario())


def test_ignored_requests_are_logged_and_not_answered(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, ignore=1.0) as s:
            reader, writer = await connect(s.port)
            writer.write(b"[0] PING\n[1] PING\n")
            await wait_until_async(lambda: len(s.log_lines()) == 2, "two lines in server.log")
            records = [parse_server_line(line) for line in s.log_lines()]
            assert [type(r) for r in records] == [Ignored, Ignored]
            assert s.log_lines()[0].endswith(";[0] PING;(проигнорировано);(проигнорировано)")
            # A graceful stop sends every answer still due before it closes: there is none.
            await s.server.stop()
            assert await reader.read() == b""
            await close(writer)

    run(scenario())


BAD_LINES = [
    b"hello",  # wrong format
    b"[01] PING",  # leading zero
    b"[1] PONG",  # wrong word
    b"[\xd0\xa4] PING",  # not ASCII
    b"",  # empty
    b"\r",  # empty with CR
    b"[2]PING",  # missing space
]


def test_bad_input_is_reported_and_the_connection_stays_usable(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:
            reader, writer = await connect(s.port)
            writer.write(b"\n".join(BAD_LINES) + b"\n[5] PING\n")
            assert await reader.readline() == b"[0/5] PONG (1)\n"
            assert len(s.log_lines()) == 1  # bad lines are not logged
            assert s.err.getvalue().count("not answered") == len(BAD_LINES)
            writer.write(b"[6] PING\n")
            assert await reader.readline() == b"[1/6] PONG (1)\n"
            await close(writer)

    run(scenario())


def test_server_process_survives_every_kind_of_bad_input(
    tmp_path: Path, no_stray_processes: None
) -> None:
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        pingpong_argv("server", "--port", "0", "--log-file", str(log), "--delay-ms", "0-0",
                      "--ignore", "0"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().rsplit(":", 1)[1])

        async def scenario() -> None:
            reader, writer = await connect(port)
            writer.write(b"\n".join(BAD_LINES) + b"\n")
            writer.write(b"x" * 5000)  # over 1 KiB: this connection ends
            assert await reader.read() == b""
            await close(writer)
            reader, writer = await connect(port)  # an abrupt disconnect with answers pending
            writer.write(b"[0] PING\n")
            writer.transport.abort()
            reader, writer = await connect(port)  # the process still serves
            writer.write(b"[0] PING\n")
            response = parse_response(await reader.readline())
            assert isinstance(response, Pong)
            assert (response.request, response.client) == (0, 3)
            await close(writer)

        run(scenario())
        assert process.poll() is None
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "line longer than 1024 bytes" in err
    assert err.count("not answered") == len(BAD_LINES)
    assert "Traceback" not in err


def test_overlong_line_ends_only_that_connection(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:
            bad_reader, bad_writer = await connect(s.port)
            good_reader, good_writer = await connect(s.port)
            bad_writer.write(b"[1] PING" + b" " * 1100 + b"\n")
            assert await bad_reader.read() == b""
            good_writer.write(b"[0] PING\n")
            assert await good_reader.readline() == b"[0/0] PONG (2)\n"
            assert "client 1: line longer than 1024 bytes" in s.err.getvalue()
            await close(bad_writer)
            await close(good_writer)

    run(scenario())


def test_abrupt_disconnect_with_answers_pending(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, delay_ms=(200, 200)) as s:
            _reader, writer = await connect(s.port)
            writer.write(b"[0] PING\n[1] PING\n")
            await wait_until_async(lambda: in_flight(s) == 2, "the server to read both requests")
            writer.transport.abort()
            await wait_until_async(
                lambda: "client 1 disconnected" in s.out.getvalue(), "the server to notice"
            )
            assert "client 1: 2 pending answers dropped" in s.err.getvalue()
            reader, writer = await connect(s.port)
            writer.write(b"[0] PING\n")
            # Answered after the dropped ones fell due: they took no response number...
            assert await reader.readline() == b"[0/0] PONG (2)\n"
            # ...and nothing was sent to client 1, so nothing is logged as sent.
            (line,) = s.log_lines()
            assert line.endswith(";[0/0] PONG (2)")
            await close(writer)

    run(scenario())


def test_in_flight_requests_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "MAX_IN_FLIGHT", 5)

    async def scenario() -> None:
        async with serving(tmp_path, delay_ms=(200, 200)) as s:
            reader, writer = await connect(s.port)
            started = time.monotonic()
            writer.write(b"".join(f"[{n}] PING\n".encode() for n in range(15)))
            await read_responses(reader, 15)
            # Three waves of five: the server did not take more than five at a time.
            assert time.monotonic() - started >= 0.55
            await close(writer)

    run(scenario())


def test_two_hundred_simultaneous_connections(tmp_path: Path) -> None:
    async def one(port: int) -> Pong | Keepalive:
        reader, writer = await connect(port)
        writer.write(b"[0] PING\n")
        response = parse_response(await reader.readline())
        await close(writer)
        return response

    async def scenario() -> None:
        async with serving(tmp_path, delay_ms=(100, 300)) as s:
            responses = await asyncio.gather(*(one(s.port) for _ in range(200)))
            pongs = [r for r in responses if isinstance(r, Pong)]
            assert sorted(p.client for p in pongs) == list(range(1, 201))
            assert sorted(p.response for p in pongs) == list(range(200))

    run(scenario())


def test_graceful_stop_sends_pending_answers_first(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, delay_ms=(300, 300)) as s:
            reader, writer = await connect(s.port)
            writer.write(b"[0] PING\n")
            await wait_until_async(lambda: in_flight(s) == 1, "the server to read the request")
            await s.server.stop()
            assert await reader.readline() == b"[0/0] PONG (1)\n"
            assert await reader.read() == b""
            await close(writer)
            assert len(s.log_lines()) == 1

    run(scenario())
