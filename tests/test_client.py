"""The client against a scripted fake server: pairing, late and unknown PONGs, reconnects, stop."""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from pingpong.client import Client
from pingpong.lifecycle import Stop
from pingpong.logfile import LogWriter
from pingpong.logformat import Answered, ClientRecord, TimedOut, parse_client_line
from pingpong.protocol import Keepalive, Ping, Pong, parse_request
from pingpong.settings import ClientSettings, MsRange

from .conftest import run

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


_handlers: dict[asyncio.Server, set[asyncio.Task[None]]] = {}


async def start_fake(handler: Handler, port: int = 0) -> asyncio.Server:
    """A scripted server; :func:`stop_fake` waits for its handlers to end."""
    tasks: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(tracked, "127.0.0.1", port)
    _handlers[server] = tasks
    return server


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


async def stop_fake(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()
    tasks = _handlers.pop(server)
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)


async def run_client(
    tmp_path: Path,
    port: int,
    seconds: float,
    *,
    interval_ms: tuple[int, int] = (100, 100),
    timeout_ms: int = 300,
) -> tuple[list[ClientRecord], str, int]:
    """Run a client for ``seconds``, stop it; its log records, its stderr, requests sent."""
    settings = ClientSettings(
        port=port,
        log_file=str(tmp_path / "client1.log"),
        interval_ms=MsRange(*interval_ms),
        timeout_ms=timeout_ms,
        seed=1,
    )
    err = io.StringIO()
    stop = Stop()
    with LogWriter(settings.log_file) as log:
        client = Client(settings, log, err=err)
        asyncio.get_running_loop().call_later(seconds, stop.request, "test")
        await client.run(stop)
    lines = (tmp_path / "client1.log").read_text(encoding="utf-8").splitlines()
    return [parse_client_line(line) for line in lines], err.getvalue(), client.sent


def outcomes(records: list[ClientRecord]) -> dict[int, ClientRecord]:
    """Request number → its one outcome record (fails on a second outcome)."""
    result: dict[int, ClientRecord] = {}
    for record in records:
        if isinstance(record, Answered | TimedOut):
            assert record.request.request not in result, f"two outcomes for {record.request}"
            result[record.request.request] = record
    return result


