"""The server and clients' sessions in virtual time, over an in-memory network — no sockets.

:class:`Simulation` runs one :class:`~pingpong.server_session.ServerSession` and N
:class:`~pingpong.client_session.ClientSession` objects, the very ones the real
processes are built on, against a virtual clock: a heap of events, each run at its
instant, nothing ever waiting for real time. It plays the part the asyncio shells
play for real: it carries bytes, runs each session's one timer, and writes what the
sessions hand out to the logs. Its rules:

* **The network** delivers each send after a one-way ``latency_ms`` plus a uniform
  ``jitter_ms``, in order per direction of a connection (TCP), and the bytes of one
  send in one piece. Opening a connection takes one latency to the server (which
  numbers the client) and one back to the client, with no jitter.
* **The run** starts the server at the start instant, then client 1, and each next
  client once the server has taken the previous one's first connection, as
  ``pingpong run`` does: so ``clientK.log`` is client number K. At the end of the
  duration the clients are told to stop (as the runner does); once the last one has
  finished, the server is. The run ends when nothing is left to happen.
* **Faults** (:mod:`pingpong.simfaults`) happen at their instants. Whatever cannot
  reach the other side because of one (data lost in a cut, a connection closed or
  no longer read by one side, a client not reading) is recorded as an **outage** of
  that client: from when bytes could first be lost or held up to when its next
  connection was up (or never), with the server's number for the connection lost
  and when the server was done with it. The checker reads the outages from
  ``run.json`` and accepts the timeouts, undelivered answers and restarted
  schedules they explain; nothing else (see :mod:`pingpong.rules`).
* **Randomness** comes from the seed alone: the server's draws from ``seed``,
  client K's from ``seed + K`` (as in a real run), the network's from its own
  stream. The same seed, settings and faults give the same bytes.

Log text goes to the files through :class:`LogFiles`, which holds at most 32 MiB of
text in all and writes whole lines, so a run of any length runs in bounded memory.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .client_session import ClientSession
from .diagnostics import ClientConnected, ClientDisconnected, Listening, format_diagnostic
from .protocol import MAX_LINE
from .server_session import ServerSession
from .session import (
    Calendar,
    CloseConnection,
    Connect,
    Disconnect,
    PauseReading,
    ResumeReading,
    Warn,
)
from .settings import MAX_MS, RunSettings, SettingsError
from .simfaults import Cut, Fault, Inject, ServerStop, Stall

__all__ = [
    "SIMULATED_PORT",
    "LogFiles",
    "Network",
    "Simulation",
]

#: The port the simulated server "listens on", for the diagnostic lines only.
SIMULATED_PORT = 8888
#: What the runner's stop request says, and so what the simulated clients say.
_STOP_REASON = "supervisor closed stdin"
_NEVER = math.inf


@dataclass(frozen=True, slots=True)
class Network:
    """One-way latency and jitter of every connection, in milliseconds."""

    latency_ms: float = 0.05
    jitter_ms: float = 0.02

    def __post_init__(self) -> None:
        for name in ("latency_ms", "jitter_ms"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_MS:  # NaN fails too
                raise SettingsError(name, f"must be between 0 and {MAX_MS}, got {value:g}")


@dataclass(slots=True)
class _Outage:
    """A stretch of one client's time when bytes it was owed could be lost or held up."""

    start: float
    end: float | None  # its next connection was up; None: never
    kind: str  # "lost": cut, closed or no longer read; "stalled": the client did not read
    connection: int | None = None  # the server's number of the connection lost
    closed: float | None = None  # when the server was done with that connection


