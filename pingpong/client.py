"""The TCP client: sends requests at random intervals, pairs answers, times out the rest.

A thin shell over :mod:`pingpong.protocol` and :mod:`pingpong.logformat`:

* The sender works on its own schedule (start-to-start intervals drawn uniformly,
  measured from when each request was *due*, so lateness never accumulates) and
  never waits for answers: several requests may be in flight.
* One reader matches each PONG to its pending request by request number. A PONG
  for a request that already timed out, or that answers nothing pending, and every
  keepalive are logged with empty request fields (SPEC §4).
* Each request has its own timeout timer; when it fires the request ends as
  ``(таймаут)``. Exactly one outcome line per request, whatever happens.
* If the connection cannot be made or drops, the client retries with a growing
  backoff until the run ends; requests pending on the lost connection end as
  timeouts at their deadlines (their answers can no longer come).
* Graceful stop: stop sending, wait for every request in flight to be answered or
  timed out, log it, then disconnect.
* A log that cannot be written (a full disk …) is fatal, not a lost connection: the
  client stops at once and exits with status 1 after one line on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from .lifecycle import Stop, fatal, os_error_text
from .logfile import LogWriter
from .logformat import Answered, ClientRecord, TimedOut, Unpaired
from .protocol import (
    LineSplitter,
    LineTooLong,
    Ping,
    Pong,
    ProtocolError,
    Response,
    encode,
    parse_response,
)
from .settings import ClientSettings

__all__ = ["Client", "run_client"]

_READ_SIZE = 1 << 16
_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 1.0


@dataclass(slots=True)
class _Pending:
    sent: datetime
    timer: asyncio.TimerHandle


class Client:
    """One client: ``await run(stop)`` connects, sends, and returns once stopped cleanly."""

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
        self.sent = 0  # requests sent so far; the next request's number
        self._pending: dict[int, _Pending] = {}
        self._idle = asyncio.Event()  # set: nothing in flight
        self._idle.set()
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._stopping = False  # once set, a lost connection is not made again
        # Why the client gave up (its log cannot be written); ``_failed`` is then set.
        self.failure: str | None = None
        self._failed = asyncio.Event()

    def _warn(self, message: str) -> None:
        # stderr may be on the disk that is full: a warning lost must not stop the client
        with contextlib.suppress(OSError):
            self.err.write(f"client: {message}\n")
            self.err.flush()

    async def run(self, stop: Stop) -> None:
        connection = asyncio.create_task(self._keep_connected())
        sender = asyncio.create_task(self._send_requests())
        try:
            if not await self._until_stop_or_failure(stop.requested):
                return
            self._warn(f"stopping ({stop.reason}): {len(self._pending)} requests in flight")
            self._stopping = True
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            # Each pending request ends by its answer or by its own timer.
            done = asyncio.ensure_future(self._idle.wait())
            forced = asyncio.ensure_future(stop.force.wait())
            await asyncio.wait([done, forced], return_when=asyncio.FIRST_COMPLETED)
            done.cancel()
            forced.cancel()
            self._time_out_all()  # only does anything when forced
        finally:
            sender.cancel()
            connection.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connection
            if self.failure is None:
                self._warn(f"stopped after {self.sent} requests")
            else:  # the outcomes of the requests in flight can no longer be logged
                for pending in self._pending.values():
                    pending.timer.cancel()
                self._pending.clear()
                self._idle.set()

    async def _until_stop_or_failure(self, requested: asyncio.Event) -> bool:
        """Wait for the stop request (``True``) or for the log to fail (``False``)."""
        waiters = [
            asyncio.ensure_future(requested.wait()),
            asyncio.ensure_future(self._failed.wait()),
        ]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        return self.failure is None

    def _log(self, record: ClientRecord) -> None:
        if self.failure is not None:
            return
        try:
            self.log.write(record)
        except OSError as exc:
            self.failure = f"cannot write log {self.log.path}: {os_error_text(exc)}"
            self._failed.set()

    # -- sending ---------------------------------------------------------------------

    async def _send_requests(self) -> None:
        loop = asyncio.get_running_loop()
        low, high = self.settings.interval_ms.low, self.settings.interval_ms.high
        await self._connected.wait()
        due = loop.time()
        while True:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writer = self._writer
            if writer is None or writer.is_closing():
                await self._connected.wait()
                due = loop.time()  # the schedule restarts with the new connection
                continue
            self._send(writer, Ping(self.sent))
            due += self.rng.uniform(low, high) / 1000

    def _send(self, writer: asyncio.StreamWriter, request: Ping) -> None:
        loop = asyncio.get_running_loop()
        sent = datetime.now()
        writer.write(encode(request))
        timer = loop.call_later(self.settings.timeout_ms / 1000, self._time_out, request.request)
        self._pending[request.request] = _Pending(sent, timer)
        self._idle.clear()
        self.sent += 1

    def _time_out(self, number: int) -> None:
        pending = self._pending.pop(number)
        if not self._pending:
            self._idle.set()
        self._log(TimedOut(pending.sent, Ping(number), datetime.now()))

    def _time_out_all(self) -> None:
        for number in sorted(self._pending):
            self._pending[number].timer.cancel()
            self._time_out(number)

    # -- receiving -------------------------------------------------------------------

    async def _keep_connected(self) -> None:
        backoff = _BACKOFF_FIRST
        where = f"{self.settings.host}:{self.settings.port}"
        while not self._stopping:
            try:
                reader, writer = await asyncio.open_connection(
                    self.settings.host, self.settings.port, limit=_READ_SIZE
                )
            except OSError as exc:
                self._warn(f"cannot connect to {where} ({exc}); retrying in {backoff:.2f} s")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_FIRST
            self._warn(f"connected to {where}")
            self._writer = writer
            self._connected.set()
            try:
                reason = await self._read(reader)
            except OSError as exc:
                reason = f"connection error: {exc}"
            finally:
                self._connected.clear()
                self._writer = None
                writer.close()
            self._warn(f"connection lost ({reason})" + ("" if self._stopping else "; reconnecting"))

    async def _read(self, reader: asyncio.StreamReader) -> str:
        splitter = LineSplitter()
        while True:
            data = await reader.read(_READ_SIZE)
            if not data:
                return "closed by the server"
            received = datetime.now()
            too_long: LineTooLong | None = None
            try:
                lines = splitter.feed(data)
            except LineTooLong as exc:
                lines, too_long = exc.lines, exc
            for line in lines:
                try:
                    response = parse_response(line)
                except ProtocolError as exc:
                    self._warn(f"{exc}; skipped")
                    continue
                self._on_response(response, received)
            if too_long is not None:
                return str(too_long)

    def _on_response(self, response: Response, received: datetime) -> None:
        pending = None
        if isinstance(response, Pong):
            pending = self._pending.pop(response.request, None)
        if pending is None:
            self._log(Unpaired(received, response))
            return
        pending.timer.cancel()
        assert isinstance(response, Pong)
        if not self._pending:
            self._idle.set()
        self._log(Answered(pending.sent, Ping(response.request), received, response))


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
