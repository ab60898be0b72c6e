"""One child process of a run: spawned with its output in files, stopped by closing its stdin.

Children run in their own process group (terminal Ctrl+C reaches only the runner)
and hold a pipe to the runner on stdin: closing it asks for a graceful stop, and
the operating system closes it when the runner dies, so no child can outlive its
run (see :mod:`pingpong.net.lifecycle`). Their stdout and stderr go to files in the run
folder (``server.out``, ``server.err`` …), never to a pipe that could fill up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..core.runfolder import RunFolder
from ..core.states import ProcessState
from ..net.lifecycle import SUPERVISED_ENV

__all__ = ["ChildProcess", "child_environment", "how_it_ended", "signal_name", "tail"]


def child_environment() -> dict[str, str]:
    """Our environment, for a child that imports this very package, installed or not."""
    env = dict(os.environ)
    env["PYTHONIOENCODING"] = "utf-8"
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


def signal_name(number: int) -> str | None:
    """``SIGKILL`` for 9, or ``None`` for a number this platform has no name for."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return None


def how_it_ended(exit_code: int) -> str:
    """``exited with code 3``, or ``was killed by signal 9 (SIGKILL)`` for a negative code
    (how Python reports a POSIX child that a signal ended)."""
    if exit_code >= 0:
        return f"exited with code {exit_code}"
    name = signal_name(-exit_code)
    return f"was killed by signal {-exit_code}" + (f" ({name})" if name else "")


def tail(path: Path, limit: int = 2000) -> str:
    """The last ``limit`` bytes of a file as text ("" if unreadable)."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - limit))
            return file.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _ended_by_kill(exit_code: int) -> bool:
    """Whether ``exit_code`` is what our kill leaves: SIGKILL on POSIX; on Windows,
    ``TerminateProcess`` sets exit code 1, and a process that exits on its own after
    a stop request exits 0."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return exit_code != 0
    return exit_code == -signal.SIGKILL


@dataclass(eq=False)
class ChildProcess:
    """One process of a run: ``role`` is ``server`` or ``clientK``."""

    role: str
    argv: list[str]
    folder: Path
    process: asyncio.subprocess.Process | None = None
    state: ProcessState = ProcessState.STARTING
    exit_code: int | None = None
    killed: bool = False  # our kill ended it (known once it has exited)
    kill_sent: bool = False  # a kill was sent; the process may have exited just before
    _files: list[IO[bytes]] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def stdout_path(self) -> Path:
        return RunFolder(self.folder).stdout(self.role)

    @property
    def stderr_path(self) -> Path:
        return RunFolder(self.folder).stderr(self.role)

    async def spawn(self) -> None:
        """Start the process; :class:`OSError` if it cannot be (no files, no executable)."""
        env = child_environment()
        env[SUPERVISED_ENV] = "1"
        options: dict[str, Any] = {}
        if sys.platform == "win32":  # pragma: no cover - Windows only
            options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            options["start_new_session"] = True
        try:
            self._files.append(open(self.stdout_path, "ab"))  # noqa: SIM115 - closed in exited
            self._files.append(open(self.stderr_path, "ab"))  # noqa: SIM115
            out, err = self._files
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE, stdout=out, stderr=err, env=env,
                **options,
            )  # fmt: skip
        except OSError:
            self._close_files()
            raise
        self.state = self.state.move_to(ProcessState.RUNNING)

    def ask_to_stop(self) -> None:
        """Close the child's stdin: its signal to stop gracefully."""
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()

    async def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the exit, then kill; the exit code."""
        assert self.process is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.process.wait()), timeout)
        except asyncio.TimeoutError:
            self.kill()
            await self.process.wait()
        return self.exited()

    def kill(self) -> None:
        """Kill the process at once, if it is still there.

        It counts as killed only if the kill is what ended it: a process that had already
        exited on its own, but was not yet reaped, keeps its own exit code and is not.

        Only one kill is sent (a second Ctrl+C, then the shutdown, both kill): sending a
        signal polls the process first, and that poll could reap a child the first kill
        had just ended before asyncio's watcher did, which then reports exit code 255.
        """
        if self.process is not None and self.process.returncode is None and not self.kill_sent:
            self.kill_sent = True
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def exited(self) -> int:
        """Record the exit (once; later calls just return the exit code)."""
        assert self.process is not None
        assert self.process.returncode is not None
        if self.state is not ProcessState.EXITED:
            self.exit_code = self.process.returncode
            self.killed = self.kill_sent and _ended_by_kill(self.exit_code)
            self.state = self.state.move_to(ProcessState.EXITED)
            self._close_files()
        return self.process.returncode

    def _close_files(self) -> None:
        while self._files:
            self._files.pop().close()

    def describe(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "pid": self.pid,
            "state": self.state,
            "exit_code": self.exit_code,
            "killed": self.killed,
        }
