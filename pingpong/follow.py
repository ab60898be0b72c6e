"""Follow a growing text file and hand out its whole lines — polled, never blocking.

asyncio cannot watch files, so whoever follows one calls :meth:`FileFollower.read`
every few milliseconds. The follower keeps the file open and its own offset,
returns only lines ended by ``\\n`` (a half-written line waits for its end),
copes with a file that does not exist yet, and reads at most ``max_bytes`` a call
so one call never stalls the event loop on a huge backlog.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

__all__ = ["FileFollower"]


class FileFollower:
    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = 1 << 20) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._file: BinaryIO | None = None
        self._offset = 0  # bytes consumed, kept across close() and reopen
        self._partial = b""

    def read(self) -> list[str]:
        """The whole lines appended since the last call (without ``\\n``), in order."""
        if self._file is None:
            try:
                self._file = open(self.path, "rb")  # noqa: SIM115 - kept open across calls
            except FileNotFoundError:
                return []
            self._file.seek(self._offset)
        data = self._file.read(self.max_bytes)
        if not data:
            return []
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [line.decode("utf-8", errors="replace") for line in lines]

    @property
    def unfinished(self) -> bytes:
        """The bytes read after the last line end: a line still being written, or, once
        the writer is gone, a torn one (never handed out as a line)."""
        return self._partial

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
