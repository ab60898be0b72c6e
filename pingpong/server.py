"""The TCP server: answers requests after a random delay, ignores some, sends keepalives.

A thin shell over :mod:`pingpong.protocol` and :mod:`pingpong.logformat`; what it
adds is timing and concurrency:

* Each request gets its own timer (``loop.call_at``) the moment it is read, so a
  request never waits behind another's delay and the logged receive time is the
  real arrival time. A timer is the lightest "task per request" asyncio has; with
  a zero delay range there is nothing to wait for and the answer goes at once.
* What one loop iteration sends goes out at its end (``_flush``): one ``write`` of
  whole lines to the log, then one ``send`` per connection, however many messages —
  a socket write and a log write per message had cost two thirds of the throughput.
* The response number is taken when a message is sent, from one counter shared by
  every connection, so numbers rise in send order and each is used once — each
  keepalive copy takes its own.
* Keepalive rounds run at a fixed rate from the start (round k at start + k·period);
  a round missed because the loop stalled is skipped, never sent in a burst. A round
  to many clients goes out in batches, so answers falling due meanwhile are not held up.
* Memory per connection is bounded: at most :data:`MAX_IN_FLIGHT` requests wait for
  their timers; past that the server stops reading that socket (TCP pushes back on
  the client) until answers go out. It also stops reading while a client is not
  reading its answers (``drain``), and drops a client whose unread answers pass
  :data:`MAX_WRITE_BUFFER`.
* Bad input (SPEC §6): a malformed line is reported on stderr and skipped; a line
  over 1 KiB ends that connection; a client leaving with answers pending costs
  nothing but a line on stderr.
* Graceful stop: stop accepting, stop reading, let pending answers go out, close.
* A port it cannot listen on, or a log it cannot write (a full disk …), ends the
  server: exit status 1 and one line on stderr. A log write that fails drops that
  iteration's messages (nothing reaches a client unlogged) and keeps nothing more.
"""

from __future__ import annotations

import asyncio
import gc
import random
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from .diagnostics import ClientConnected, ClientDisconnected, Listening, format_diagnostic
from .lateness import Lateness
from .lifecycle import Stop, fatal, os_error_text
from .logfile import LogWriter
from .logformat import Answered, Ignored, ServerRecord, Unpaired, format_record
from .protocol import (
    Keepalive,
    LineSplitter,
    LineTooLong,
    Ping,
    Pong,
    ProtocolError,
    encode,
    parse_request,
)
from .settings import ServerSettings

__all__ = ["KEEPALIVE_BATCH", "MAX_IN_FLIGHT", "MAX_WRITE_BUFFER", "Server", "serve"]

#: Requests of one connection waiting for their answer before we stop reading it.
MAX_IN_FLIGHT = 1000
#: Keepalive copies sent in one go before a round lets other work run.
KEEPALIVE_BATCH = 100
#: Unread answers (bytes) a client may leave us holding before we drop it.
MAX_WRITE_BUFFER = 1 << 20
_READ_SIZE = 1 << 16


@dataclass(eq=False)
class _Connection:
    number: int
    writer: asyncio.StreamWriter
    task: asyncio.Task[None] | None = None
    timers: dict[int, asyncio.TimerHandle] = field(default_factory=dict)
    next_timer: int = 0
    room: asyncio.Event = field(default_factory=asyncio.Event)  # set: below MAX_IN_FLIGHT
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set: nothing in flight
    out: list[bytes] = field(default_factory=list)  # messages of this loop iteration

    def __post_init__(self) -> None:
        self.room.set()
        self.idle.set()


