"""What the two sessions share: the actions they ask of their shell, and their calendar.

A session (:mod:`pingpong.server_session`, :mod:`pingpong.client_session`) is the
protocol's behaviour as a plain object, in the manner of h11's ``Connection`` and
aioquic's ``QuicConnection``: the shell hands it what happened (bytes received, a
connection made or lost, the time) and collects what to do, in four kinds:

* bytes to send, one ``bytes`` per connection (``data_to_send``);
* text to append to the log, whole lines (``log_text``);
* actions, in order (``actions``): the values below, plus the server's stdout
  diagnostics (:mod:`pingpong.diagnostics`);
* its next deadline (``next_deadline``): the shell calls ``tick(now)`` then, and a
  session never needs more than that one timer.

Instants are plain floats, seconds since the epoch, passed in by the caller: a
session reads no clock, draws from the ``random.Random`` it was given and touches
no socket. Which time of day the logs show for an instant is the **calendar**'s
business: the real processes use the machine's local time
(:func:`local_calendar`); a simulation uses :class:`FixedCalendar`, a fixed offset
from UTC with no daylight saving, so that the same seed gives the same bytes on
every machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = [
    "Calendar",
    "CloseConnection",
    "Connect",
    "Disconnect",
    "FixedCalendar",
    "PauseReading",
    "ResumeReading",
    "Warn",
    "local_calendar",
]

#: An instant (epoch seconds) as the naive local date and time the logs show.
Calendar = Callable[[float], datetime]

#: The machine's local time, as ``datetime.now()`` gives it: the real processes' calendar.
local_calendar: Calendar = datetime.fromtimestamp


class FixedCalendar:
    """Local time at a fixed offset from UTC (no daylight saving): a simulation's calendar.

    Gives exactly what :func:`datetime.fromtimestamp` would in such a zone, microseconds
    rounded the same way. Instants come mostly in rising order, so the date and time of
    the current second are kept and only the microseconds are added.
    """

    __slots__ = ("_fields", "_offset", "_second")

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self._offset = offset
        self._second = math.nan
        self._fields = (1970, 1, 1, 0, 0, 0)

    def __call__(self, instant: float) -> datetime:
        second = math.floor(instant)
        micro = round((instant - second) * 1e6)  # half to even, as fromtimestamp rounds
        if micro == 1_000_000:
            second, micro = second + 1, 0
        if second != self._second:
            local = datetime.fromtimestamp(second, timezone.utc) + self._offset
            self._fields = (local.year, local.month, local.day, local.hour, local.minute,
                            local.second)  # fmt: skip
            self._second = second
        year, month, day, hour, minute, sec = self._fields
        return datetime(year, month, day, hour, minute, sec, micro)


@dataclass(frozen=True, slots=True)
class Warn:
    """A line for the diagnostic output (stderr); the shell adds whose it is."""

    text: str


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Server: close this connection, once the bytes already handed out for it are written."""

    connection: int


@dataclass(frozen=True, slots=True)
class PauseReading:
    """Server: read nothing more from this connection until :class:`ResumeReading`."""

    connection: int


@dataclass(frozen=True, slots=True)
class ResumeReading:
    """Server: read from this connection again."""

    connection: int


@dataclass(frozen=True, slots=True)
class Connect:
    """Client: open a connection to the server now; report how it went."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Client: close the connection, once the bytes already handed out are written."""