def answer_all(delay: float = 0.0, client: int = 1) -> Handler:
    """A fake server that answers every request after ``delay`` seconds."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = 0
        tasks = set()
        while line := await reader.readline():
            request = parse_request(line)

            async def answer(request: Ping = request, number: int = number) -> None:
                await asyncio.sleep(delay)
                writer.write(f"{Pong(number, request.request, client)}\n".encode())

            task = asyncio.create_task(answer())
            tasks.add(task)
            number += 1
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()

    return handler


def test_pairs_answers_and_keeps_its_schedule(tmp_path: Path) -> None:
    async def scenario() -> None:
        fake = await start_fake(answer_all(delay=0.02))
        records, _err, sent = await run_client(tmp_path, port_of(fake), 1.0)
        await stop_fake(fake)
        paired = outcomes(records)
        assert sorted(paired) == list(range(sent))  # one outcome for every request sent
        assert all(isinstance(r, Answered) for r in paired.values())
        assert 9 <= sent <= 12  # one every 100 ms for a second
        times = [paired[n].request_time for n in range(sent)]
        for earlier, later in itertools.pairwise(times):
            assert timedelta(milliseconds=85) <= later - earlier <= timedelta(milliseconds=130)

    run(scenario())


def test_sends_independently_of_answers(tmp_path: Path) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline():
            pass  # never answers
        writer.close()

    async def scenario() -> None:
        fake = await start_fake(silent)
        records, _err, sent = await run_client(tmp_path, port_of(fake), 0.55, timeout_ms=1000)
        await stop_fake(fake)
        assert sent >= 5  # several requests in flight at once
        paired = outcomes(records)
        assert sorted(paired) == list(range(sent))
        for record in paired.values():
            assert isinstance(record, TimedOut)
            waited = record.response_time - record.request_time
            assert timedelta(milliseconds=995) <= waited <= timedelta(milliseconds=1100)

    run(scenario())


def test_late_unknown_and_keepalive_responses(tmp_path: Path) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert parse_request(await reader.readline()) == Ping(0)
        writer.write(b"[0] keepalive\n")
        writer.write(b"[1/77] PONG (1)\n")  # answers nothing this client sent
        writer.write(b"garbage\n")  # not a response: skipped
        await asyncio.sleep(0.4)  # past the 300 ms timeout of request 0
        writer.write(b"[2/0] PONG (1)\n")  # late
        while await reader.readline():
            pass
        writer.close()

    async def scenario() -> None:
        fake = await start_fake(script)
        records, err, sent = await run_client(
            tmp_path, port_of(fake), 0.5, interval_ms=(10_000, 10_000)
        )
        await stop_fake(fake)
        assert sent == 1
        kinds = [(type(r).__name__, getattr(r, "response", None)) for r in records]
        assert kinds == [
            ("Unpaired", Keepalive(0)),
            ("Unpaired", Pong(1, 77, 1)),
            ("TimedOut", None),
            ("Unpaired", Pong(2, 0, 1)),
        ]
        text = (tmp_path / "client1.log").read_text(encoding="utf-8").splitlines()
        assert text[0].endswith(";;;" + text[0].split(";")[3] + ";[0] keepalive")
        assert text[2].endswith(";[0] PING;" + text[2].split(";")[3] + ";(таймаут)")
        assert "not a response: 'garbage'" in err

    run(scenario())


def test_reconnects_when_the_server_goes_and_comes_back(tmp_path: Path) -> None:
    fakes: list[asyncio.Server] = []
    ports: list[int] = []
    restarted = asyncio.Event()

    async def outage() -> None:
        await stop_fake(fakes[0])
        await asyncio.sleep(0.5)  # nobody listening for a while
        fakes.append(await start_fake(flaky, ports[0]))
        restarted.set()

    async def flaky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(fakes) == 1:
            await reader.readline()
            await reader.readline()
            fakes[0].close()  # stop listening, then drop the client
            asyncio.get_running_loop().call_soon(
                lambda: restarts.add(asyncio.create_task(outage()))
            )
            return  # leaves with two requests unanswered
        await answer_all(client=2)(reader, writer)

    restarts: set[asyncio.Task[None]] = set()

    async def scenario() -> None:
        fakes.append(await start_fake(flaky))
        ports.append(port_of(fakes[0]))
        records, err, sent = await run_client(tmp_path, ports[0], 2.0)
        await asyncio.wait_for(restarted.wait(), 5)
        await stop_fake(fakes[-1])
        paired = outcomes(records)
        assert sorted(paired) == list(range(sent))
        timed_out = [n for n, r in paired.items() if isinstance(r, TimedOut)]
        answered = [r for r in paired.values() if isinstance(r, Answered)]
        assert timed_out[:2] == [0, 1]  # lost with the first connection
        assert answered
        assert {r.response.client for r in answered} == {2}  # a new number after reconnecting
        assert "cannot connect" in err
        assert err.count("connected to") == 2

    run(scenario())


def test_keeps_trying_until_the_server_starts(tmp_path: Path) -> None:
    async def scenario() -> None:
        probe = await start_fake(answer_all())
        port = port_of(probe)
        await stop_fake(probe)
        holder: list[asyncio.Server] = []

        async def late_start() -> None:
            await asyncio.sleep(0.4)
            holder.append(await start_fake(answer_all(), port))

        starter = asyncio.create_task(late_start())
        records, err, sent = await run_client(tmp_path, port, 1.0)
        await starter
        await stop_fake(holder[0])
        assert "cannot connect" in err
        assert sent >= 3
        assert all(isinstance(r, Answered) for r in outcomes(records).values())

    run(scenario())


def test_graceful_stop_logs_every_outcome(tmp_path: Path) -> None:
    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks = set()
        while line := await reader.readline():
            request = parse_request(line)
            if request.request % 2 == 0:

                async def answer(request: Ping = request) -> None:
                    await asyncio.sleep(0.25)
                    writer.write(f"{Pong(request.request, request.request, 1)}\n".encode())

                tasks.add(asyncio.create_task(answer()))
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()

    async def scenario() -> None:
        fake = await start_fake(half)
        loop = asyncio.get_running_loop()
        started = loop.time()
        records, err, sent = await run_client(
            tmp_path, port_of(fake), 0.5, interval_ms=(40, 40), timeout_ms=400
        )
        waited = loop.time() - started
        await stop_fake(fake)
        paired = outcomes(records)
        assert sorted(paired) == list(range(sent))
        for number, record in paired.items():
            assert isinstance(record, Answered if number % 2 == 0 else TimedOut)
        # The last odd request went out at most 80 ms before the stop; the client
        # waited for its 400 ms timeout before returning.
        assert waited >= 0.5 + 0.3
        assert "requests in flight" in err

    run(scenario())


def test_a_flood_of_bad_lines_costs_stderr_no_more_than_it_brought(tmp_path: Path) -> None:
    flood = b"\n" * 1_000_000 + b"garbage\n" * 10_000

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(flood)
        writer.write(b"[0] keepalive\n")
        while await reader.readline():
            pass
        writer.close()

    async def scenario() -> None:
        fake = await start_fake(script)
        records, err, _sent = await run_client(
            tmp_path, port_of(fake), 1.5, interval_ms=(10_000, 10_000)
        )
        await stop_fake(fake)
        assert ("Unpaired", Keepalive(0)) in [
            (type(r).__name__, getattr(r, "response", None)) for r in records
        ]
        # Never more than it received (it was 28 bytes per newline), and a fraction of it.
        assert len(err.encode()) <= len(flood) // 10
        assert "client: empty line; skipped" in err
        assert "more like this not shown; the last: not a response: 'garbage'; skipped" in err

    run(scenario())
