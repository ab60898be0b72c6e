"""How a process learns it should stop (signals, a deadline, its supervisor going away),
and how it says why it gave up.

Every process of a run stops the same way (docs/protocol.md §8): SIGINT, SIGTERM
(and CTRL_BREAK_EVENT on Windows) and the end of the duration all set one
:class:`Stop`, which keeps why (a :class:`StopReason`); the process then winds down
in ordered steps. A second signal sets ``force``, for a person who does not want to
wait.

A process started by the runner also watches its stdin, a pipe from the runner:
the runner closes it to ask for a graceful stop, and the operating system closes
it when the runner dies, however it dies. That works the same on every platform
and is why no child can outlive its run.

A process that cannot go on (its log cannot be written, its port is taken) exits
with status 1 after one line on stderr, ``pingpong server: <what failed>``
(:func:`fatal`): the runner shows that line as the run's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from .states import StrEnum

__all__ = [
    "FATAL_PREFIX",
    "SUPERVISED_ENV",
    "Stop",
    "StopKind",
    "StopReason",
    "fatal",
    "os_error_text",
]

#: Set to ``"1"`` by the runner in its children's environment.
SUPERVISED_ENV = "PINGPONG_SUPERVISED"
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


_SIGNALS = [signal.SIGINT, signal.SIGTERM]
if sys.platform == "win32":  # pragma: no cover - Windows only
    _SIGNALS.append(signal.SIGBREAK)


_Signals = signal.Signals  # the field ``signal`` below hides the module in the class


class StopKind(StrEnum):
    """What asked a process to stop; the value is how it is printed."""

    SIGNAL = "signal"
    DURATION = "duration reached"
    SUPERVISOR = "supervisor closed stdin"


@dataclass(frozen=True)
class StopReason:
    """Why a process stops: its kind and, for a signal, the signal's name (``SIGTERM``).

    ``str()`` is the text the processes print: ``signal SIGTERM``, ``duration reached``.
    """

    kind: StopKind
    signal: str | None = None

    @classmethod
    def of_signal(cls, signum: _Signals) -> StopReason:
        return cls(StopKind.SIGNAL, signum.name)

    def __str__(self) -> str:
        return f"{self.kind} {self.signal}" if self.kind is StopKind.SIGNAL else str(self.kind)


class Stop:
    """The stop request of one process: ``requested`` first, then perhaps ``force``."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.force = asyncio.Event()
        self.reason: StopReason | None = None  # the first request's
        self.forced_by: StopReason | None = None  # the signal that set ``force``
        self._restore: list[Callable[[], object]] = []

    def request(self, reason: StopReason) -> None:
        if self.requested.is_set():
            if reason.kind is StopKind.SIGNAL and not self.force.is_set():
                self.forced_by = reason
                self.force.set()
            return
        self.reason = reason
        self.requested.set()

    def install(self, duration: float | None = None) -> None:
        """Listen for signals, the deadline and, when supervised, stdin closing."""
        loop = asyncio.get_running_loop()
        for signum in _SIGNALS:
            self._install_signal(loop, signum)
        if duration is not None:
            timer = loop.call_later(duration, self.request, StopReason(StopKind.DURATION))
            self._restore.append(timer.cancel)
        if os.environ.get(SUPERVISED_ENV) == "1":
            self._watch_stdin(loop)

    def uninstall(self) -> None:
        while self._restore:
            self._restore.pop()()

    def _install_signal(self, loop: asyncio.AbstractEventLoop, signum: signal.Signals) -> None:
        reason = StopReason.of_signal(signum)
        try:
            loop.add_signal_handler(signum, self.request, reason)
            self._restore.append(functools.partial(loop.remove_signal_handler, signum))
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            if threading.current_thread() is not threading.main_thread():
                return

            def handler(_signum: int, _frame: FrameType | None) -> None:
                loop.call_soon_threadsafe(self.request, reason)

            previous = signal.signal(signum, handler)
            self._restore.append(functools.partial(signal.signal, signum, previous))

    def _watch_stdin(self, loop: asyncio.AbstractEventLoop) -> None:
        # The thread reads a duplicate of the descriptor with os.read, never through
        # sys.stdin: a daemon thread blocked inside sys.stdin.buffer holds that
        # object's lock, and the interpreter, flushing stdin as it exits, aborts
        # ("Fatal Python error: _enter_buffered_busy"). os.read holds no lock, and on
        # Windows reads the pipe the same way. The duplicate is never closed: closing it
        # would not wake the read, which could then read whatever file reuses the number.
        try:
            fd: int | None = os.dup(0)
        except OSError:
            fd = None  # no stdin at all: nothing to wait for

        def watch() -> None:
            try:
                while fd is not None and os.read(fd, 4096):
                    pass
            except OSError:
                pass
            # RuntimeError: the loop closed meanwhile, so we are exiting anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.request, StopReason(StopKind.SUPERVISOR))

        threading.Thread(target=watch, name="stdin-watch", daemon=True).start()
