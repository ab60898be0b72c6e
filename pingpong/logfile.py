"""Append records to a log file, each line whole and on disk when its event completes.

Each line goes out in one ``os.write`` on a file opened for appending: there is no
user-space buffer to lose, a reader tailing the file sees a line whole or not at
all (SPEC §4), and a crash loses only the events still in flight.
"""

from __future__ import annotations

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
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        data = line.encode("utf-8")
        while data:  # a regular file takes it in one go; the loop is for the odd short write
            data = data[os.write(self._fd, data) :]

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