class Server:
    """One server: ``await start()``, then ``await stop()`` (or use :func:`serve`)."""

    _loop: asyncio.AbstractEventLoop  # the loop it was started in

    def __init__(
        self,
        settings: ServerSettings,
        log: LogWriter,
        *,
        rng: random.Random | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self.log = log
        self.rng = rng if rng is not None else random.Random(settings.seed)
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.address: tuple[str, int] | None = None
        self._connections: dict[int, _Connection] = {}
        self._clients = 0  # client numbers handed out so far
        self._responses = 0  # response numbers handed out so far
        self._stopping = False
        self._server: asyncio.Server | None = None
        # Output of the current loop iteration, written in one go at its end (_flush):
        # one send per connection and one write to the log, however many messages.
        self._log_lines: list[str] = []
        self._unsent: list[_Connection] = []
        self._flush_scheduled = False
        self._keepalive: asyncio.Task[None] | None = None
        # Why the server gave up (its log cannot be written); ``failed`` is then set.
        self.failure: str | None = None
        self.failed = asyncio.Event()
        # How late answers and keepalive rounds went out, against their exact instants.
        self.answer_lateness = Lateness()
        self.keepalive_lateness = Lateness()

    # -- reporting --------------------------------------------------------------

    def _say(self, line: str) -> None:
        self.out.write(line)
        self.out.flush()

    def _warn(self, message: str) -> None:
        self.err.write(f"server: {message}\n")
        self.err.flush()

    # -- life cycle ---------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        loop = self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(
            self._handle, self.settings.host, self.settings.port, limit=_READ_SIZE, backlog=1024
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = (host, port)
        self._keepalive = asyncio.create_task(self._keepalive_rounds(loop.time()))
        self._say(format_diagnostic(Listening(host, port)))
        return self.address

    async def stop(self, force: asyncio.Event | None = None) -> None:
        """Stop accepting, stop reading, let pending answers go out, close everything."""
        if self._server is None or self._stopping:
            return
        self._stopping = True
        self._server.close()
        if self._keepalive is not None:
            self._keepalive.cancel()
        tasks = [conn.task for conn in self._connections.values() if conn.task is not None]
        pending = sum(len(conn.timers) for conn in self._connections.values())
        self._warn(f"stopping: {len(tasks)} connections, {pending} answers still to send")
        for task in tasks:
            task.cancel()
        if tasks:
            waiters: list[asyncio.Future[Any]] = [asyncio.gather(*tasks, return_exceptions=True)]
            if force is not None:
                waiters.append(asyncio.ensure_future(force.wait()))
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters[1:]:
                waiter.cancel()
            for conn in list(self._connections.values()):
                self._close(conn, "stopped by force")
        await self._server.wait_closed()
        self._flush()
        self._warn(f"stopped after {self._responses} responses to {self._clients} clients")
        self._warn(f"answer lateness {self.answer_lateness.describe()}")
        self._warn(f"keepalive lateness {self.keepalive_lateness.describe()}")

    async def abort(self) -> None:
        """Stop at once, without a word (the server gave up): close everything, answer nothing."""
        if self._server is None or self._stopping:
            return
        self._stopping = True
        self._server.close()
        if self._keepalive is not None:
            self._keepalive.cancel()
        connections = list(self._connections.values())
        self._connections.clear()  # so that _close, run by each handler as it ends, says nothing
        for conn in connections:
            for timer in conn.timers.values():
                timer.cancel()
            conn.timers.clear()
            conn.out.clear()
            conn.room.set()
            conn.idle.set()
            conn.writer.close()
            if conn.task is not None:
                conn.task.cancel()
        tasks = [conn.task for conn in connections if conn.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- one connection -------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping:
            writer.close()
            return
        self._clients += 1
        peer = writer.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        conn = _Connection(self._clients, writer, asyncio.current_task())
        self._connections[conn.number] = conn
        self._say(format_diagnostic(ClientConnected(conn.number, peer_text)))
        reason = "disconnected"
        try:
            reason = await self._read(conn, reader)
        except asyncio.CancelledError:
            if not self.stopping:
                raise
            reason = "server stopping"
            await conn.idle.wait()  # let the answers already promised go out
        except OSError as exc:
            reason = f"connection error: {exc}"
        finally:
            self._close(conn, reason)

    async def _read(self, conn: _Connection, reader: asyncio.StreamReader) -> str:
        splitter = LineSplitter()
        while True:
            data = await reader.read(_READ_SIZE)
            if not data:
                if splitter.pending:
                    self._warn(f"client {conn.number}: unfinished line at close dropped")
                return "disconnected"
            received = datetime.now()
            too_long: LineTooLong | None = None
            try:
                lines = splitter.feed(data)
            except LineTooLong as exc:
                lines, too_long = exc.lines, exc
            for line in lines:
                if not conn.room.is_set():
                    await conn.room.wait()
                self._on_line(conn, line, received)
            if too_long is not None:
                self._warn(f"client {conn.number}: {too_long}; closing the connection")
                await conn.idle.wait()  # the requests before it still get their answers
                return "line too long"
            await conn.writer.drain()

    def _on_line(self, conn: _Connection, line: bytes, received: datetime) -> None:
        try:
            request = parse_request(line)
        except ProtocolError as exc:
            self._warn(f"client {conn.number}: {exc}; not answered")
            return
        if self.rng.random() < self.settings.ignore:
            self._log(Ignored(received, request))
            return
        low, high = self.settings.delay_ms.low, self.settings.delay_ms.high
        if high == 0:  # a plain responder (benchmarks): no delay, so no timer either
            self._respond(conn, request, received)
            return
        delay_ms = self.rng.uniform(low, high)
        token = conn.next_timer
        conn.next_timer += 1
        loop = self._loop
        due = loop.time() + delay_ms / 1000
        conn.timers[token] = loop.call_at(due, self._answer, conn, token, request, received, due)
        conn.idle.clear()
        if len(conn.timers) >= MAX_IN_FLIGHT:
            conn.room.clear()

    def _answer(
        self, conn: _Connection, token: int, request: Ping, received: datetime, due: float
    ) -> None:
        self.answer_lateness.add(self._loop.time() - due)
        del conn.timers[token]
        if len(conn.timers) < MAX_IN_FLIGHT:
            conn.room.set()
        if not conn.timers:
            conn.idle.set()
        self._respond(conn, request, received)

    def _respond(self, conn: _Connection, request: Ping, received: datetime) -> None:
        pong = Pong(self._responses, request.request, conn.number)
        sent = datetime.now()  # before the write: the client may log its arrival at once
        if self._send(conn, pong):
            self._log(Answered(received, request, sent, pong))

    def _send(self, conn: _Connection, message: Pong | Keepalive) -> bool:
        """Send with the next response number; ``False`` if the client is gone or stuck."""
        transport = conn.writer.transport
        if transport.is_closing() or self.failure is not None:
            return False
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self._close(conn, "not reading its answers")
            return False
        if not conn.out:
            self._unsent.append(conn)
        conn.out.append(encode(message))
        self._responses += 1
        self._schedule_flush()
        return True

    def _log(self, record: ServerRecord) -> None:
        if self.failure is None:
            self._log_lines.append(format_record(record))
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """End of a loop iteration: log what happened, send what each connection got.

        The log comes first, so nothing reaches a client that the log does not hold.
        A log that cannot be written (a full disk …) makes the run meaningless: the
        server gives up (``failed``), drops this iteration's messages and keeps
        nothing more in memory.
        """
        self._flush_scheduled = False
        if self._log_lines:
            lines = "".join(self._log_lines)
            self._log_lines.clear()
            try:
                self.log.write_line(lines)
            except OSError as exc:
                self._give_up(f"cannot write log {self.log.path}: {os_error_text(exc)}")
        for conn in self._unsent:
            if self.failure is None:
                self._write_out(conn)
            else:
                conn.out.clear()
        self._unsent.clear()

    def _give_up(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
            self.failed.set()

    def _write_out(self, conn: _Connection) -> None:
        if conn.out:
            if not conn.writer.transport.is_closing():
                conn.writer.write(b"".join(conn.out))
            conn.out.clear()

    def _close(self, conn: _Connection, reason: str) -> None:
        if self._connections.pop(conn.number, None) is None:
            return
        self._write_out(conn)  # what was already answered goes out before the close
        if conn.timers:
            self._warn(f"client {conn.number}: {len(conn.timers)} pending answers dropped")
            for timer in conn.timers.values():
                timer.cancel()
            conn.timers.clear()
        conn.room.set()
        conn.idle.set()
        conn.writer.close()
        if conn.task is not None and conn.task is not asyncio.current_task():
            conn.task.cancel()
        self._say(format_diagnostic(ClientDisconnected(conn.number)))
        if reason != "disconnected":
            self._warn(f"client {conn.number}: closed ({reason})")

    # -- keepalive ------------------------------------------------------------------

    async def _keepalive_rounds(self, start: float) -> None:
        loop = asyncio.get_running_loop()
        period = self.settings.keepalive_s
        round_number = 1
        while True:
            due = start + round_number * period
            await asyncio.sleep(due - loop.time())
            if self._connections:
                self.keepalive_lateness.add(loop.time() - due)
            sent = datetime.now()
            for index, conn in enumerate(list(self._connections.values())):
                if index and index % KEEPALIVE_BATCH == 0:
                    # A round to thousands of clients takes tens of milliseconds: let the
                    # answers that fall due meanwhile go out between batches.
                    await asyncio.sleep(0)
                    sent = datetime.now()
                keepalive = Keepalive(self._responses)
                if self._send(conn, keepalive):
                    self._log(Unpaired(sent, keepalive))
            next_due = int((loop.time() - start) / period) + 1  # the next round not yet past
            if next_due > round_number + 1:
                skipped = next_due - round_number - 1
                self._warn(f"loop stalled: {skipped} keepalive rounds skipped")
            round_number = max(round_number + 1, next_due)


def _tune_gc() -> None:
    """Fewer, later garbage collections: each full one is a pause every timer waits out.

    Measured with ``pingpong bench --scenario scale`` (2000 clients): p99 answer lateness
    4.0 ms with the defaults, 1.6 ms with this. Objects alive at start-up are frozen out
    of the collector's scans; cycles are still collected, just less often.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 1000)


async def serve(settings: ServerSettings) -> int:
    """Run a server until its duration ends or it is told to stop; the exit status.

    1, after one line on stderr, when it cannot listen or cannot write its log.
    """
    _tune_gc()
    stop = Stop()
    stop.install(settings.duration)
    try:
        try:
            log = LogWriter(settings.log_file)
        except OSError as exc:
            return fatal("server", f"cannot open log {settings.log_file}: {os_error_text(exc)}")
        with log:
            server = Server(settings, log)
            try:
                await server.start()
            except OSError as exc:
                where = f"{settings.host}:{settings.port}"
                return fatal("server", f"cannot listen on {where}: {os_error_text(exc)}")
            failed = asyncio.ensure_future(server.failed.wait())
            requested = asyncio.ensure_future(stop.requested.wait())
            await asyncio.wait([failed, requested], return_when=asyncio.FIRST_COMPLETED)
            failed.cancel()
            requested.cancel()
            if server.failure is None:
                print(f"server: stopping ({stop.reason})", file=sys.stderr, flush=True)
                await server.stop(stop.force)
            else:
                await server.abort()
            if server.failure is not None:  # perhaps only while stopping
                return fatal("server", server.failure)
    finally:
        stop.uninstall()
    return 0
