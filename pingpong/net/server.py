"""The TCP server: the asyncio shell of :class:`~pingpong.core.server_session.ServerSession`.

The session decides everything (answers, delays, ignores, numbering, keepalive
rounds, bad input, the in-flight cap, graceful stop); this shell moves bytes and
time between it and the sockets:

* Each socket is an :class:`asyncio.Protocol` that hands what it reads to the
  session with the current time (``time.time()``) — the logged receive time is the
  real arrival time.
* What one loop iteration produces goes out at its end (:meth:`Server._flush`):
  one ``write`` of whole lines to the log, then one ``send`` per connection however
  many messages, then the session's actions — a socket write and a log write per
  message had cost two thirds of the throughput.
* The session has one deadline (the earliest answer or keepalive round due); the
  shell keeps one ``loop.call_at`` on it, which ticks the session and flushes.
* A client not reading its answers: when its socket's buffer fills
  (``pause_writing``) the shell stops reading it and tells the session how much is
  buffered, which drops it past :data:`MAX_WRITE_BUFFER`.
* Reports about clients, and failed accepts, go through the session's
  :class:`~pingpong.core.throttle.Throttle`: never more bytes on stderr than clients
  sent, whatever they send.
* Memory stays flat under connection churn: the garbage collector is tuned for few
  pauses (:func:`_tune_gc`), so the reference cycles a closed connection leaves
  (asyncio's transport and its bound methods, an exception and its traceback) would
  reach the oldest generation and stay; every :data:`COLLECT_EVERY` closed
  connections, a full collection clears them.
* A port it cannot listen on, or a log it cannot write (a full disk …), ends the
  server: exit status 1 and one line on stderr. A log write that fails drops that
  iteration's messages (nothing reaches a client unlogged) and keeps nothing more.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import random
import sys
import time
from typing import Any, TextIO

from ..core.diagnostics import ClientConnected, ClientDisconnected, Listening, format_diagnostic
from ..core.server_session import KEEPALIVE_BATCH, MAX_IN_FLIGHT, MAX_WRITE_BUFFER, ServerSession
from ..core.session import CloseConnection, PauseReading, ResumeReading, Warn
from ..core.settings import ServerSettings
from .lifecycle import Stop, fatal, os_error_text
from .logfile import LogWriter

__all__ = [
    "COLLECT_EVERY",
    "KEEPALIVE_BATCH",
    "MAX_IN_FLIGHT",
    "MAX_WRITE_BUFFER",
    "Server",
    "serve",
]

#: Closed connections between two full garbage collections (their cycles, about 3 KiB each).
COLLECT_EVERY = 1000


class _Connection(asyncio.Protocol):
    """One client's socket: what it reads goes to the session, at once."""

    __slots__ = ("number", "paused_by_session", "paused_writing", "server", "transport")

    def __init__(self, server: Server) -> None:
        self.server = server
        self.number = 0  # 0: not (or no longer) the session's
        self.transport: asyncio.Transport | None = None
        self.paused_by_session = False  # the in-flight cap
        self.paused_writing = False  # the client is not reading its answers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._connection_made(self, transport)

    def data_received(self, data: bytes) -> None:
        if self.number:
            self.server._received(self.number, data)

    def eof_received(self) -> bool:
        if self.number:
            self.server._eof(self.number)
        return True  # half-closed: the answers already promised may still go out

    def connection_lost(self, exc: Exception | None) -> None:
        if self.number:
            self.server._lost(self, exc)

    def pause_writing(self) -> None:
        self.paused_writing = True
        self.update_reading()
        if self.number:
            self.server._buffered(self)

    def resume_writing(self) -> None:
        self.paused_writing = False
        self.update_reading()
        if self.number:
            self.server._buffered(self)

    def update_reading(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.paused_by_session or self.paused_writing:
            transport.pause_reading()
        else:
            transport.resume_reading()


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
        self.session = ServerSession(settings, self.rng)
        self.address: tuple[str, int] | None = None
        self._connections: dict[int, _Connection] = {}
        self._closed = 0  # connections closed so far
        self._stopping = False
        self._aborted = False
        self._server: asyncio.Server | None = None
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: float | None = None  # the session deadline the timer is set for
        self._finished = asyncio.Event()  # the session has stopped and closed everything
        # Why the server gave up (its log cannot be written); ``failed`` is then set.
        self.failure: str | None = None
        self.failed = asyncio.Event()

    # -- reporting --------------------------------------------------------------

    def _say(self, line: str) -> None:
        self.out.write(line)
        self.out.flush()

    def _write_err(self, line: str) -> None:
        self.err.write(line)
        self.err.flush()

    # -- life cycle ---------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: _Connection(self), self.settings.host, self.settings.port, backlog=1024
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = (host, port)
        self.session.start(time.time())
        self._flush()
        self._say(format_diagnostic(Listening(host, port)))
        return self.address

    async def stop(self, force: asyncio.Event | None = None) -> None:
        """Stop accepting, stop reading, let pending answers go out, close everything."""
        if self._server is None or self._stopping:
            return
        self._stopping = True
        self._server.close()
        self.session.stop(time.time())
        for conn in self._connections.values():  # what clients send now stays in their sockets
            conn.paused_by_session = True
            conn.update_reading()
        self._flush()
        if not self.session.finished:
            waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._finished.wait())]
            if force is not None:
                waiters.append(asyncio.ensure_future(force.wait()))
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if not self.session.finished:
                self.session.force_stop(time.time())
                self._flush()
        await self._server.wait_closed()

    async def abort(self) -> None:
        """Stop at once, without a word (the server gave up): close everything, answer nothing."""
        if self._server is None or self._stopping:
            return
        self._stopping = self._aborted = True
        self._server.close()
        if self._timer is not None:
            self._timer.cancel()
        connections = list(self._connections.values())
        self._connections.clear()
        for conn in connections:
            conn.number = 0  # so that its callbacks say nothing more
            if conn.transport is not None:
                conn.transport.close()
        await self._server.wait_closed()

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- what the sockets report -----------------------------------------------------

    def _connection_made(self, conn: _Connection, transport: asyncio.Transport) -> None:
        if self._aborted:
            transport.close()
            return
        peer = transport.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        number = self.session.connection_made(time.time(), peer_text)
        if number is None:  # stopping
            transport.close()
            return
        conn.number = number
        self._connections[number] = conn
        self._schedule_flush()

    def _received(self, number: int, data: bytes) -> None:
        self.session.receive(number, data, time.time())
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _eof(self, number: int) -> None:
        self.session.eof(number, time.time())
        self._schedule_flush()

    def _lost(self, conn: _Connection, exc: Exception | None) -> None:
        number, conn.number = conn.number, 0
        self._connections.pop(number, None)
        # Not closed by us: reset by the client, or closed before it was half-closed.
        error = str(exc) if exc is not None else "closed"
        self.session.connection_lost(number, time.time(), error)
        self._schedule_flush()

    def _buffered(self, conn: _Connection) -> None:
        if conn.transport is not None:
            self.session.write_buffer(conn.number, conn.transport.get_write_buffer_size())

    def accept_failed(self, error: str) -> None:
        """A connection could not be accepted (out of descriptors …)."""
        if not self._aborted:
            self.session.accept_failed(time.time(), error)
            self._schedule_flush()

    # -- what the session asks for -----------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _tick(self) -> None:
        self._timer = None
        self._timer_due = None
        # Never an instant ahead of the clock, or a log could go back in time: a timer
        # the loop fires early (within its clock's resolution) ticks to no effect and
        # is set again.
        self.session.tick(time.time())
        self._flush()

    def _flush(self) -> None:
        """End of a loop iteration: log what happened, send what each connection got, act.

        The log comes first, so nothing reaches a client that the log does not hold.
        A log that cannot be written (a full disk …) makes the run meaningless: the
        server gives up (``failed``), drops this iteration's messages and keeps
        nothing more in memory.
        """
        self._flush_scheduled = False
        if self._aborted:
            return
        session = self.session
        text = session.log_text()
        if text and self.failure is None:
            try:
                self.log.write_line(text)
            except OSError as exc:
                self.failure = f"cannot write log {self.log.path}: {os_error_text(exc)}"
                self.failed.set()
        sends = session.data_to_send()
        if self.failure is None:
            connections = self._connections
            for number, data in sends:
                conn = connections.get(number)
                if conn is not None and conn.transport is not None:
                    conn.transport.write(data)
                    if conn.paused_writing:
                        self._buffered(conn)
        for action in session.actions():
            self._act(action)
        if session.finished:
            self._finished.set()
        due = session.next_deadline()
        if due != self._timer_due:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_due = due
            if due is not None:
                loop = self._loop
                self._timer = loop.call_at(loop.time() + (due - time.time()), self._tick)

    def _act(self, action: object) -> None:
        if isinstance(action, Warn):
            self._write_err(f"server: {action.text}\n")
        elif isinstance(action, CloseConnection):
            conn = self._connections.pop(action.connection, None)
            if conn is not None:
                conn.number = 0
                if conn.transport is not None:
                    conn.transport.close()
            self._closed += 1
            if self._closed % COLLECT_EVERY == 0:
                self._loop.call_soon(gc.collect)  # see COLLECT_EVERY
        elif isinstance(action, PauseReading | ResumeReading):
            conn = self._connections.get(action.connection)
            if conn is not None:
                conn.paused_by_session = isinstance(action, PauseReading)
                conn.update_reading()
        elif isinstance(action, ClientConnected | ClientDisconnected):
            self._say(format_diagnostic(action))


def _tune_gc() -> None:
    """Fewer, later garbage collections: each full one is a pause every timer waits out.

    Measured with ``pingpong bench --scenario scale`` (2000 clients): p99 answer lateness
    4.0 ms with the defaults, 1.6 ms with this. Objects alive at start-up are frozen out
    of the collector's scans. The oldest generation is then hardly ever collected on its
    own, so the server collects it itself after every :data:`COLLECT_EVERY` closed
    connections: never while the same clients stay connected, as in a run.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 1000)


#: Accept errors that mean "out of descriptors or memory": the load, not a bug.
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def _report_accept_errors(server: Server) -> None:
    """Failed accepts go to the server's throttled reports, one line each, no traceback.

    Out of descriptors, asyncio reports a failed accept up to the listen backlog times
    per loop iteration, with a traceback each: megabytes a second on stderr.
    """
    loop = asyncio.get_running_loop()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRORS:
            server.accept_failed(str(exc))
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


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
            _report_accept_errors(server)
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
