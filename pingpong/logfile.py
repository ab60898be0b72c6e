"""Append records to a log file, each line whole and on disk when its event completes.

Each line goes out in one ``os.write`` on a file opened for appending: there is no
user-space buffer to lose, a reader tailing the file sees a line whole or not at
all, and a crash loses only the events still in flight.

A write that fails part way (a full disk takes what fits, then refuses the rest)
raises, and first cuts the unfinished line it left back off the file: the log
still ends with a whole line, never with half a record.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType

from .logformat import Record, format_record

__all__ = ["LogWriter"]

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)


class LogWriter:
    """A log file open for appending records."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, _FLAGS, 0o644)

    def write(self, record: Record) -> None:
        self.write_line(format_record(record))

    def write_line(self, line: str) -> None:
        """Append ``line``: one or more whole lines, each ended by ``\\n``.

        Raises :class:`OSError` if the file does not take all of it; whole lines
        already written stay, a torn one is removed.
        """
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        data = line.encode("utf-8")
        written = 0
        try:
            while written < len(data):  # a regular file takes it in one go, or a short write
                written += os.write(self._fd, data[written:])
        except OSError:
            self._cut_torn_line(data.rfind(b"\n", 0, written) + 1, written)
            raise

    def _cut_torn_line(self, whole: int, written: int) -> None:
        """Remove the ``written - whole`` bytes of an unfinished line from the end of the file."""
        assert self._fd is not None
        if written > whole:
            # Only this writer appends to the file, so its end is where our bytes ended.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, os.fstat(self._fd).st_size - (written - whole))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
