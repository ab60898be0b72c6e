"""The status line of ``pingpong run`` on a terminal: how far the run is, once a second.

The counts come from following the run's own log files (whole lines only, see
:mod:`pingpong.running.follow`), like everything else that reports on a run; the clients
connected come from the runner. The line is rewritten in place with ``\\r`` and
wiped before the summary. When stdout is not a terminal (a file, a pipe) nothing is
written at all, so logs and pipes get only the summary.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..core.logformat import (
    Answered,
    Ignored,
    LogFormatError,
    TimedOut,
    Unpaired,
    parse_client_line,
    parse_server_line,
)
from ..core.runfolder import RunFolder
from ..core.states import RunState
from .follow import FileFollower

if TYPE_CHECKING:
    from .runner import Run

__all__ = ["LogTally", "Tally", "clock", "format_status", "show_progress"]

_PERIOD_S = 1.0


@dataclass
class Tally:
    """What the logs show so far. ``requests`` are the ones the server logged."""

    answered: int = 0
    ignored: int = 0
    timeouts: int = 0
    keepalives: int = 0

    @property
    def requests(self) -> int:
        return self.answered + self.ignored


class LogTally:
    """Counts the lines of ``server.log`` and ``client1.log`` … as they are written."""

    def __init__(self, folder: Path, clients: int) -> None:
        self.tally = Tally()
        files = RunFolder(folder)
        self._server = FileFollower(files.server_log)
        self._clients = [FileFollower(files.client_log(k)) for k in range(1, clients + 1)]

    def poll(self) -> Tally:
        for line in self._server.read():
            try:
                record = parse_server_line(line)
            except LogFormatError:
                continue  # the checker reports it; a status line just does not count it
            if isinstance(record, Answered):
                self.tally.answered += 1
            elif isinstance(record, Ignored):
                self.tally.ignored += 1
            elif isinstance(record, Unpaired):
                self.tally.keepalives += 1
        for follower in self._clients:
            for line in follower.read():
                try:
                    if isinstance(parse_client_line(line), TimedOut):
                        self.tally.timeouts += 1
                except LogFormatError:
                    continue
        return self.tally

    def close(self) -> None:
        for follower in (self._server, *self._clients):
            follower.close()


def clock(seconds: float) -> str:
    """``75.4`` → ``1:15``; ``3725`` → ``1:02:05``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def format_status(
    *,
    state: RunState,
    elapsed: float,
    duration: float,
    connected: int,
    clients: int,
    tally: Tally,
    width: int = 80,
) -> str:
    """The status line in words, within ``width`` − 1 characters (a full last column would
    wrap): when it does not fit, the least telling fields go first (keepalives, elapsed
    time, clients), and the rest is cut only if even the time left alone does not fit."""
    when = f"{clock(duration - elapsed)} left" if state is RunState.RUNNING else f"{state}…"
    t = tally
    fields = [  # (text, the order it goes in when the line is too wide: first goes first)
        (f"{clock(elapsed)} elapsed", 2),
        (when, 99),
        (f"clients {connected}/{clients}", 3),
        (f"requests {t.requests}", 7),
        (f"answered {t.answered}", 6),
        (f"ignored {t.ignored}", 5),
        (f"timeouts {t.timeouts}", 4),
        (f"keepalives {t.keepalives}", 1),
    ]
    for drop in range(0, 8):
        line = " · ".join(text for text, order in fields if order > drop)
        if len(line) < width:
            return line
    return line[: max(0, width - 1)]


class StatusLine:
    """One line of a terminal, rewritten in place."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._shown = 0

    def show(self, text: str) -> None:
        # Padding covers what is left of a longer previous line; no terminal escapes,
        # so it works on every console.
        self.out.write("\r" + text.ljust(self._shown))
        self.out.flush()
        self._shown = len(text)

    def clear(self) -> None:
        if self._shown:
            self.out.write("\r" + " " * self._shown + "\r")
            self.out.flush()
            self._shown = 0


async def show_progress(run: Run, out: TextIO) -> None:
    """Keep the status line of ``run`` on ``out`` until cancelled, if ``out`` is a terminal."""
    if not out.isatty():
        return
    status = StatusLine(out)
    tally = LogTally(run.folder, run.settings.clients)
    settings = run.settings
    try:
        while True:
            line = format_status(
                state=run.state, elapsed=run.elapsed(), duration=settings.duration,
                connected=len(run.connected), clients=settings.clients, tally=tally.poll(),
                width=shutil.get_terminal_size().columns,
            )  # fmt: skip
            status.show(line)
            await asyncio.sleep(_PERIOD_S)
    finally:
        status.clear()
        tally.close()
