"""The server's diagnostic lines on stdout, which the runner and the dashboard follow.

Three events, one line each, flushed at once::

    listening on 127.0.0.1:8888
    client 3 connected from 127.0.0.1:51234
    client 3 disconnected

These are the only facts the logs cannot show (the port the OS chose, who is
connected right now), so they have one format, made and read here. Anything
else on stdout or stderr is free text for people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ClientConnected",
    "ClientDisconnected",
    "Diagnostic",
    "Listening",
    "format_diagnostic",
    "parse_diagnostic",
]


@dataclass(frozen=True, slots=True)
class Listening:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class ClientConnected:
    client: int
    peer: str


@dataclass(frozen=True, slots=True)
class ClientDisconnected:
    client: int


Diagnostic = Listening | ClientConnected | ClientDisconnected

_LISTENING = re.compile(r"listening on (.+):([0-9]+)")
_CONNECTED = re.compile(r"client ([0-9]+) connected from (.*)")
_DISCONNECTED = re.compile(r"client ([0-9]+) disconnected")


def format_diagnostic(event: Diagnostic) -> str:
    """The event's line, ``\\n`` included."""
    if isinstance(event, Listening):
        return f"listening on {event.host}:{event.port}\n"
    if isinstance(event, ClientConnected):
        return f"client {event.client} connected from {event.peer}\n"
    return f"client {event.client} disconnected\n"


def parse_diagnostic(line: str) -> Diagnostic | None:
    """The event a line reports, or ``None`` for any other line."""
    line = line.rstrip("\r\n")
    if match := _LISTENING.fullmatch(line):
        return Listening(match[1], int(match[2]))
    if match := _CONNECTED.fullmatch(line):
        return ClientConnected(int(match[1]), match[2])
    if match := _DISCONNECTED.fullmatch(line):
        return ClientDisconnected(int(match[1]))
    return None
