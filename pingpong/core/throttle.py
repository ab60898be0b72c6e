"""Bounded diagnostics: what peers make a process print is paid for by what they sent.

A report of bad input (a malformed line, an overlong one, answers dropped because a
client left, a connection that could not be accepted) is worth a line on stderr,
but a peer must not turn a few bytes into many: one connection sending 9.7 MB of
newlines once made the server print 253 MB of "empty line" reports. Rules:

* A report costs its length in bytes, paid from a budget. The budget starts at
  :data:`ALLOWANCE` bytes, earns every byte received from peers
  (:meth:`Throttle.received`), and never holds more than :data:`ALLOWANCE`.
* A report the budget cannot pay for is held back: counted, and the last one kept.
  At most once every :data:`SUMMARY_S` seconds, when the budget can pay for it, one
  line says how many were held back and repeats the last; :meth:`Throttle.close`
  prints that line whatever the budget.
* So what a process prints about its peers never exceeds what it received from them,
  plus :data:`ALLOWANCE` and one closing line: no input can fill a disk with stderr.

No I/O here: the throttle is given the function that writes a line and a clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["ALLOWANCE", "SUMMARY_S", "Throttle"]

#: Bytes of reports a process may print before its peers have sent anything, and
#: the most its budget ever holds (so a quiet hour buys no flood later).
ALLOWANCE = 4096
#: Seconds between two "held back" lines, at least.
SUMMARY_S = 1.0


class Throttle:
    """Reports about peers, within a budget that their own bytes pay for."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        prefix: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``write`` takes one whole line, ``\\n`` included; ``prefix`` starts every line."""
        self._write = write
        self._prefix = prefix
        self._clock = clock
        self._budget = ALLOWANCE
        self._held = 0
        self._last_held = ""
        self._summarised = clock()

    @property
    def held(self) -> int:
        """Reports held back and not yet summarised."""
        return self._held

    def received(self, size: int) -> None:
        """Peers sent ``size`` bytes: that much more may be printed about them."""
        self._budget = min(ALLOWANCE, self._budget + size)
        if self._held:
            self._summarise()

    def report(self, message: str) -> None:
        """Print ``message`` as one line if the budget pays for it, else hold it back."""
        line = f"{self._prefix}{message}\n"
        if self._held == 0 and len(line) <= self._budget:
            self._budget -= len(line)
            self._write(line)
            return
        self._held += 1
        self._last_held = message
        self._summarise()

    def close(self) -> None:
        """Say what is still held back, whatever the budget (the process is stopping)."""
        if self._held:
            self._summarise(force=True)

    def _summarise(self, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._summarised < SUMMARY_S:
            return
        line = f"{self._prefix}{self._held} more like this not shown; the last: {self._last_held}\n"
        if not force and len(line) > self._budget:
            return
        self._budget = max(0, self._budget - len(line))
        self._held = 0
        self._last_held = ""
        self._summarised = now
        self._write(line)
