"""The client against a scripted fake server: pairing, late and unknown PONGs, reconnects, stop."""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from pingpong.client import Client
from pingpong.lifecycle import Stop, StopKind, StopReason
from pingpong.logfile import LogWriter
from pingpong.logformat import Answered, ClientRecord, TimedOut, parse_client_line
from pingpong.protocol import Keepalive, Ping, Pong, parse_request
from pingpong.settings import ClientSettings, MsRange

from .conftest import LATE_MS, WAIT_S, run, wait_until_async

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


_handlers: dict[asyncio.Server, set[asyncio.Task[None]]] = {}


async def start_fake(handler: Handler, port: int = 0) -> asyncio.Server:
    """A scripted server; :func:`stop_fake` waits for its handlers to end."""
    tasks: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # a handler runs in a task of its own
        tasks.add(task)
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


def logged(tmp_path: Path) -> list[ClientRecord]:
    """The records of the client's log so far."""
    path = tmp_path / "client1.log"
    if not path.exists():
        return []
    return [parse_client_line(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def run_client(
    tmp_path: Path,
    port: int,
    until: float | Callable[[Client], object],
    *,
    interval_ms: tuple[int, int] = (100, 100),
    timeout_ms: int = 300,
    err: io.StringIO | None = None,
) -> tuple[list[ClientRecord], str, int]:
    """Run a client until ``until`` holds (or for ``until`` seconds), stop it; its log
    records, its stderr, requests sent."""
    settings = ClientSettings(
        port=port,
        log_file=str(tmp_path / "client1.log"),
        interval_ms=MsRange(*interval_ms),
        timeout_ms=timeout_ms,
        seed=1,
    )
    err = err if err is not None else io.StringIO()
    stop = Stop()
    with LogWriter(settings.log_file) as log:
        client = Client(settings, log, err=err)
        if callable(until):
            condition = until

            async def stop_when_done() -> None:
                try:
                    await wait_until_async(lambda: condition(client), "the client's condition")
                finally:
                    stop.request(StopReason(StopKind.DURATION))

            stopper = asyncio.create_task(stop_when_done())
            await client.run(stop)
            await stopper
        else:
            asyncio.get_running_loop().call_later(
                until, stop.request, StopReason(StopKind.DURATION)
            )
            await client.run(stop)
    return logged(tmp_path), err.getvalue(), client.sent


def outcomes(records: list[ClientRecord]) -> dict[int, Answered | TimedOut]:
    """Request number → its one outcome record (fails on a second outcome)."""
    result: dict[int, Answered | TimedOut] = {}
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
    async def stalls_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answers at once; stalls the loop for two and a half intervals at request 3."""
        while line := await reader.readline():
            request = parse_request(line)
            if request.request == 3:
                time.sleep(0.25)  # noqa: ASYNC251 - the stall is the point
            writer.write(f"{Pong(request.request, request.request, 1)}\n".encode())

    async def scenario() -> None:
        fake = await start_fake(stalls_once)
        records, _err, sent = await run_client(tmp_path, port_of(fake), lambda c: c.sent >= 15)
        await stop_fake(fake)
        paired = outcomes(records)
        assert sorted(paired) == list(range(sent))  # one outcome for every request sent
        assert all(isinstance(r, Answered) for r in paired.values())
        # Request n is due 100 n ms after request 0 (sent at once on connecting).
        late_ms = [
            (paired[n].request_time - paired[0].request_time) / timedelta(milliseconds=1) - 100 * n
            for n in range(sent)
        ]
        assert min(late_ms) >= -1, late_ms  # never early (the log truncates to the ms)
        # The stall held up at least two due requests, the first by 100 ms or more...
        assert max(late_ms) >= 99, late_ms
        # ...but not the last ones, long after it: a client timing each request from the
        # one before would stay as late. Lateness under load only adds: the median tells.
        last = sorted(late_ms[-5:])
        assert last[2] < 50, late_ms

    run(scenario())


def test_sends_independently_of_answers(tmp_path: Path) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline():
            pass  # never answers
        writer.close()

    async def scenario() -> None:
        fake = await start_fake(silent)
        records, _err, sent = await run_client(
            tmp_path, port_of(fake), lambda c: c.sent >= 5, timeout_ms=1000
        )
        await stop_fake(fake)
        paired = outcomes(records)
        assert sorted(paired) == list(range(sent))
        for number, record in paired.items():
            assert isinstance(record, TimedOut)
            waited = record.response_time - record.request_time
            assert timedelta(milliseconds=995) <= waited <= timedelta(milliseconds=1000 + LATE_MS)
            # The next request went out while this one was still waiting for its answer.
            if number + 1 < sent:
                assert paired[number + 1].request_time < record.response_time

    run(scenario())


def test_late_unknown_and_keepalive_responses(tmp_path: Path) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert parse_request(await reader.readline()) == Ping(0)
        writer.write(b"[0] keepalive\n")
        writer.write(b"[1/77] PONG (1)\n")  # answers nothing this client sent
        writer.write(b"garbage\n")  # not a response: skipped
        await wait_until_async(
            lambda: any(isinstance(r, TimedOut) for r in logged(tmp_path)), "request 0 to time out"
        )
        writer.write(b"[2/0] PONG (1)\n")  # late
        while await reader.readline():
            pass
        writer.close()

    async def scenario() -> None:
        fake = await start_fake(script)
        records, err, sent = await run_client(
            tmp_path, port_of(fake), lambda _c: len(logged(tmp_path)) == 4,
            interval_ms=(10_000, 10_000),
        )  # fmt: skip
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
    client_err = io.StringIO()

    async def outage() -> None:
        await stop_fake(fakes[0])
        await wait_until_async(
            lambda: "cannot connect" in client_err.getvalue(), "the client to find nobody"
        )
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

    def answered_again(_client: Client) -> bool:
        return any(isinstance(r, Answered) for r in logged(tmp_path))

    async def scenario() -> None:
        fakes.append(await start_fake(flaky))
        ports.append(port_of(fakes[0]))
        records, err, sent = await run_client(tmp_path, ports[0], answered_again, err=client_err)
        await asyncio.wait_for(restarted.wait(), WAIT_S)
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
    client_err = io.StringIO()

    async def scenario() -> None:
        probe = await start_fake(answer_all())
        port = port_of(probe)
        await stop_fake(probe)
        holder: list[asyncio.Server] = []

        async def late_start() -> None:
            await wait_until_async(
                lambda: "cannot connect" in client_err.getvalue(), "the client to find nobody"
            )
            holder.append(await start_fake(answer_all(), port))

        def three_answered(_client: Client) -> bool:
            return sum(isinstance(r, Answered) for r in logged(tmp_path)) >= 3

        starter = asyncio.create_task(late_start())
        records, err, sent = await run_client(tmp_path, port, three_answered, err=client_err)
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
        records, err, sent = await run_client(
            tmp_path, port_of(fake), 0.5, interval_ms=(40, 40), timeout_ms=400
        )
        await stop_fake(fake)
        in_flight = re.search(r"stopping \(duration reached\): ([0-9]+) requests in flight", err)
        assert in_flight is not None
        assert int(in_flight[1]) > 0
        paired = outcomes(records)
        assert sorted(paired) == list(range(sent))
        for number, record in paired.items():
            assert isinstance(record, Answered if number % 2 == 0 else TimedOut)
            if isinstance(record, TimedOut):
                # Timed out by its own timer, not cut short when the client stopped.
                assert record.response_time - record.request_time >= timedelta(milliseconds=399)

    run(scenario())