class LogFiles:
    """Append text to many files without holding it all: whole lines, written in batches.

    Text waits in memory until ``limit`` characters are waiting in all, then every file
    that has some gets it in one append. Files are opened only to write, so thousands
    of them need no more descriptors than one.
    """

    def __init__(self, folder: Path, limit: int = 32 << 20) -> None:
        self.folder = folder
        self.limit = limit
        self._waiting: dict[str, list[str]] = {}
        self._size = 0
        self._made: set[str] = set()

    def add(self, name: str, text: str) -> None:
        chunks = self._waiting.get(name)
        if chunks is None:
            chunks = self._waiting[name] = []
        chunks.append(text)
        self._size += len(text)
        if self._size > self.limit:
            self.flush()

    def touch(self, name: str) -> None:
        """Make sure ``name`` exists at the end, even empty."""
        self._waiting.setdefault(name, [])

    def flush(self) -> None:
        for name, chunks in self._waiting.items():
            if chunks or name not in self._made:
                with open(self.folder / name, "ab") as file:
                    file.write("".join(chunks).encode("utf-8"))
                chunks.clear()
                self._made.add(name)
        self._size = 0


@dataclass(eq=False, slots=True)
class _Link:
    """One TCP connection as the network carries it."""

    client: _Client
    number: int = 0  # the server's client number, once accepted
    up: bool = True  # False once cut or refused
    established: bool = False
    client_closed: bool = False
    server_closed: bool = False
    server_closed_at: float | None = None
    outage: _Outage | None = None  # the outage its loss began
    to_server_at: float = 0.0  # when the last thing sent toward the server arrives
    to_client_at: float = 0.0
    held: list[bytes | None] = field(default_factory=list)  # arrived while not read; None: EOF
    held_size: int = 0
    server_paused: bool = False
    server_held: list[bytes | None] = field(default_factory=list)
    troubled_at: float = _NEVER  # the first instant bytes on it could be lost


@dataclass(eq=False, slots=True)
class _Client:
    index: int  # 1…N: the log clientK.log
    session: ClientSession
    name: str
    scheduled: float = _NEVER  # the instant its tick event is queued for
    link: _Link | None = None  # the current connection, from asking until it ends
    down_until: float = -_NEVER
    stalled_until: float = -_NEVER
    started: bool = False
    counted: bool = False  # finished, and counted as such
    last_to_server: float = 0.0  # when the last thing it sent toward the server arrives
    outages: list[_Outage] = field(default_factory=list)
    err: list[str] = field(default_factory=list)


