"""How a process says why it gives up: one line on stderr, exit status 1.

A process that cannot go on (its log cannot be written, its port is taken) prints
``pingpong server: <what failed>`` and exits with status 1; the runner shows that
line as the run's error (docs/protocol.md §8).
"""

from __future__ import annotations

import contextlib
import errno
import sys

__all__ = ["FATAL_PREFIX", "fatal", "os_error_text"]

#: How the one line of a process that gives up begins: ``pingpong server: …``.
FATAL_PREFIX = "pingpong "

_ADDRESS_IN_USE = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}


def os_error_text(exc: OSError) -> str:
    """``[Errno 28] No space left on device``: the error alone, without the file name."""
    if exc.errno in _ADDRESS_IN_USE:
        return "address already in use"
    if exc.errno is not None and exc.strerror:
        return f"[Errno {exc.errno}] {exc.strerror}"
    return str(exc)


def fatal(program: str, message: str) -> int:
    """Say in one line on stderr why ``program`` gives up; the exit status, 1.

    The stderr may be on the very disk that is full: the line is then lost, the
    exit status still says it.
    """
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"{FATAL_PREFIX}{program}: {message}\n")
        sys.stderr.flush()
    return 1
