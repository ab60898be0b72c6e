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
no socket. Which date and time of day the logs show for an instant is the
:class:`Calendar`'s business: the real processes use the machine's local time
(``Calendar()``); a simulation uses a fixed offset from UTC with no daylight saving
(``Calendar(timedelta(0))``), so that the same seed gives the same bytes on every
machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = [
    "Calendar",
    "CloseConnection",
    "Connect",
    "Disconnect",
    "PauseReading",
    "ResumeReading",
    "Warn",
]


class Calendar:
    """Instants (epoch seconds) as the logs' local date and time.

    ``offset`` ``None`` is the machine's local time, exactly as ``datetime.now()``
    shows it; a :class:`~datetime.timedelta` is that fixed offset from UTC. Either
    way an instant is shown as :func:`datetime.fromtimestamp` would show it
    (microseconds rounded half to even), and a zone changes its offset only on a
    whole second, so the date and time of the current second are worked out once and
    only the milliseconds are added: :meth:`stamp` is the logs' hot path.
    """

    __slots__ = ("_fields", "_offset", "_prefix", "_second")

    def __init__(self, offset: timedelta | None = None) -> None:
        self._offset = offset
        self._second = math.nan
        self._prefix = ""
        self._fields = (1970, 1, 1, 0, 0, 0)

    def _split(self, instant: float) -> int:
        """Make the current second ``instant``'s; its microseconds."""
        second = math.floor(instant)
        micro = round((instant - second) * 1e6)
        if micro == 1_000_000:
            second, micro = second + 1, 0
        if second != self._second:
            if self._offset is None:
                local = datetime.fromtimestamp(second)
            else:
                local = (datetime.fromtimestamp(second, timezone.utc) + self._offset).replace(
                    tzinfo=None
                )
            self._second = second
            self._prefix = local.isoformat(";")[:19]
            self._fields = (local.year, local.month, local.day, local.hour, local.minute,
                            local.second)  # fmt: skip
        return micro

    def __call__(self, instant: float) -> datetime:
        """The naive local date and time of ``instant``."""
        micro = self._split(instant)
        year, month, day, hour, minute, second = self._fields
        return datetime(year, month, day, hour, minute, second, micro)

    def stamp(self, instant: float) -> str:
        """``YYYY-MM-DD;HH:MM:SS.mmm``, as :func:`pingpong.logformat.stamp` shows it."""
        second = math.floor(instant)
        if second == self._second:  # the usual case, inline
            micro = round((instant - second) * 1e6)
            if micro < 1_000_000:
                return f"{self._prefix}.{micro // 1000:03d}"
        micro = self._split(instant)
        return f"{self._prefix}.{micro // 1000:03d}"


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
