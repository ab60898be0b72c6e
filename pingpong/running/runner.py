"""A run: the server and N clients as separate OS processes, from start to checked logs.

:class:`Run` is shared by ``pingpong run`` and the dashboard. Its rules:

* Each run has its own folder ``<runs>/<YYYY-MM-DD_HH-MM-SS>[-K]/`` holding the logs,
  each process's stdout and stderr (``server.out``, ``server.err``, ``client1.out`` …:
  files, never an undrained pipe) and ``run.json``. Nothing is overwritten.
* The server starts first; its ``listening on`` line gives the port. Client K starts
  once client K-1 is connected (the server's ``client K-1 connected`` line), so
  ``clientK.log`` is the log of client number K.
* Children run in their own process group and hold a pipe to us on stdin: closing
  it is the graceful stop, and the OS closes it if we die, so no child can outlive
  its run (see :mod:`pingpong.running.process`).
* Stop, whatever asks for it (deadline, :meth:`Run.request_stop`, a child that
  died): clients first, each given its timeout plus a grace to log its in-flight
  outcomes, then the server; a child that overstays is killed and the fact recorded.
  :meth:`Run.stop_now` (a second Ctrl+C) kills every child at once instead, and
  the run fails.
* Then the checker runs over the logs and ``run.json`` gets the outcome; not when
  the server never started, as there are no logs to check.
* A folder that cannot be written stops everything before it starts
  (:class:`RunFolderError`). Once the run is going, a ``run.json`` that cannot be
  written (a full disk …) fails the run, which stops as usual; the file on disk
  stays the last one written whole, and ``save_error`` says what failed.
* If the run's own control fails (a bug), :meth:`Run.abort` kills the children
  and ends the run as ``failed`` with the error.

The states and their moves are :class:`pingpong.core.states.RunState`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.diagnostics import ClientConnected, ClientDisconnected, Listening, parse_diagnostic
from ..core.runfolder import (
    SERVER_ROLE,
    RunFolder,
    RunFolderError,
    client_role,
    new_run_folder,
    prepare_run_folder,
    write_json,
)
from ..core.settings import ClientSettings, RunSettings, ServerSettings
from ..core.states import ProcessState, RunState, StoppedBy
from ..core.words import counted
from ..net.lifecycle import FATAL_PREFIX, Stop, StopKind, os_error_text
from .follow import FileFollower
from .process import ChildProcess, child_environment, how_it_ended, tail

__all__ = [
    "Run",
    "RunFailed",
    "RunFolderError",
    "exit_reason",
    "new_run_folder",
    "run_cli",
    "write_json",
]

_POLL_S = 0.01
_STARTUP_TIMEOUT_S = 15.0
_GRACE_S = 5.0


class RunFailed(Exception):
    """A process of the run failed to start or died."""


class Run:
    """One run. ``await run.start()`` then ``await run.wait()``; :meth:`request_stop` any time.

    ``on_change`` is called (in the event loop) whenever the state, a process or the
    set of connected clients changes, for the dashboard to pick up.
    """

    def __init__(
        self,
        settings: RunSettings,
        folder: Path,
        *,
        slack_ms: float | None = None,
        on_change: Callable[[Run], None] | None = None,
    ) -> None:
        self.settings = settings
        self.folder = folder
        self.files = RunFolder(folder)
        self.id = self.files.id
        self.slack_ms = slack_ms
        self.on_change = on_change
        self.state = RunState.STARTING
        self.stopped_by: StoppedBy | None = None
        self.error: str | None = None
        self.started_at = datetime.now()
        self.listening_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.address: tuple[str, int] | None = None
        self.connected: set[int] = set()
        self.processes: list[ChildProcess] = []
        self.summary: dict[str, Any] | None = None
        self.check: dict[str, Any] | None = None
        self.check_not_run: str | None = None  # why the logs were not checked
        self.save_error: str | None = None  # why run.json could not be written
        self._prepared = False
        self._stop = asyncio.Event()
        self._stopping_now = False  # stop_now: kill instead of asking
        self._listening_monotonic: float | None = None
        self._diagnostics = FileFollower(self.files.stdout(SERVER_ROLE))
        self._watchers: list[asyncio.Task[None]] = []

    # -- what the run looks like ----------------------------------------------------

    @property
    def active(self) -> bool:
        return self.state.active

    def elapsed(self) -> float:
        """Seconds since the server started listening (0 before)."""
        if self._listening_monotonic is None:
            return 0.0
        if self.ended_at is not None and self.listening_at is not None:
            return (self.ended_at - self.listening_at).total_seconds()
        return time.monotonic() - self._listening_monotonic

    def describe(self) -> dict[str, Any]:
        """The run as ``run.json`` and the API show it."""
        return {
            "id": self.id,
            "state": self.state,
            "stopped_by": self.stopped_by,
            "error": self.error,
            "settings": self.settings.to_json(),
            "started_at": self.started_at.isoformat(timespec="milliseconds"),
            "listening_at": _iso(self.listening_at),
            "ended_at": _iso(self.ended_at),
            "elapsed": round(self.elapsed(), 3),
            "address": None if self.address is None else f"{self.address[0]}:{self.address[1]}",
            "processes": [child.describe() for child in self.processes],
            "summary": self.summary,
            "check": self.check,
            "check_not_run": self.check_not_run,
        }

    def _move(self, state: RunState) -> None:
        self.state = self.state.move_to(state)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def prepare(self) -> None:
        """Write the first ``run.json``; :class:`RunFolderError` if the folder cannot take it."""
        path = self.files.run_json
        try:
            self.files.write_run_json(self.describe())
        except OSError as exc:
            raise RunFolderError(f"cannot write {path}: {os_error_text(exc)}") from None
        self._prepared = True

    def _save(self, state: RunState | None = None) -> None:
        """Write ``run.json`` (saying ``state`` if given); if it cannot be written the run
        has failed (and stops)."""
        path = self.files.run_json
        description = self.describe()
        if state is not None:
            description["state"] = state
        try:
            self.files.write_run_json(description)
        except OSError as exc:
            self.save_error = self.save_error or f"cannot write {path}: {os_error_text(exc)}"
            self._fail(self.save_error)

    # -- start ------------------------------------------------------------------

    def _child(self, role: str, settings: ServerSettings | ClientSettings) -> ChildProcess:
        argv = [sys.executable, "-m", "pingpong", *settings.argv()]
        return ChildProcess(role, argv, self.folder)

    async def start(self) -> None:
        """Start the server, then each client in turn; raises :class:`RunFailed`.

        Raises :class:`RunFolderError`, having started nothing, if :meth:`prepare`
        was not called and fails.
        """
        if not self._prepared:
            self.prepare()
        s = self.settings
        server = self._child(SERVER_ROLE, s.server(str(self.files.server_log)))
        try:
            await self._spawn(server)
            await self._wait_for(lambda: self.address is not None, server, "to listen")
            assert self.address is not None
            for number in range(1, s.clients + 1):
                log_file = str(self.files.client_log(number))
                client = self._child(
                    client_role(number), s.client(number, log_file, self.address[1])
                )
                await self._spawn(client)
                await self._wait_for(
                    functools.partial(self.connected.__contains__, number), client, "to connect"
                )
        except RunFailed as exc:
            self._fail(str(exc))
            raise
        if self.state is RunState.STARTING:
            self._move(RunState.RUNNING)
        self._changed()
        self._save()

    async def _spawn(self, child: ChildProcess) -> None:
        self.processes.append(child)
        try:
            await child.spawn()
        except OSError as exc:
            raise RunFailed(f"{child.role} could not start: {exc}") from None
        self._watchers.append(asyncio.create_task(self._watch(child)))
        self._changed()

    async def _wait_for(
        self, condition: Callable[[], bool], child: ChildProcess, what: str
    ) -> None:
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not condition():
            if child.state is ProcessState.EXITED or self.error is not None:
                raise RunFailed(self.error or f"{child.role} exited before it started")
            if self._stop.is_set():
                raise RunFailed(f"stopped while waiting for {child.role} {what}")
            if time.monotonic() > deadline:
                raise RunFailed(f"{child.role} took over {_STARTUP_TIMEOUT_S:g} s {what}")
            await asyncio.sleep(_POLL_S)
            self.poll_diagnostics()

    def poll_diagnostics(self) -> None:
        """Read the server's new stdout lines: its address, clients coming and going."""
        if self.ended_at is not None:
            return  # all read and closed at the stop; reading again would reopen the file
        changed = False
        for line in self._diagnostics.read():
            event = parse_diagnostic(line)
            if isinstance(event, Listening) and self.address is None:
                self.address = (event.host, event.port)
                self.listening_at = datetime.now()
                self._listening_monotonic = time.monotonic()
            elif isinstance(event, Listening):
                continue  # only the first start counts
            elif isinstance(event, ClientConnected):
                self.connected.add(event.client)
            elif isinstance(event, ClientDisconnected):
                self.connected.discard(event.client)
            else:
                continue
            changed = True
        if changed:
            self._changed()

    async def _watch(self, child: ChildProcess) -> None:
        """Notice a child that exits on its own: the run has failed."""
        assert child.process is not None
        await child.process.wait()
        child.exited()
        if self.state in (RunState.STARTING, RunState.RUNNING):
            self._fail(_exit_reason(child))
        self._changed()

    def _fail(self, error: str) -> None:
        """Record why the run failed and stop it; it ends as ``failed`` once stopped."""
        if self.error is None:
            self.error = error
        self.stopped_by = self.stopped_by or StoppedBy.FAILURE
        self._stop.set()

    # -- run and stop ----------------------------------------------------------

    def request_stop(self, reason: StoppedBy = StoppedBy.STOP) -> None:
        """Ask for the graceful stop (idempotent)."""
        if self.stopped_by is None:
            self.stopped_by = reason
        self._stop.set()

    def stop_now(self, why: str) -> None:
        """Kill every child at once instead of waiting for it (a second Ctrl+C).

        The run then fails with ``why`` as its error; its logs are kept and checked.
        """
        self.request_stop()
        if self.error is None:
            self.error = why
        self._stopping_now = True
        for child in self.processes:
            child.kill()
        self._changed()

    async def abort(self, error: str) -> None:
        """The run's own control failed (a bug): kill the children, record ``error``,
        end as ``failed`` and write ``run.json``. Never raises for a child or the file."""
        self._fail(error)
        for watcher in self._watchers:
            watcher.cancel()
        for child in self.processes:
            child.kill()
        running = [c for c in self.processes if c.process is not None]
        await asyncio.gather(*(child.wait(_GRACE_S) for child in running))
        self._diagnostics.close()
        if self.ended_at is None:
            self.ended_at = datetime.now()
        if self.state.active:
            self._move(RunState.FAILED)
        self._save()
        self._changed()

    async def wait(self) -> dict[str, Any]:
        """Run until the deadline, a stop request or a failure; stop; check; the description."""
        remaining = self.settings.duration - self.elapsed()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._poll_until_stopped(), max(0.0, remaining))
        if self.stopped_by is None:
            self.stopped_by = StoppedBy.DEADLINE
        await self._shutdown()
        await self._finish()
        return self.describe()

    async def _poll_until_stopped(self) -> None:
        while not self._stop.is_set():
            self.poll_diagnostics()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.1)

    async def _shutdown(self) -> None:
        """Clients first, then the server; kill whoever overstays."""
        self._move(RunState.STOPPING)
        self._changed()
        clients = [p for p in self.processes if p.role != SERVER_ROLE and p.process is not None]
        servers = [p for p in self.processes if p.role == SERVER_ROLE and p.process is not None]
        client_grace = self.settings.timeout_ms / 1000 + _GRACE_S
        server_grace = self.settings.delay_ms.high / 1000 + _GRACE_S
        for group, grace in ((clients, client_grace), (servers, server_grace)):
            for child in group:
                if self._stopping_now:
                    child.kill()
                else:
                    child.ask_to_stop()
            await asyncio.gather(*(child.wait(grace) for child in group))
            self._changed()
        for watcher in self._watchers:
            watcher.cancel()
        self.poll_diagnostics()
        self._diagnostics.close()
        self.ended_at = datetime.now()

    async def _finish(self) -> None:
        """Check the logs and total them up, in a child process (see pingpong.running.report)."""
        if self.address is None:
            self.check_not_run = "the server never started"
        else:
            await self._check()
        if self.error is None:
            killed = [p.role for p in self.processes if p.killed]
            failed = [p.role for p in self.processes if p.exit_code not in (0, None)]
            if killed or failed:
                self._fail(f"did not exit cleanly: {', '.join(killed or failed)}")
        final = RunState.FINISHED if self.error is None else RunState.FAILED
        self._save(final)
        self._move(RunState.FAILED if self.save_error is not None else final)
        self._changed()

    async def _check(self) -> None:
        slack = [] if self.slack_ms is None else ["--slack-ms", str(self.slack_ms)]
        checker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pingpong.running.report", str(self.folder), *slack,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=child_environment(),
        )  # fmt: skip
        out, err = await checker.communicate()
        try:
            result = json.loads(out)
            self.check, self.summary = result["check"], result["summary"]
        except (ValueError, KeyError):
            self.error = self.error or (
                f"the checker failed (exit code {checker.returncode}): "
                + err.decode("utf-8", "replace").strip()[-2000:]
            )


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat(timespec="milliseconds")


