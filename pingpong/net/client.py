"""The TCP client: the asyncio shell of :class:`~pingpong.core.client_session.ClientSession`.

The session decides everything (the request schedule, pairing, timeouts, reconnects
with backoff, bad input, graceful stop); this shell moves bytes and time between it
and the socket:

* The socket is an :class:`asyncio.Protocol` that hands what it reads to the session
  with the current time (``time.time()``), so the logged arrival time is the real one.
* What one loop iteration produces goes out at its end (:meth:`Client._flush`): one
  ``write`` of whole lines to the log, then one ``send``, then the session's actions
  (connect, disconnect, lines for stderr).
* The session has one deadline (the next request, timeout or reconnect); the shell
  keeps one ``loop.call_at`` on it, which ticks the session and flushes.
* A log that cannot be written (a full disk …) is fatal, not a lost connection: the
  client stops at once and exits with status 1 after one line on stderr.
* What the server's bad lines make it report goes through the session's
  :class:`~pingpong.core.throttle.Throttle`: never more on stderr than the server sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from typing import TextIO

from ..core.client_session import ClientSession
from ..core.session import Connect, Disconnect, Warn
from ..core.settings import ClientSettings
from .lifecycle import Stop, fatal, os_error_text
from .logfile import LogWriter

__all__ = ["Client", "run_client"]


class _Connection(asyncio.Protocol):
    """The socket to the server: what it reads goes to the session, at once."""

    __slots__ = ("attached", "client", "transport")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.attached = False  # the session's connection (not yet, or no longer)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.client._made(self)

    def data_received(self, data: bytes) -> None:
        if self.attached:
            self.client._received(data)

    def eof_received(self) -> bool:
        if self.attached:
            self.client._gone(self, None)
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self.attached:
            self.client._gone(self, exc)


class Client:
    """One client: ``await run(stop)`` connects, sends, and returns once stopped cleanly."""

    _loop: asyncio.AbstractEventLoop  # the loop it runs in

    def __init__(
        self,
        settings: ClientSettings,
        log: LogWriter,
        *,
        rng: random.Random | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self.log = log
        self.rng = rng if rng is not None else random.Random(settings.seed)
        self.err = err if err is not None else sys.stderr
        self.session = ClientSession(settings, self.rng)
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: float | None = None  # the session deadline the timer is set for
        self._done = asyncio.Event()  # the session finished, or the log failed
        # Why the client gave up (its log cannot be written); ``_done`` is then set.
        self.failure: str | None = None

    @property
    def sent(self) -> int:
        """Requests sent so far; the next request's number."""
        return self.session.sent

    def _write_err(self, line: str) -> None:
        # stderr may be on the disk that is full: a warning lost must not stop the client
        with contextlib.suppress(OSError):
            self.err.write(line)
            self.err.flush()

    async def run(self, stop: Stop) -> None:
        self._loop = asyncio.get_running_loop()
        session = self.session
        try:
            session.start(time.time())
            self._flush()
            if not await self._first(stop.requested):
                return
            session.stop(time.time(), str(stop.reason))
            self._flush()
            # Each pending request ends by its answer or by its own deadline.
            if not await self._first(stop.force):
                return
            session.force_stop(time.time())
            self._flush()
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._connecting is not None:
                self._connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._connecting
            self._disconnect()
            if self.failure is not None:  # what is still held back is said all the same
                session.reports.close()
                for action in session.actions():
                    if isinstance(action, Warn):
                        self._write_err(f"client: {action.text}\n")

    async def _first(self, event: asyncio.Event) -> bool:
        """Wait for ``event`` (``True``) or for the session to be done (``False``)."""
        if self._done.is_set():
            return False
        waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self._done.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        return not self._done.is_set()

    # -- the connection --------------------------------------------------------------

    async def _connect(self) -> None:
        settings = self.settings
        try:
            await self._loop.create_connection(
                lambda: _Connection(self), settings.host, settings.port
            )
        except OSError as exc:
            self.session.connection_failed(time.time(), str(exc))
            self._flush()
        finally:
            self._connecting = None

    def _made(self, connection: _Connection) -> None:
        if self._done.is_set():
            assert connection.transport is not None
            connection.transport.close()
            return
        connection.attached = True
        self._connection = connection
        self.session.connection_made(time.time())
        self._schedule_flush()

    def _received(self, data: bytes) -> None:
        self.session.receive(data, time.time())
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _gone(self, connection: _Connection, exc: Exception | None) -> None:
        now = time.time()
        self._disconnect()
        if exc is None:
            self.session.eof(now)
        else:
            self.session.connection_lost(now, str(exc))
        self._schedule_flush()

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.attached = False
            if connection.transport is not None:
                connection.transport.close()

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
        """Log what happened, send what is due, act; set the timer on the next deadline.

        The log comes first, so no request leaves that the log might not account for.
        """
        self._flush_scheduled = False
        session = self.session
        text = session.log_text()
        if text and self.failure is None:
            try:
                self.log.write_line(text)
            except OSError as exc:
                self.failure = f"cannot write log {self.log.path}: {os_error_text(exc)}"
                self._done.set()
        data = session.data_to_send()
        if self.failure is not None:
            return  # the outcomes can no longer be logged: run() ends at once
        connection = self._connection
        if data and connection is not None and connection.transport is not None:
            connection.transport.write(data)
        for action in session.actions():
            if isinstance(action, Warn):
                self._write_err(f"client: {action.text}\n")
            elif isinstance(action, Connect):
                self._connecting = self._loop.create_task(self._connect())
            elif isinstance(action, Disconnect):
                self._disconnect()
        if session.finished:
            self._done.set()
        due = session.next_deadline()
        if due != self._timer_due:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_due = due
            if due is not None:
                loop = self._loop
                self._timer = loop.call_at(loop.time() + (due - time.time()), self._tick)


async def run_client(settings: ClientSettings) -> int:
    """Run a client until its duration ends or it is told to stop; the exit status.

    1, after one line on stderr, when it cannot write its log.
    """
    stop = Stop()
    stop.install(settings.duration)
    try:
        try:
            log = LogWriter(settings.log_file)
        except OSError as exc:
            return fatal("client", f"cannot open log {settings.log_file}: {os_error_text(exc)}")
        with log:
            client = Client(settings, log)
            await client.run(stop)
            if client.failure is not None:
                return fatal("client", client.failure)
    finally:
        stop.uninstall()
    return 0