class Simulation:
    """One simulated run. :meth:`run` plays it to the end and returns the end instant."""

    def __init__(
        self,
        settings: RunSettings,
        files: LogFiles,
        *,
        start: float,
        network: Network | None = None,
        faults: list[Fault] | None = None,
        calendar: Calendar | None = None,
    ) -> None:
        if settings.seed is None:
            raise ValueError("a simulation needs a seed")
        self.settings = settings
        self.files = files
        self.start = start
        self.network = network or Network()
        self.faults = sorted(faults or [], key=lambda fault: fault.at)
        self.calendar = calendar or Calendar(timedelta(0))
        self.now = start
        self.end: float | None = None  # when the clients were told to stop
        self.ended = start  # when the last session finished
        self.events = 0
        self._latency = self.network.latency_ms / 1000
        self._jitter = self.network.jitter_ms / 1000
        self._rng = random.Random(f"network {settings.seed}")
        self._queue: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._sequence = 0
        server_settings = settings.server("server.log")
        self.server = ServerSession(
            server_settings, random.Random(settings.seed), calendar=self.calendar
        )
        self._server_scheduled = _NEVER
        self._server_done = False
        self._server_out: list[str] = []
        self._server_err: list[str] = []
        self._links: dict[int, _Link] = {}
        self.clients = [
            _Client(
                number,
                ClientSession(
                    settings.client(number, f"client{number}.log", SIMULATED_PORT),
                    random.Random(settings.seed + number),
                    calendar=self.calendar,
                ),
                f"client{number}.log",
            )
            for number in range(1, settings.clients + 1)
        ]
        self._unfinished = len(self.clients)

    # -- the event loop ---------------------------------------------------------------

    def _at(self, when: float, action: Callable[[Any], None], argument: Any = None) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (when, self._sequence, action, argument))

    def run(self) -> float:
        """Play the run to its end; the instant the last session finished."""
        self.files.touch("server.log")
        self._at(self.start, self._begin)
        for fault in self.faults:
            self._at(self.start + fault.at, self._fault, fault)
        self._at(self.start + self.settings.duration, self._end_of_run)
        queue = self._queue
        pop = heapq.heappop
        while queue:
            when, _, action, argument = pop(queue)
            self.now = when
            action(argument)
        self.events = self._sequence
        self._write_diagnostics()
        self.files.flush()
        return self.ended

    def _begin(self, _: None) -> None:
        self._server_out.append(format_diagnostic(Listening("127.0.0.1", SIMULATED_PORT)))
        self.server.start(self.now)
        self._server_output()
        for client in self.clients:
            self.files.touch(client.name)
        self._start_client(self.clients[0])

    def _start_client(self, client: _Client) -> None:
        client.started = True
        client.session.start(self.now)
        self._client_output(client)

    def _end_of_run(self, _: None) -> None:
        self.end = self.now
        for client in self.clients:
            client.session.stop(self.now, _STOP_REASON)
            self._client_output(client)

    def _stop_server(self, _: None) -> None:
        if not self.server.stopping:
            self._server_err.append(f"server: stopping ({_STOP_REASON})\n")
            self.server.stop(self.now)
            self._server_output()

    def _delay(self) -> float:
        if self._jitter:  # uniform(0, jitter), without the call
            return self._latency + self._jitter * self._rng.random()
        return self._latency

    # -- the server's side --------------------------------------------------------------

    def _server_output(self) -> None:
        server = self.server
        links = self._links
        for number, data in server.data_to_send():
            self._to_client(links[number], data)
        text = server.log_text()
        if text:
            self.files.add("server.log", text)
        if server.finished and not self._server_done:
            self._server_done = True
            self.ended = max(self.ended, self.now)
        for action in server.actions():
            if isinstance(action, Warn):
                self._server_err.append(f"server: {action.text}\n")
            elif isinstance(action, ClientConnected | ClientDisconnected):
                self._server_out.append(format_diagnostic(action))
            elif isinstance(action, CloseConnection):
                closed = self._links.pop(action.connection, None)
                if closed is not None:  # else it was cut
                    self._server_close(closed)
            elif isinstance(action, PauseReading):
                self._links[action.connection].server_paused = True
            elif isinstance(action, ResumeReading):
                self._resume_server_reading(self._links[action.connection])
        deadline = server.next_deadline()
        if deadline is not None and deadline < self._server_scheduled:
            self._server_scheduled = deadline
            self._at(deadline, self._server_tick, deadline)

    def _server_tick(self, deadline: float) -> None:
        if deadline != self._server_scheduled:
            return  # superseded by an earlier one
        self._server_scheduled = _NEVER
        self.server.tick(self.now)
        self._server_output()

    def _accept(self, link: _Link) -> None:
        if not link.up:
            return
        if self.server.stopping:
            self._refuse(link, "connection refused")
            return
        client = link.client
        number = self.server.connection_made(self.now, f"simulated client {client.index}")
        assert number is not None
        link.number = number
        self._links[number] = link
        self._server_output()
        self._at(self.now + self._latency, self._established, link)
        if client.index < len(self.clients) and self.end is None:
            following = self.clients[client.index]
            if not following.started:
                self._start_client(following)

    def _to_server(self, link: _Link, data: bytes | None) -> None:
        """Send toward the server; ``None`` is the end of the stream."""
        if not link.up:
            return
        when = max(self.now + self._delay(), link.to_server_at)
        link.to_server_at = link.client.last_to_server = when
        self._at(when, self._arrive_at_server, (link, data))

    def _arrive_at_server(self, item: tuple[_Link, bytes | None]) -> None:
        link, data = item
        if not link.up or link.server_closed:
            return
        if link.server_paused:
            link.server_held.append(data)
            return
        if data is None:
            self.server.eof(link.number, self.now)
        else:
            self.server.receive(link.number, data, self.now)
        self._server_output()

    def _resume_server_reading(self, link: _Link) -> None:
        link.server_paused = False
        held, link.server_held = link.server_held, []
        data = b"".join(chunk for chunk in held if chunk is not None)
        if data:
            self.server.receive(link.number, data, self.now)
        if None in held:
            self.server.eof(link.number, self.now)
        self._server_output()

    def _server_close(self, link: _Link) -> None:
        self._server_done_with(link)
        if link.up:
            self._to_client(link, None)

    # -- a client's side --------------------------------------------------------------

    def _client_output(self, client: _Client) -> None:
        session = client.session
        data = session.data_to_send()
        if data and client.link is not None:
            self._to_server(client.link, data)
        text = session.log_text()
        if text:
            self.files.add(client.name, text)
        for action in session.actions():
            if isinstance(action, Warn):
                client.err.append(f"client: {action.text}\n")
            elif isinstance(action, Connect):
                self._connect(client)
            elif isinstance(action, Disconnect):
                self._disconnect(client)
        if session.finished and client.link is None and not client.counted:
            client.counted = True
            self._unfinished -= 1
            self.ended = max(self.ended, self.now)
            if not self._unfinished and self.end is not None:
                # The runner stops the server once the clients have exited.
                self._at(self.now + 2 * (self._latency + self._jitter) + 0.001, self._stop_server)
            return
        deadline = session.next_deadline()
        if deadline is not None and deadline < client.scheduled:
            client.scheduled = deadline
            self._at(deadline, self._client_tick, (client, deadline))

    def _client_tick(self, item: tuple[_Client, float]) -> None:
        client, deadline = item
        if deadline != client.scheduled:
            return
        client.scheduled = _NEVER
        client.session.tick(self.now)
        self._client_output(client)

    def _connect(self, client: _Client) -> None:
        link = client.link = _Link(client)
        if self.now < client.down_until:
            self._refuse(link, "network is unreachable")
            return
        # After whatever this client sent on its previous connection, its end included.
        when = max(self.now + self._latency, client.last_to_server)
        link.to_server_at = link.to_client_at = when
        self._at(when, self._accept, link)

    def _refuse(self, link: _Link, error: str) -> None:
        link.up = False
        self._at(self.now + self._latency, self._refused, (link, error))

    def _refused(self, item: tuple[_Link, str]) -> None:
        link, error = item
        client = link.client
        if client.link is link:
            client.link = None
            client.session.connection_failed(self.now, error)
            self._client_output(client)

    def _established(self, link: _Link) -> None:
        client = link.client
        if not link.up or client.link is not link:
            return
        link.established = True
        for outage in client.outages:
            if outage.end is None and outage.kind == "lost":
                outage.end = self.now
        client.session.connection_made(self.now)
        self._client_output(client)

    def _to_client(self, link: _Link, data: bytes | None) -> None:
        if not link.up or link.client_closed:
            return
        when = max(self.now + self._delay(), link.to_client_at)
        link.to_client_at = when
        self._at(when, self._arrive_at_client, (link, data))

    def _arrive_at_client(self, item: tuple[_Link, bytes | None]) -> None:
        link, data = item
        if not link.up or link.client_closed:
            return
        client = link.client
        if self.now < client.stalled_until or link.held:  # held: what came first goes first
            link.held.append(data)
            if data is not None:
                link.held_size += len(data)
                self.server.write_buffer(link.number, link.held_size)
            return
        self._deliver(link, data)

    def _deliver(self, link: _Link, data: bytes | None) -> None:
        client = link.client
        if data is None:
            self._ended(link, self.now)
            client.session.eof(self.now)
        else:
            client.session.receive(data, self.now)
        self._client_output(client)

    def _disconnect(self, client: _Client) -> None:
        link = client.link
        if link is None:
            return
        if not client.session.finished:
            self._ended(link, self.now)
        link.client_closed = True
        client.link = None
        self._to_server(link, None)

    def _server_done_with(self, link: _Link) -> None:
        link.server_closed = True
        link.server_closed_at = self.now
        if link.outage is not None:
            link.outage.closed = self.now

    def _ended(self, link: _Link, now: float) -> None:
        """A connection of this client is over before its time: an outage starts."""
        client = link.client
        if client.link is link:
            client.link = None
        link.outage = self._outage(client, min(link.troubled_at, now), None, "lost")
        link.outage.connection = link.number or None
        link.outage.closed = link.server_closed_at

    def _outage(self, client: _Client, start: float, end: float | None, kind: str) -> _Outage:
        outage = _Outage(start, end, kind)
        client.outages.append(outage)
        return outage

    # -- faults ---------------------------------------------------------------------

    def _fault(self, fault: Fault) -> None:
        if isinstance(fault, ServerStop):
            for open_link in self._links.values():
                open_link.troubled_at = min(open_link.troubled_at, self.now)
            for client in self.clients:
                connecting = client.link is None or not client.link.established
                if connecting and not client.session.finished:
                    self._outage(client, self.now, None, "lost")
            self._server_err.append("server: stopping (fault: server stop)\n")
            self.server.stop(self.now)
            self._server_output()
            return
        client = self.clients[fault.client - 1]
        link = client.link
        if isinstance(fault, Cut):
            client.down_until = max(client.down_until, self.now + fault.down)
            if link is None or not link.up:
                return
            link.up = False
            link.troubled_at = min(link.troubled_at, self.now)
            if link.number and not link.server_closed:
                self._server_done_with(link)
                self._links.pop(link.number, None)
                self.server.connection_lost(link.number, self.now, "connection reset by peer")
                self._server_output()
            if link.established:
                self._ended(link, self.now)
                client.session.connection_lost(self.now, "connection reset by peer")
                self._client_output(client)
            else:  # still connecting: that attempt fails
                self._outage(client, self.now, None, "lost")
                self._at(self.now, self._refused, (link, "connection reset by peer"))
            return
        if isinstance(fault, Stall):
            until = self.now + fault.duration
            client.stalled_until = max(client.stalled_until, until)
            stalled = self._outage(client, self.now, until, "stalled")
            stalled.connection = link.number or None if link is not None else None
            self._at(until, self._unstall, client)
            return
        assert isinstance(fault, Inject)
        if link is None or not link.established or not link.up:
            return
        if any(len(line) > MAX_LINE + 1 for line in fault.data.split(b"\n")):
            link.troubled_at = min(link.troubled_at, self.now)
        if fault.to_server:
            if not link.client_closed:
                self._to_server(link, fault.data)
        else:
            self._to_client(link, fault.data)

    def _unstall(self, client: _Client) -> None:
        if self.now < client.stalled_until:
            return  # a later stall goes on
        link = client.link
        if link is None or not link.held or not link.up:
            return
        held, link.held, link.held_size = link.held, [], 0
        if link.number and not link.server_closed:
            self.server.write_buffer(link.number, 0)
            self._server_output()
        data = b"".join(chunk for chunk in held if chunk is not None)
        if data:
            self._deliver(link, data)
        if None in held and client.link is link:
            self._deliver(link, None)

    # -- results -------------------------------------------------------------------

    def _write_diagnostics(self) -> None:
        self.files.add("server.out", "".join(self._server_out))
        self.files.add("server.err", "".join(self._server_err))
        for client in self.clients:
            self.files.add(f"client{client.index}.err", "".join(client.err))

    def outages_json(self) -> dict[str, list[dict[str, Any]]]:
        """Each client's outages as ``run.json`` records them, in the logs' local time."""

        def show(instant: float | None) -> str | None:
            if instant is None:
                return None
            return _iso(self.calendar(instant))

        return {
            str(client.index): [
                {
                    "start": show(outage.start),
                    "end": show(outage.end),
                    "kind": outage.kind,
                    "connection": outage.connection,
                    "closed": show(outage.closed),
                }
                for outage in client.outages
            ]
            for client in self.clients
            if client.outages
        }


def _iso(instant: datetime) -> str:
    return instant.isoformat(timespec="milliseconds")
