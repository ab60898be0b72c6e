"""Follow the log files of a run and feed each whole new line, parsed, to its live state.

asyncio cannot watch files, so :class:`RunTailer` is polled (the supervisor calls
:meth:`RunTailer.poll` every few tens of milliseconds). Each poll reads at most a
bounded number of bytes per file, so a backlog is worked off over several polls
instead of stalling the event loop. Files that do not exist yet are simply
empty; a line that does not parse is counted, never fatal. A line left without its
line end when the run is over (a write cut short, e.g. by a full disk) is torn: it
is counted as a bad line, never read as a record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pingpong.follow import FileFollower
from pingpong.logformat import LogFormatError, Record, parse_client_line, parse_server_line
from pingpong.runfolder import SERVER_LOG, RunFolder, client_log_name

from .live import LiveState

__all__ = ["RunTailer"]

logger = logging.getLogger(__name__)

_BYTES_PER_POLL = 256 * 1024


class RunTailer:
    def __init__(
        self,
        folder: Path,
        clients: int,
        live: LiveState,
        on_read: Callable[[Record], None] | None = None,
    ) -> None:
        """``on_read`` sees each record as soon as it is read (the metrics' lag)."""
        self.live = live
        self.on_read = on_read
        files = RunFolder(folder)
        self._server = FileFollower(files.server_log, max_bytes=_BYTES_PER_POLL)
        self._clients = {
            number: FileFollower(files.client_log(number), max_bytes=_BYTES_PER_POLL)
            for number in range(1, clients + 1)
        }
        self._torn: set[str] = set()  # logs whose torn last line was counted

    def poll(self) -> int:
        """Feed every new whole line to the live state; how many lines were read."""
        count = 0
        for line in self._server.read():
            count += 1
            try:
                record = parse_server_line(line)
            except LogFormatError as exc:
                logger.warning("%s: %s", SERVER_LOG, exc)
                self.live.on_bad_line()
                continue
            self.live.on_server(record)
            if self.on_read is not None:
                self.on_read(record)
        for number, follower in self._clients.items():
            for line in follower.read():
                count += 1
                try:
                    client_record = parse_client_line(line)
                except LogFormatError as exc:
                    logger.warning("%s: %s", client_log_name(number), exc)
                    self.live.on_bad_line()
                    continue
                self.live.on_client(number, client_record)
                if self.on_read is not None:
                    self.on_read(client_record)
        return count

    def drain(self) -> None:
        """Read everything left (at the end of a run, its writers gone)."""
        while self.poll():
            pass
        followers = {SERVER_LOG: self._server} | {
            client_log_name(number): follower for number, follower in self._clients.items()
        }
        for name, follower in followers.items():
            if follower.unfinished and name not in self._torn:
                self._torn.add(name)
                logger.warning("%s: torn last line (no line end), not read as a record", name)
                self.live.on_bad_line()

    def close(self) -> None:
        self._server.close()
        for follower in self._clients.values():
            follower.close()
