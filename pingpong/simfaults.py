"""What can go wrong on a simulated network, when, and to whom: fault schedules — pure.

A fault is a small frozen value with its instant ``at`` in seconds from the start
of the run and, for most, the client (by log number, 1…N) it happens to:

=================  =============================================================
``Cut``            the client's connection is reset at both ends, data on the
                   way is lost, and the client's network stays down ``down`` s
                   (its reconnect attempts fail meanwhile, with backoff)
``Stall``          the client stops reading for ``duration`` s; what arrives
                   meanwhile waits and is read at the end
``Inject``         bytes slipped into the client's connection between two
                   messages, toward the server or toward the client: garbage
                   lines, or a line over the limit that ends the connection
``ServerStop``     the server is told to stop (gracefully) at ``at``, while the
                   clients go on until the end of the run
=================  =============================================================

:func:`random_faults` draws a schedule from a seeded ``random.Random``: the same
seed, the same schedule. :func:`parse_fault_counts` reads the command line's
``--faults cuts=2,stalls=1,…``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .protocol import MAX_LINE

__all__ = [
    "FAULT_KINDS",
    "GARBAGE_TO_CLIENT",
    "GARBAGE_TO_SERVER",
    "OVERLONG",
    "Cut",
    "Fault",
    "Inject",
    "ServerStop",
    "Stall",
    "fault_to_json",
    "parse_fault_counts",
    "random_faults",
]


@dataclass(frozen=True, slots=True)
class Cut:
    at: float
    client: int
    down: float = 0.0


@dataclass(frozen=True, slots=True)
class Stall:
    at: float
    client: int
    duration: float


@dataclass(frozen=True, slots=True)
class Inject:
    at: float
    client: int
    data: bytes
    to_server: bool = True


@dataclass(frozen=True, slots=True)
class ServerStop:
    at: float


Fault = Cut | Stall | Inject | ServerStop

#: Whole lines that are not requests (each one skipped by the server, with a report).
GARBAGE_TO_SERVER = (
    b"hello\n",
    b"[01] PING\n",
    b"[-1] PING\n",
    b"[1]  PING\n",
    b"[1] PONG\n",
    b"\xff\xfe PING\n",
    b"\n",
    b"\r\n",
)
#: Whole lines that are not responses (each one skipped by the client, with a report).
GARBAGE_TO_CLIENT = (
    b"garbage\n",
    b"[1] keepalive now\n",
    b"[1/2] PONG\n",
    b"[0/0] PONG (01)\n",
    b"\xc3\xa9\n",
    b"\n",
)
#: A line over the limit: the side that reads it ends the connection.
OVERLONG = b"x" * (MAX_LINE + 100) + b"\n"

#: The kinds ``--faults`` counts, in the order a schedule draws them.
FAULT_KINDS = ("cuts", "stalls", "garbage", "overlong", "server_stop")


def random_faults(
    rng: random.Random,
    clients: int,
    duration: float,
    *,
    cuts: int = 0,
    stalls: int = 0,
    garbage: int = 0,
    overlong: int = 0,
    server_stop: int = 0,
) -> list[Fault]:
    """A schedule of that many faults of each kind, at random instants and clients.

    Cuts keep the network down up to 3 s; stalls last 0.5–5 s (longer than the
    default timeout, so answers come late); the server stops, if at all, between
    20 % and 90 % of the run.
    """
    faults: list[Fault] = []

    def when() -> float:
        return rng.uniform(0.0, duration)

    def who() -> int:
        return rng.randint(1, clients)

    faults += [Cut(when(), who(), rng.uniform(0.0, 3.0)) for _ in range(cuts)]
    faults += [Stall(when(), who(), rng.uniform(0.5, 5.0)) for _ in range(stalls)]
    for _ in range(garbage):
        to_server = rng.random() < 0.5
        data = rng.choice(GARBAGE_TO_SERVER if to_server else GARBAGE_TO_CLIENT)
        faults.append(Inject(when(), who(), data, to_server))
    faults += [Inject(when(), who(), OVERLONG, rng.random() < 0.5) for _ in range(overlong)]
    if server_stop:
        faults.append(ServerStop(rng.uniform(0.2 * duration, 0.9 * duration)))
    faults.sort(key=lambda fault: fault.at)
    return faults


def parse_fault_counts(text: str) -> dict[str, int]:
    """``"cuts=2,stalls=1"`` → ``{"cuts": 2, "stalls": 1}``; raises ``ValueError``."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip().replace("-", "_")
        if name not in FAULT_KINDS:
            raise ValueError(f"unknown fault {name!r}; the faults are {', '.join(FAULT_KINDS)}")
        try:
            count = int(value) if sep else 1
        except ValueError:
            raise ValueError(f"{name}: expected a count, got {value!r}") from None
        if count < 0:
            raise ValueError(f"{name}: expected a count, got {count}")
        counts[name] = count
    return counts


def fault_to_json(fault: Fault) -> dict[str, Any]:
    """A fault as ``run.json`` records it."""
    if isinstance(fault, Cut):
        return {"kind": "cut", "at": fault.at, "client": fault.client, "down": fault.down}
    if isinstance(fault, Stall):
        return {"kind": "stall", "at": fault.at, "client": fault.client, "duration": fault.duration}
    if isinstance(fault, Inject):
        return {
            "kind": "inject",
            "at": fault.at,
            "client": fault.client,
            "to": "server" if fault.to_server else "client",
            "data": fault.data.decode("latin-1")
            if len(fault.data) <= 60
            else f"{len(fault.data)} bytes",
        }
    return {"kind": "server stop", "at": fault.at}
