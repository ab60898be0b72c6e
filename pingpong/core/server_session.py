"""The server's behaviour, pure: requests and instants in; answers, log lines and actions out.

:class:`ServerSession` decides everything the server does; its shell (the asyncio
server, or the simulator) only moves bytes, runs one timer and writes what it is
given (see :mod:`pingpong.core.session` for the shape of the exchange). The rules:

* **Client numbers** count connections from 1 and are never reused.
* **A request** is answered on its own: the moment its line is taken up it is
  ignored with probability ``ignore`` (drawn first, ``rng.random()``) or given a
  delay drawn uniformly from ``delay_ms`` (``rng.uniform``); the answer is due that
  long after the request was taken up, which is the receive time the log shows.
  With a zero delay range nothing is drawn and the answer goes at once.
* **Response numbers** count every message the server sends, from 0, over all
  connections: a number is taken when its message is handed to the shell, so
  numbers rise in send order, and a message to a connection that is gone takes none.
* **Keepalive rounds** run on a fixed grid from :meth:`start`: round k at
  start + k·period. A round sends one ``[S] keepalive`` to every connection, each
  copy with its own number and its own log line; a round to many connections goes
  out in batches of :data:`KEEPALIVE_BATCH`, the next batch due at once, so answers
  falling due meanwhile are not held up. A round missed because the shell ran late
  is skipped, never sent in a burst, and reported.
* **Bad input**: a line that is not a request is reported and skipped, the
  connection stays open; a line over the limit stops reading that connection,
  lets the requests before it be answered, then closes it. A client that leaves
  with answers pending costs a report; those answers are dropped, unlogged.
* **The in-flight cap**: past :data:`MAX_IN_FLIGHT` requests waiting for their
  answer on one connection, the session stops taking up its lines and asks the
  shell to stop reading it (TCP then pushes back on the client); the lines already
  read wait and are taken up, in order, as answers go out. A connection whose
  unread answers pass :data:`MAX_WRITE_BUFFER` bytes (as the shell reports,
  :meth:`ServerSession.write_buffer`) is dropped.
* **Graceful stop**: :meth:`stop` stops accepting and reading; each connection is
  closed once its pending answers are out. :meth:`force_stop` closes them all now.

The log lines of one call come out together in :meth:`log_text`, and the bytes of
one connection together in :meth:`data_to_send`: a shell that collects them once
per loop iteration makes one write to the log and one send per socket.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field

from .diagnostics import ClientConnected, ClientDisconnected
from .lateness import Lateness
from .logformat import answered_line, ignored_line, unpaired_line
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
from .session import Calendar, CloseConnection, PauseReading, ResumeReading, Warn
from .settings import ServerSettings
from .throttle import Throttle

__all__ = [
    "KEEPALIVE_BATCH",
    "MAX_IN_FLIGHT",
    "MAX_WRITE_BUFFER",
    "ServerAction",
    "ServerSession",
]

#: Requests of one connection waiting for their answer before we stop reading it.
MAX_IN_FLIGHT = 1000
#: Keepalive copies sent in one go before a round lets other work run.
KEEPALIVE_BATCH = 100
#: Unread answers (bytes) a client may leave us holding before we drop it.
MAX_WRITE_BUFFER = 1 << 20

ServerAction = (
    ClientConnected | ClientDisconnected | Warn | CloseConnection | PauseReading | ResumeReading
)

_ROUND_GOES_ON = 0  # the "round number" of a timer that sends a round's next batch


#: What the shell puts before each warning on stderr: the throttle counts it too.
_PREFIX = "server: "


@dataclass(eq=False, slots=True)
class _Connection:
    number: int
    splitter: LineSplitter = field(default_factory=LineSplitter)
    in_flight: int = 0  # requests waiting for their answer
    held: deque[bytes] = field(default_factory=deque)  # lines read past the cap
    closing: str | None = None  # close, for this reason, once nothing is in flight
    buffered: int = 0  # bytes sent and not yet taken by the client, as the shell reports
    out: list[bytes] = field(default_factory=list)  # bytes not yet handed to the shell
    open: bool = True


class ServerSession:
    """All connections of one server, and its keepalive grid."""

    def __init__(
        self,
        settings: ServerSettings,
        rng: random.Random,
        *,
        calendar: Calendar | None = None,
    ) -> None:
        self.settings = settings
        self.rng = rng
        self.calendar = calendar or Calendar()
        self.clients = 0  # client numbers handed out so far
        self.responses = 0  # response numbers handed out so far
        self.stopping = False
        # How late answers and keepalive rounds went out, against their exact instants.
        self.answer_lateness = Lateness()
        self.keepalive_lateness = Lateness()
        self._connections: dict[int, _Connection] = {}
        # Timers, earliest first: (due, tie-break, connection, request, received stamp).
        # A keepalive timer has no connection; its "request" is the round number.
        self._timers: list[tuple[float, int, _Connection | None, int, str]] = []
        self._sequence = 0
        self._start = 0.0
        self._round: list[_Connection] = []  # the connections of the current round
        self._round_sent = 0  # how many of them have had their batch
        self._round_number = 0
        self._log: list[str] = []
        self._unsent: list[_Connection] = []
        self._actions: list[ServerAction] = []
        self._finished = False
        self._now = 0.0  # the latest instant reported: the clock of ``reports``
        #: Reports about clients: paid for by the bytes they send (see pingpong.core.throttle).
        self.reports = Throttle(self._report, prefix=_PREFIX, clock=self._clock)

    # -- what the shell collects ---------------------------------------------------

    def data_to_send(self) -> list[tuple[int, bytes]]:
        """Each connection's bytes since the last call, in one piece per connection."""
        if not self._unsent:
            return []
        sends = [(conn.number, b"".join(conn.out)) for conn in self._unsent if conn.out]
        for conn in self._unsent:
            conn.out.clear()
        self._unsent.clear()
        return sends

    def log_text(self) -> str:
        """The log lines since the last call, whole, to be written in one go."""
        if not self._log:
            return ""
        text = "".join(self._log)
        self._log.clear()
        return text

    def actions(self) -> tuple[ServerAction, ...]:
        """What to do besides sending and logging, in order, since the last call.

        Take :meth:`data_to_send` first: a :class:`CloseConnection` comes after the
        bytes already handed out for that connection.
        """
        if not self._actions:
            return ()
        actions = tuple(self._actions)
        self._actions.clear()
        return actions

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do next, or ``None``."""
        return self._timers[0][0] if self._timers else None

    @property
    def connections(self) -> int:
        return len(self._connections)

    @property
    def in_flight(self) -> int:
        return sum(conn.in_flight for conn in self._connections.values())

    @property
    def finished(self) -> bool:
        """Stopped, and every connection closed."""
        return self._finished

    # -- what the shell reports ----------------------------------------------------

    def start(self, now: float) -> None:
        """The server is listening: the keepalive grid starts now."""
        self._start = self._now = now
        self.reports = Throttle(
            self._report, prefix=_PREFIX, clock=self._clock
        )  # its first second starts now
        self._push(now + self.settings.keepalive_s, None, 1, "")

    def connection_made(self, now: float, peer: str) -> int | None:
        """A client connected; its client number, or ``None`` (stopping: close it)."""
        if self.stopping:
            return None
        self.clients += 1
        self._connections[self.clients] = _Connection(self.clients)
        self._actions.append(ClientConnected(self.clients, peer))
        return self.clients

    def receive(self, connection: int, data: bytes, now: float) -> None:
        """Bytes arrived on a connection."""
        conn = self._connections.get(connection)
        if conn is None or conn.closing is not None or self.stopping:
            return  # no longer reading it
        self._now = now
        self.reports.received(len(data))
        received = self.calendar.stamp(now)
        too_long: LineTooLong | None = None
        try:
            lines = conn.splitter.feed(data)
        except LineTooLong as exc:
            lines, too_long = exc.lines, exc
        if conn.held:
            conn.held.extend(lines)
        else:
            for index, line in enumerate(lines):
                if conn.in_flight >= MAX_IN_FLIGHT:
                    conn.held.extend(lines[index:])
                    self._actions.append(PauseReading(conn.number))
                    break
                self._take_up(conn, line, now, received)
        if too_long is not None:
            self.reports.report(f"client {conn.number}: {too_long}; closing the connection")
            self._close_when_idle(conn, "line too long")

    def eof(self, connection: int, now: float) -> None:
        """The client closed its side. Ignored while not reading (closing or stopping)."""
        conn = self._connections.get(connection)
        if conn is None or conn.closing is not None or self.stopping:
            return
        self._now = now
        if conn.splitter.pending:
            self.reports.report(f"client {conn.number}: unfinished line at close dropped")
        self._close(conn, "disconnected")

    def connection_lost(self, connection: int, now: float, error: str) -> None:
        """The connection failed (reset, broken pipe): nothing more can go out on it."""
        conn = self._connections.get(connection)
        if conn is not None:
            self._now = now
            conn.out.clear()
            self._close(conn, f"connection error: {error}")

    def accept_failed(self, now: float, error: str) -> None:
        """A connection could not be accepted (out of descriptors …): a throttled report."""
        self._now = now
        self.reports.report(f"cannot accept a connection: {error}")

    def write_buffer(self, connection: int, size: int) -> None:
        """How many bytes sent on a connection its client has not yet taken."""
        conn = self._connections.get(connection)
        if conn is not None:
            conn.buffered = size

    def tick(self, now: float) -> None:
        """Send every answer, and the keepalive round, whose time has come.

        What falls due during the call (the next batch of a round) waits for the next
        one, so a shell that ticks once per loop iteration lets other work in between.
        """
        self._now = now
        timers = self._timers
        last = self._sequence
        while timers and timers[0][0] <= now and timers[0][1] <= last:
            due, _, conn, request, received = heapq.heappop(timers)
            if conn is None:
                self._keepalive(now, due, request)
                continue
            if not conn.open:
                continue  # its answers were dropped with it
            self.answer_lateness.add(now - due)
            conn.in_flight -= 1
            self._respond(conn, request, received, now)
            if conn.open and conn.held and conn.in_flight < MAX_IN_FLIGHT:
                self._take_up_held(conn, now)
            if conn.open and conn.closing is not None and not conn.in_flight and not conn.held:
                self._close(conn, conn.closing)

    def stop(self, now: float) -> None:
        """Stop accepting and reading; close each connection once its answers are out."""
        if self.stopping:
            return
        self._now = now
        self.stopping = True
        self._timers = [t for t in self._timers if t[2] is not None]
        heapq.heapify(self._timers)
        self._round = []
        self._warn(
            f"stopping: {len(self._connections)} connections, "
            f"{self.in_flight} answers still to send"
        )
        for conn in list(self._connections.values()):
            conn.held.clear()  # read, but never taken up: as if still in the socket
            self._close_when_idle(conn, "server stopping")
        self._finish_if_done()

    def force_stop(self, now: float) -> None:
        """Close every connection now, pending answers dropped."""
        self.stop(now)
        self._now = now
        for conn in list(self._connections.values()):
            self._close(conn, "stopped by force")

    # -- requests and answers --------------------------------------------------------

    def _take_up(self, conn: _Connection, line: bytes, now: float, received: str) -> None:
        try:
            request = parse_request(line)
        except ProtocolError as exc:
            self.reports.report(f"client {conn.number}: {exc}; not answered")
            return
        if self.rng.random() < self.settings.ignore:
            self._log.append(ignored_line(received, request))
            return
        low, high = self.settings.delay_ms.low, self.settings.delay_ms.high
        if high == 0:  # a plain responder (benchmarks): no delay, so no timer either
            self._respond(conn, request.request, received, now)
            return
        delay_ms = self.rng.uniform(low, high)
        self._push(now + delay_ms / 1000, conn, request.request, received)
        conn.in_flight += 1

    def _take_up_held(self, conn: _Connection, now: float) -> None:
        received = self.calendar.stamp(now)  # taken up now: as if read from the socket now
        while conn.held and conn.in_flight < MAX_IN_FLIGHT:
            self._take_up(conn, conn.held.popleft(), now, received)
        if not conn.held and conn.closing is None:
            self._actions.append(ResumeReading(conn.number))

    def _respond(self, conn: _Connection, request: int, received: str, now: float) -> None:
        pong = Pong(self.responses, request, conn.number)
        if self._send(conn, pong):
            self._log.append(answered_line(received, Ping(request), self.calendar.stamp(now), pong))

    def _send(self, conn: _Connection, message: Pong | Keepalive) -> bool:
        """Hand a message to the shell with the next response number; ``False`` if we cannot."""
        if not conn.open:
            return False
        if conn.buffered > MAX_WRITE_BUFFER:
            self._close(conn, "not reading its answers")
            return False
        if not conn.out:
            self._unsent.append(conn)
        conn.out.append(encode(message))
        self.responses += 1
        return True

    # -- keepalive -------------------------------------------------------------------

    def _keepalive(self, now: float, due: float, round_number: int) -> None:
        if round_number != _ROUND_GOES_ON:
            if self._connections:
                self.keepalive_lateness.add(now - due)
            self._round = list(self._connections.values())
            self._round_sent = 0
            self._round_number = round_number
        first = self._round_sent
        self._round_sent = first + KEEPALIVE_BATCH
        sent = self.calendar.stamp(now)
        for conn in self._round[first : self._round_sent]:
            keepalive = Keepalive(self.responses)
            if self._send(conn, keepalive):
                self._log.append(unpaired_line(sent, keepalive))
        if self._round_sent < len(self._round):
            # A round to thousands of clients takes tens of milliseconds: the answers
            # that fall due meanwhile go out between its batches.
            self._push(now, None, _ROUND_GOES_ON, "")
            return
        self._round = []
        period = self.settings.keepalive_s
        done = self._round_number
        upcoming = int((now - self._start) / period) + 1  # the next round not yet past
        if upcoming > done + 1:
            self._warn(f"loop stalled: {upcoming - done - 1} keepalive rounds skipped")
        following = max(done + 1, upcoming)
        self._push(self._start + following * period, None, following, "")

    # -- connections -----------------------------------------------------------------

    def _close_when_idle(self, conn: _Connection, reason: str) -> None:
        conn.closing = reason
        if not conn.in_flight and not conn.held:
            self._close(conn, reason)

    def _close(self, conn: _Connection, reason: str) -> None:
        if self._connections.pop(conn.number, None) is None:
            return
        conn.open = False
        if conn.in_flight:
            self.reports.report(f"client {conn.number}: {conn.in_flight} pending answers dropped")
            conn.in_flight = 0
        conn.held.clear()
        self._actions.append(CloseConnection(conn.number))
        self._actions.append(ClientDisconnected(conn.number))
        if reason != "disconnected":
            self.reports.report(f"client {conn.number}: closed ({reason})")
        self._finish_if_done()

    def _finish_if_done(self) -> None:
        if self.stopping and not self._connections and not self._finished:
            self._finished = True
            self.reports.close()
            self._warn(f"stopped after {self.responses} responses to {self.clients} clients")
            self._warn(f"answer lateness {self.answer_lateness.describe()}")
            self._warn(f"keepalive lateness {self.keepalive_lateness.describe()}")

    def _warn(self, text: str) -> None:
        self._actions.append(Warn(text))

    def _report(self, line: str) -> None:
        self._actions.append(Warn(line[len(_PREFIX) : -1]))  # the shell adds the prefix back

    def _clock(self) -> float:
        return self._now

    def _push(self, due: float, conn: _Connection | None, request: int, received: str) -> None:
        self._sequence += 1
        heapq.heappush(self._timers, (due, self._sequence, conn, request, received))
