"""The states of a run and of its processes, and who stopped a run: their words and moves.

Each is a ``str`` enum whose values are the words ``run.json``, the API and the page
use, so a member is its word in JSON, in an f-string and in a comparison with a plain
string. Each state machine's legal moves are written once, here: :meth:`RunState.move_to`
and :meth:`ProcessState.move_to` raise :class:`TransitionError` on any other.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "ACTIVE_STATES",
    "ProcessState",
    "RunState",
    "StoppedBy",
    "StrEnum",
    "TransitionError",
]


class StrEnum(str, Enum):
    """A ``str`` enum whose ``str()`` is its value on every Python (``enum.StrEnum`` is 3.11+)."""

    def __str__(self) -> str:
        return str(self.value)


class TransitionError(RuntimeError):
    """A state machine was asked to make a move it does not have: a bug."""


class RunState(StrEnum):
    """The state of a run, and of the dashboard (``idle`` before its first run).

    ``idle`` → ``starting`` → ``running`` → ``stopping`` → ``finished`` or ``failed``.
    A run may stop while still starting; one whose control fails (a bug, not a process)
    goes from any active state straight to ``failed``. After ``finished`` or ``failed``
    the dashboard's next run is ``starting`` again.
    """

    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """Processes may be alive: a new run cannot start, Stop applies."""
        return self in ACTIVE_STATES

    def can_go_to(self, other: RunState) -> bool:
        return other in _RUN_MOVES[self]

    def move_to(self, other: RunState) -> RunState:
        """``other``, if this state may move to it; else :class:`TransitionError`."""
        if not self.can_go_to(other):
            raise TransitionError(f"a run cannot go from {self} to {other}")
        return other


#: The states in which a run's processes may be alive, in order.
ACTIVE_STATES = (RunState.STARTING, RunState.RUNNING, RunState.STOPPING)

_RUN_MOVES: dict[RunState, frozenset[RunState]] = {
    RunState.IDLE: frozenset({RunState.STARTING}),
    RunState.STARTING: frozenset({RunState.RUNNING, RunState.STOPPING, RunState.FAILED}),
    RunState.RUNNING: frozenset({RunState.STOPPING, RunState.FAILED}),
    RunState.STOPPING: frozenset({RunState.FINISHED, RunState.FAILED}),
    RunState.FINISHED: frozenset({RunState.STARTING}),
    RunState.FAILED: frozenset({RunState.STARTING}),
}


class ProcessState(StrEnum):
    """The state of one child process: ``starting`` → ``running`` → ``exited``.

    A process that could not be spawned stays ``starting``.
    """

    STARTING = "starting"
    RUNNING = "running"
    EXITED = "exited"

    def can_go_to(self, other: ProcessState) -> bool:
        return other in _PROCESS_MOVES[self]

    def move_to(self, other: ProcessState) -> ProcessState:
        """``other``, if this state may move to it; else :class:`TransitionError`."""
        if not self.can_go_to(other):
            raise TransitionError(f"a process cannot go from {self} to {other}")
        return other


_PROCESS_MOVES: dict[ProcessState, frozenset[ProcessState]] = {
    ProcessState.STARTING: frozenset({ProcessState.RUNNING}),
    ProcessState.RUNNING: frozenset({ProcessState.EXITED}),
    ProcessState.EXITED: frozenset(),
}


class StoppedBy(StrEnum):
    """What stopped a run (``run.json``'s ``stopped_by``)."""

    DEADLINE = "deadline"  # its duration was over
    STOP = "stop"  # the dashboard's Stop, or another request to stop
    APP_SHUTDOWN = "app shutdown"  # the dashboard went away
    FAILURE = "failure"  # a process died or could not start, or run.json could not be written
    SIGINT = "SIGINT"  # a signal to ``pingpong run``
    SIGTERM = "SIGTERM"
    SIGBREAK = "SIGBREAK"  # Windows: CTRL_BREAK_EVENT

    @property
    def phrase(self) -> str:
        """What a person reads: ``stopped by deadline``, ``stopped on request`` (Stop)."""
        return "stopped on request" if self is StoppedBy.STOP else f"stopped by {self.value}"

    @classmethod
    def of_signal(cls, name: str) -> StoppedBy:
        """The member for a signal's name (``SIGTERM``); :class:`ValueError` for another."""
        member = cls(name)
        if not member.value.startswith("SIG"):
            raise ValueError(f"not a signal: {name!r}")
        return member