def _exit_reason(child: ChildProcess) -> str:
    return exit_reason(child.role, child.pid, child.exit_code, tail(child.stderr_path))


def exit_reason(role: str, pid: int | None, exit_code: int | None, stderr: str) -> str:
    """Why a child that left on its own failed the run, from its exit code and stderr's tail.

    A child that gave up says why in its last line (``pingpong server: cannot listen
    on …``), which is then the reason; otherwise how it ended (its exit code, or the
    signal that killed it) and the last lines of its stderr, which may be unrelated
    (a signal gives the process no time to say anything).
    """
    stderr = stderr.strip()
    last = stderr.splitlines()[-1] if stderr else ""
    if exit_code == 1 and last.startswith(FATAL_PREFIX):
        return last
    ended = "ended" if exit_code is None else how_it_ended(exit_code)
    return f"{role} (pid {pid}) {ended}" + (
        f"; last lines of its stderr: {stderr}" if stderr else "; its stderr is empty"
    )


async def run_cli(
    settings: RunSettings, runs_dir: Path, log_dir: str | None, slack_ms: float | None = None
) -> int:
    """``pingpong run``: start, wait, stop, check, print a summary; 0 if the check passed."""
    from ..checking.stats import format_summary
    from .progress import show_progress

    try:
        folder = prepare_run_folder(runs_dir, log_dir)
        run = Run(settings, folder, slack_ms=slack_ms)
        try:
            run.prepare()
        except RunFolderError:
            if log_dir is None:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # ours, and still empty
            raise
    except RunFolderError as exc:
        print(f"pingpong run: error: {exc}", file=sys.stderr)
        return 2
    stop = Stop()
    stop.install()

    def on_stop(task: asyncio.Task[bool]) -> None:
        reason = stop.reason
        if task.cancelled() or reason is None:
            return
        if reason.kind is StopKind.SIGNAL and reason.signal is not None:
            run.request_stop(StoppedBy.of_signal(reason.signal))  # "stopped by SIGTERM"
        else:
            run.request_stop()

    def on_force(task: asyncio.Task[bool]) -> None:
        if not task.cancelled():
            name = stop.forced_by.signal if stop.forced_by is not None else None
            run.stop_now(
                f"a second {name or 'signal'} stopped the run at once, killing its processes"
            )

    watcher = asyncio.create_task(stop.requested.wait())
    watcher.add_done_callback(on_stop)
    forcer = asyncio.create_task(stop.force.wait())
    forcer.add_done_callback(on_force)
    clients = counted(settings.clients, "client")
    print(f"run {run.id}: {clients} for {settings.duration:g} s in {folder}")
    progress: asyncio.Task[None] | None = None
    try:
        try:
            await run.start()
            assert run.address is not None
            print(f"server listening on {run.address[0]}:{run.address[1]}; Ctrl+C stops the run")
            progress = asyncio.create_task(show_progress(run, sys.stdout))
        except RunFailed as exc:
            print(f"run failed to start: {exc}", file=sys.stderr)
        description = await run.wait()
    finally:
        watcher.cancel()
        forcer.cancel()
        stop.uninstall()
        if progress is not None:  # wipes the status line before the summary
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
    print(format_summary(description))
    if run.save_error is not None:
        print(f"pingpong run: {run.save_error}", file=sys.stderr)
    check = description["check"]
    return 0 if run.state is RunState.FINISHED and check and check["ok"] else 1
