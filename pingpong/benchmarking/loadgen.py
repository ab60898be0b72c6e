"""Load generators for ``pingpong bench``: many connections from one process, no logs.

* :class:`WindowedConnection` keeps a fixed number of requests in flight and counts
  answers (throughput).
* :class:`SimulatedClient` behaves like a client at the default settings — random
  start-to-start intervals, a timeout per request — and a :class:`Fleet` of them
  shares one random source and one set of counters (scale).

They speak the wire protocol by hand, as bytes: decoding every answer in full would
make the generator, not the server, the thing being measured.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from ..core.lateness import Lateness
from ..core.settings import ClientSettings

__all__ = ["Fleet", "SimulatedClient", "WindowedConnection", "measure_answers", "run_fleet"]

# A simulated client keeps a real client's default timings.
_CLIENT = ClientSettings()
_INTERVAL_S = (_CLIENT.interval_ms.low / 1000, _CLIENT.interval_ms.high / 1000)
_TIMEOUT_S = _CLIENT.timeout_ms / 1000


class WindowedConnection(asyncio.Protocol):
    """One connection keeping ``window`` requests in flight; counts answers."""

    def __init__(self, window: int, counter: list[int]) -> None:
        self.window = window
        self.counter = counter
        self.next = 0
        self.transport: asyncio.Transport | None = None

    def _send(self, count: int) -> None:
        assert self.transport is not None
        first = self.next
        self.next += count
        self.transport.write(b"".join(b"[%d] PING\n" % n for n in range(first, self.next)))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send(self.window)

    def data_received(self, data: bytes) -> None:
        answers = data.count(b"\n")
        self.counter[0] += answers
        if answers:
            self._send(answers)


async def measure_answers(port: int, connections: int, window: int, seconds: float) -> float:
    """Answers per second over ``seconds``, after a short warm-up."""
    loop = asyncio.get_running_loop()
    counter = [0]
    transports = []
    for _ in range(connections):
        transport, _protocol = await loop.create_connection(
            lambda: WindowedConnection(window, counter), "127.0.0.1", port
        )
        transports.append(transport)
    await asyncio.sleep(0.5)
    start_count, start = counter[0], time.perf_counter()
    await asyncio.sleep(seconds)
    rate = (counter[0] - start_count) / (time.perf_counter() - start)
    for transport in transports:
        transport.close()
    await asyncio.sleep(0.05)
    return rate


class SimulatedClient(asyncio.Protocol):
    """A client at the default timings: random intervals, per-request timeouts."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.pending: dict[int, asyncio.TimerHandle] = {}
        self.next = 0
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.sender: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def begin(self, at: float) -> None:
        """Start sending, the first request at a random point of one maximum interval."""
        self._schedule(at + self.fleet.rng.uniform(0, _INTERVAL_S[1]))

    def _schedule(self, due: float) -> None:
        self.sender = asyncio.get_running_loop().call_at(due, self._send, due)

    def _send(self, due: float) -> None:
        loop = asyncio.get_running_loop()
        self.fleet.send_lateness.add(loop.time() - due)
        if self.fleet.stopping or self.transport is None or self.transport.is_closing():
            return
        number = self.next
        self.next += 1
        self.transport.write(b"[%d] PING\n" % number)
        self.fleet.sent += 1
        self.pending[number] = loop.call_later(_TIMEOUT_S, self._time_out, number)
        self._schedule(due + self.fleet.rng.uniform(*_INTERVAL_S))

    def _time_out(self, number: int) -> None:
        del self.pending[number]
        self.fleet.timeouts += 1

    def data_received(self, data: bytes) -> None:
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        for line in lines:
            if line.endswith(b"keepalive"):
                self.fleet.keepalives += 1
                continue
            request = int(line[line.index(b"/") + 1 : line.index(b"]")])
            timer = self.pending.pop(request, None)
            if timer is not None:
                timer.cancel()
                self.fleet.answered += 1

    def close(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
        if self.transport is not None:
            self.transport.close()


@dataclass
class Fleet:
    rng: random.Random
    sent: int = 0
    answered: int = 0
    timeouts: int = 0
    keepalives: int = 0
    stopping: bool = False

    def __post_init__(self) -> None:
        self.send_lateness = Lateness()


async def run_fleet(port: int, clients: int, seconds: float) -> Fleet:
    loop = asyncio.get_running_loop()
    fleet = Fleet(random.Random(1))
    members: list[SimulatedClient] = []
    gate = asyncio.Semaphore(200)

    async def join() -> None:
        async with gate:
            _transport, member = await loop.create_connection(
                lambda: SimulatedClient(fleet), "127.0.0.1", port
            )
            members.append(member)

    # Everyone connects first: the steady state is measured, not the connection storm.
    await asyncio.gather(*(join() for _ in range(clients)))
    await asyncio.sleep(1)
    for member in members:
        member.begin(loop.time())
    await asyncio.sleep(seconds)
    fleet.stopping = True  # stop sending; let what is in flight finish or time out
    deadline = loop.time() + 2.5
    while loop.time() < deadline and any(m.pending for m in members):  # noqa: ASYNC110 - polls many
        await asyncio.sleep(0.05)
    for member in members:
        member.close()
    await asyncio.sleep(0.1)
    return fleet
