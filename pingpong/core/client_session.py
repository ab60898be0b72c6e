"""The client's behaviour, pure: answers and instants in; requests, log lines and actions out.

:class:`ClientSession` decides everything a client does; its shell (the asyncio
client, or the simulator) opens and closes the connection when asked, moves bytes
and runs one timer (see :mod:`pingpong.core.session`). The rules:

* **Requests** are numbered from 0 and sent on the session's own schedule: the
  first as soon as a connection is up, each next one an interval after the
  previous one was *due* (drawn uniformly from ``interval_ms``, start to start), so
  lateness never accumulates, and never waiting for answers: several requests may
  be in flight. If no connection is up when a request falls due, the schedule
  waits and starts again with the next connection.
* **Pairing**: each PONG is matched to its pending request by request number. A
  PONG whose request already timed out, or that answers nothing pending, and every
  keepalive, are logged with empty request fields and never paired.
* **Timeouts**: a request not answered within ``timeout_ms`` of being sent ends as
  ``(таймаут)`` then. Exactly one outcome line per request, whatever happens.
* **Connections**: the session asks for one at :meth:`start`. If it cannot be made
  it asks again after a backoff that doubles from 50 ms to 1 s; if it drops, at
  once. Requests pending on a lost connection keep their timeouts: their answers
  can no longer come. A line that is not a response is reported and skipped; a
  line over the limit drops the connection.
* **Graceful stop**: :meth:`stop` stops sending and asking for connections; once
  every request in flight is answered or timed out the session disconnects and is
  :attr:`finished`. :meth:`force_stop` times out what is still in flight, now.
* **Lateness**: how late the send timer and the timeout timers fired (the instant
  handled minus the instant due) is measured and reported at the stop, for the
  checker to allow on the interval and timeout rules.
"""

from __future__ import annotations

import random
from collections import deque

from .lateness import Lateness
from .logformat import answered_line, timed_out_line, unpaired_line
from .protocol import (
    LineSplitter,
    LineTooLong,
    Ping,
    Pong,
    ProtocolError,
    encode,
    parse_response,
)
from .session import Calendar, Connect, Disconnect, Warn
from .settings import ClientSettings
from .throttle import Throttle

__all__ = ["BACKOFF_FIRST", "BACKOFF_MAX", "ClientAction", "ClientSession"]

#: The first wait before trying again to connect, and the most it doubles to (seconds).
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 1.0

ClientAction = Warn | Connect | Disconnect

_NEVER = float("inf")


#: What the shell puts before each warning on stderr: the throttle counts it too.
_PREFIX = "client: "


