"""Run control for the dashboard: one active run at a time, started and stopped on request.

The run itself is :class:`pingpong.runner.Run` — the same code as ``pingpong run``:
processes, their order, the graceful stop (clients first), the checker, ``run.json``.
The supervisor adds what a long-lived service needs around it: refusing a second
run, polling the run's diagnostics and log files (:mod:`app.tail`) into its live
state (:mod:`app.live`), telling the hub when something changed, and stopping the
run gracefully when the app shuts down. If the run's control itself fails (a bug),
the run's processes are killed and the run ends as ``failed`` with the error, so the
next Start is accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pingpong.logformat import Record
from pingpong.runner import Run, RunFailed, RunFolderError, new_run_folder
from pingpong.settings import RunSettings
from pingpong.states import RunState, StoppedBy

from .live import LiveState
from .tail import RunTailer

__all__ = ["Conflict", "Supervisor", "Unavailable"]

logger = logging.getLogger(__name__)

POLL_S = 0.025  # log-to-browser lag is at most this plus the hub's batching


class Conflict(Exception):
    """The request does not fit the current state (a run is active, or none is)."""


class Unavailable(Exception):
    """A run cannot start here: its folder cannot be written. Nothing was started."""


class Supervisor:
    def __init__(
        self,
        runs_dir: Path,
        on_change: Callable[[], None],
        on_read: Callable[[Record], None] | None = None,
    ) -> None:
        """``on_read`` sees each log record as the tailer reads it (the metrics' hook)."""
        self.runs_dir = runs_dir
        self.on_change = on_change
        self.on_read = on_read
        # Runs that ended, by their final state.
        self.ended = {RunState.FINISHED: 0, RunState.FAILED: 0}
        self.run: Run | None = None
        self.live: LiveState | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> RunState:
        return RunState.IDLE if self.run is None else self.run.state

    @property
    def active(self) -> bool:
        return self.run is not None and self.run.active

    def describe_run(self) -> dict[str, Any] | None:
        """The current or last run, with its live counters."""
        if self.run is None:
            return None
        description = self.run.describe()
        description["remaining"] = (
            round(max(0.0, self.run.settings.duration - self.run.elapsed()), 3)
            if self.run.active
            else 0.0
        )
        description["connected"] = sorted(self.run.connected)
        return description

    def status(self) -> dict[str, Any]:
        run = self.describe_run()
        counters = self.live.counters() if self.live is not None else None
        return {"state": self.state, "run": run, "counters": counters}

    async def start(self, settings: RunSettings) -> Run:
        if not self.state.can_go_to(RunState.STARTING):
            raise Conflict("a run is already active")
        try:
            folder = new_run_folder(self.runs_dir)
            run = Run(settings, folder, on_change=lambda _run: self.on_change())
            try:
                run.prepare()
            except RunFolderError:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # ours, and still empty
                raise
        except RunFolderError as exc:
            logger.error("cannot start a run: %s", exc)
            raise Unavailable(str(exc)) from None
        self.run = run
        self.live = LiveState(settings)
        tailer = RunTailer(run.folder, settings.clients, self.live, self.on_read)
        self._task = asyncio.create_task(self._drive(run, tailer), name=f"run {run.id}")
        self.on_change()
        logger.info("run %s started: %s", run.id, settings)
        return run

    def stop(self) -> Run:
        if self.run is None or not self.run.active:
            raise Conflict("no run is active")
        self.run.request_stop(StoppedBy.STOP)
        self.on_change()
        return self.run

    async def shutdown(self) -> None:
        """Stop the active run gracefully and wait for it (the app is going away)."""
        if self.run is not None and self.run.active:
            logger.info("app shutting down: stopping run %s", self.run.id)
            self.run.request_stop(StoppedBy.APP_SHUTDOWN)
        if self._task is not None:
            await self._task

    async def _drive(self, run: Run, tailer: RunTailer) -> None:
        poller = asyncio.create_task(self._poll(run, tailer))
        try:
            with contextlib.suppress(RunFailed):
                await run.start()
            await run.wait()
        except Exception as exc:  # a bug must not leave processes behind or the state stuck
            logger.exception("run %s crashed; killing its processes", run.id)
            await run.abort(f"run control failed: {type(exc).__name__}: {exc}")
        finally:
            poller.cancel()
            try:
                await poller
            except asyncio.CancelledError:
                pass
            except Exception:  # the run went on without live counters; say why
                logger.exception("run %s: following its logs failed", run.id)
            tailer.drain()
            tailer.close()
            # A run is finished or failed by now; one that crashed (a bug) too, by Run.abort.
            self.ended[
                RunState.FINISHED if run.state is RunState.FINISHED else RunState.FAILED
            ] += 1
            logger.info("run %s ended: %s", run.id, run.state)
            self.on_change()

    async def _poll(self, run: Run, tailer: RunTailer) -> None:
        while True:
            run.poll_diagnostics()
            if tailer.poll():
                self.on_change()
            await asyncio.sleep(POLL_S)
