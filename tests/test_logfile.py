"""The log writer: whole lines, and still only whole lines when the disk fills up."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pingpong.logfile import LogWriter

from .conftest import small_disk

LINE = "2026-11-26;13:01:02.344;[{n}] PING;13:01:05.099;(таймаут)\n"


def test_lines_are_appended_whole(tmp_path: Path) -> None:
    path = tmp_path / "client1.log"
    path.write_text(LINE.format(n=0), encoding="utf-8")
    with LogWriter(path) as log:
        log.write_line(LINE.format(n=1) + LINE.format(n=2))
    with LogWriter(path) as log:  # reopened: appends, never truncates
        log.write_line(LINE.format(n=3))
    assert path.read_text(encoding="utf-8") == "".join(LINE.format(n=n) for n in range(4))


def test_a_full_disk_leaves_only_whole_lines(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        path = disk / "server.log"
        written = 0
        with LogWriter(path) as log:
            failure: OSError | None = None
            while failure is None:
                # Three lines a write, like a server's loop iteration: the write that
                # hits the end of the disk is taken in part, then refused.
                try:
                    log.write_line("".join(LINE.format(n=written + k) for k in range(3)))
                    written += 3
                except OSError as exc:
                    failure = exc
        assert failure.errno == errno.ENOSPC
        data = path.read_bytes()
    assert data.endswith(b"\n")
    lines = data.decode("utf-8").splitlines(keepends=True)
    assert lines == [LINE.format(n=n) for n in range(len(lines))]
    assert written <= len(lines) < written + 3  # whole lines of the failed write stay


def test_a_short_write_then_an_error_cuts_the_torn_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on any system: the OS takes 1.5 lines, then reports the disk full."""
    path = tmp_path / "client1.log"
    real_write = os.write
    calls = 0

    def short_then_full(fd: int, data: bytes) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real_write(fd, data[: len(LINE.encode()) * 3 // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with LogWriter(path) as log:
        log.write_line(LINE.format(n=0))
        monkeypatch.setattr(os, "write", short_then_full)
        with pytest.raises(OSError, match="No space left"):
            log.write_line(LINE.format(n=1) + LINE.format(n=2))
    assert path.read_text(encoding="utf-8") == LINE.format(n=0) + LINE.format(n=1)