class ClientSession:
    """One client's requests, timeouts and connection, from start to a clean stop."""

    def __init__(
        self,
        settings: ClientSettings,
        rng: random.Random,
        *,
        calendar: Calendar | None = None,
    ) -> None:
        self.settings = settings
        self.rng = rng
        self.calendar = calendar or Calendar()
        self.where = f"{settings.host}:{settings.port}"
        self.sent = 0  # requests sent so far; the next request's number
        self.connected = False
        self.stopping = False
        self.finished = False
        self._timeout = settings.timeout_ms / 1000
        self._pending: dict[int, str] = {}  # request number -> the stamp of when it was sent
        # Deadlines of the pending requests in send order, which is deadline order (one
        # timeout for all); an answered request's entry is skipped when it comes up.
        self._deadlines: deque[tuple[float, int]] = deque()
        self._next_send = _NEVER  # when the next request is due, if connected by then
        self._waiting = True  # the schedule waits for a connection
        self._connect_at = _NEVER  # when to ask for a connection again
        self._connecting = False  # asked for one, no answer yet
        self._backoff = BACKOFF_FIRST
        self._splitter = LineSplitter()
        self._out: list[bytes] = []
        self._log: list[str] = []
        self._actions: list[ClientAction] = []
        self._now = 0.0  # the latest instant reported: the clock of ``reports``
        self.send_lateness = Lateness()
        self.timeout_lateness = Lateness()
        #: Reports about the server's bad lines: paid for by the bytes it sends.
        self.reports = Throttle(self._report, prefix=_PREFIX, clock=self._clock)

    # -- what the shell collects ---------------------------------------------------

    def data_to_send(self) -> bytes:
        """The bytes to send since the last call, in one piece."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def log_text(self) -> str:
        """The log lines since the last call, whole, to be written in one go."""
        if not self._log:
            return ""
        text = "".join(self._log)
        self._log.clear()
        return text

    def actions(self) -> tuple[ClientAction, ...]:
        """What to do besides sending and logging, in order, since the last call.

        Take :meth:`data_to_send` first: a :class:`Disconnect` comes after it.
        """
        if not self._actions:
            return ()
        actions = tuple(self._actions)
        self._actions.clear()
        return actions

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do next, or ``None``."""
        deadlines, pending = self._deadlines, self._pending
        while deadlines and deadlines[0][1] not in pending:
            deadlines.popleft()  # answered
        first = min(self._next_send, self._connect_at)
        if deadlines and deadlines[0][0] < first:
            first = deadlines[0][0]
        return None if first == _NEVER else first

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    # -- what the shell reports ----------------------------------------------------

    def start(self, now: float) -> None:
        """Begin: ask for a connection."""
        self._now = now
        self.reports = Throttle(
            self._report, prefix=_PREFIX, clock=self._clock
        )  # its first second starts now
        self._ask_to_connect()

    def connection_made(self, now: float) -> None:
        """The connection asked for is up."""
        self._connecting = False
        self._backoff = BACKOFF_FIRST
        self._warn(f"connected to {self.where}")
        if self.finished:
            self._actions.append(Disconnect())
            return
        self.connected = True
        self._splitter = LineSplitter()
        if self._waiting and not self.stopping:
            self._waiting = False
            self._next_send = now
            self.tick(now)

    def connection_failed(self, now: float, error: str) -> None:
        """The connection asked for could not be made."""
        self._connecting = False
        if self.stopping:
            return
        self._warn(f"cannot connect to {self.where} ({error}); retrying in {self._backoff:.2f} s")
        self._connect_at = now + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    def receive(self, data: bytes, now: float) -> None:
        """Bytes arrived from the server."""
        if not self.connected:
            return
        self._now = now
        self.reports.received(len(data))
        received = self.calendar.stamp(now)
        too_long: LineTooLong | None = None
        try:
            lines = self._splitter.feed(data)
        except LineTooLong as exc:
            lines, too_long = exc.lines, exc
        for line in lines:
            try:
                response = parse_response(line)
            except ProtocolError as exc:
                self.reports.report(f"{exc}; skipped")
                continue
            sent = None
            if isinstance(response, Pong):
                sent = self._pending.pop(response.request, None)
            if sent is None:
                self._log.append(unpaired_line(received, response))
                continue
            assert isinstance(response, Pong)
            self._log.append(answered_line(sent, Ping(response.request), received, response))
        if too_long is not None:
            self._actions.append(Disconnect())
            self._lost(now, str(too_long))
        else:
            self._finish_if_done()

    def eof(self, now: float) -> None:
        """The server closed the connection."""
        if self.connected:
            self._lost(now, "closed by the server")

    def connection_lost(self, now: float, error: str) -> None:
        """The connection failed (reset, broken pipe)."""
        if self.connected:
            self._lost(now, f"connection error: {error}")

    def tick(self, now: float) -> None:
        """Time out, send and reconnect, whatever has come due."""
        # Only timeouts are logged, in deadline order; a request sent now is due later.
        deadlines, pending = self._deadlines, self._pending
        while deadlines and deadlines[0][0] <= now:
            due, number = deadlines.popleft()
            if number in pending:
                self.timeout_lateness.add(now - due)
                self._time_out(number, now)
        while self._next_send <= now:
            self._send_due(now)
        if self._connect_at <= now:
            self._connect_at = _NEVER
            self._ask_to_connect()
        self._finish_if_done()

    def stop(self, now: float, reason: str) -> None:
        """Stop sending; disconnect once every request in flight has its outcome."""
        if self.stopping:
            return
        self._warn(f"stopping ({reason}): {len(self._pending)} requests in flight")
        self.stopping = True
        self._next_send = self._connect_at = _NEVER
        self._waiting = False
        self._finish_if_done()

    def force_stop(self, now: float) -> None:
        """Time out every request still in flight now, and disconnect."""
        self.stop(now, "forced")
        for number in sorted(self._pending):
            self._time_out(number, now)
        self._finish_if_done()

    # -- inside --------------------------------------------------------------------

    def _send_due(self, now: float) -> None:
        if not self.connected:
            self._next_send = _NEVER
            self._waiting = True  # starts again with the next connection
            return
        number = self.sent
        self.send_lateness.add(now - self._next_send)
        self._out.append(encode(Ping(number)))
        self._pending[number] = self.calendar.stamp(now)
        self._deadlines.append((now + self._timeout, number))
        self.sent += 1
        low, high = self.settings.interval_ms.low, self.settings.interval_ms.high
        self._next_send += self.rng.uniform(low, high) / 1000

    def _time_out(self, number: int, now: float) -> None:
        sent = self._pending.pop(number)
        self._log.append(timed_out_line(sent, Ping(number), self.calendar.stamp(now)))

    def _lost(self, now: float, reason: str) -> None:
        self.connected = False
        self._out.clear()
        self._warn(f"connection lost ({reason})" + ("" if self.stopping else "; reconnecting"))
        if not self.stopping:
            self._ask_to_connect()
        self._finish_if_done()

    def _ask_to_connect(self) -> None:
        if not self._connecting and not self.stopping:
            self._connecting = True
            self._actions.append(Connect())

    def _finish_if_done(self) -> None:
        if self.stopping and not self._pending and not self.finished:
            self.finished = True
            if self.connected:
                self.connected = False
                self._actions.append(Disconnect())
            self.reports.close()
            self._warn(f"stopped after {self.sent} requests")
            self._warn(f"send lateness {self.send_lateness.describe()}")
            self._warn(f"timeout lateness {self.timeout_lateness.describe()}")

    def _warn(self, text: str) -> None:
        self._actions.append(Warn(text))

    def _report(self, line: str) -> None:
        self._actions.append(Warn(line[len(_PREFIX) : -1]))  # the shell adds the prefix back

    def _clock(self) -> float:
        return self._now
