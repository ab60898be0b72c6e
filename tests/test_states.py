"""The run and process state machines, stop reasons, and how their words reach JSON."""

from __future__ import annotations

import itertools
import json

import pytest

from pingpong.core.states import (
    ACTIVE_STATES,
    ProcessState,
    RunState,
    StoppedBy,
    TransitionError,
)

S = RunState
#: Every move a run (or the dashboard, from one run to the next) may make.
RUN_MOVES = {
    (S.IDLE, S.STARTING),
    (S.STARTING, S.RUNNING), (S.STARTING, S.STOPPING), (S.STARTING, S.FAILED),
    (S.RUNNING, S.STOPPING), (S.RUNNING, S.FAILED),
    (S.STOPPING, S.FINISHED), (S.STOPPING, S.FAILED),
    (S.FINISHED, S.STARTING), (S.FAILED, S.STARTING),
}  # fmt: skip


@pytest.mark.parametrize(("old", "new"), list(itertools.product(RunState, RunState)))
def test_run_moves(old: RunState, new: RunState) -> None:
    legal = (old, new) in RUN_MOVES
    assert old.can_go_to(new) is legal
    if legal:
        assert old.move_to(new) is new
    else:
        with pytest.raises(TransitionError, match=f"from {old} to {new}"):
            old.move_to(new)


def test_a_finished_run_never_becomes_failed_or_active_again_by_itself() -> None:
    for end in (S.FINISHED, S.FAILED):
        assert [s for s in RunState if end.can_go_to(s)] == [S.STARTING]  # only a new run


def test_active_states() -> None:
    assert ACTIVE_STATES == (S.STARTING, S.RUNNING, S.STOPPING)
    assert [s for s in RunState if s.active] == list(ACTIVE_STATES)
    # A new run can start exactly when none is active.
    assert [s for s in RunState if s.can_go_to(S.STARTING)] == [S.IDLE, S.FINISHED, S.FAILED]


@pytest.mark.parametrize(("old", "new"), list(itertools.product(ProcessState, ProcessState)))
def test_process_moves(old: ProcessState, new: ProcessState) -> None:
    legal = (old, new) in {
        (ProcessState.STARTING, ProcessState.RUNNING),
        (ProcessState.RUNNING, ProcessState.EXITED),
    }
    assert old.can_go_to(new) is legal
    if not legal:
        with pytest.raises(TransitionError, match="a process cannot go"):
            old.move_to(new)


def test_words_are_unchanged_in_json_and_text() -> None:
    assert [s.value for s in RunState] == [
        "idle", "starting", "running", "stopping", "finished", "failed"
    ]  # fmt: skip
    assert [s.value for s in StoppedBy] == [
        "deadline", "stop", "app shutdown", "failure", "SIGINT", "SIGTERM", "SIGBREAK"
    ]  # fmt: skip
    data = {"state": S.RUNNING, "stopped_by": StoppedBy.APP_SHUTDOWN, "p": ProcessState.EXITED}
    assert json.dumps(data) == '{"state": "running", "stopped_by": "app shutdown", "p": "exited"}'
    assert f"{S.FAILED} (stopped by {StoppedBy.SIGTERM})" == "failed (stopped by SIGTERM)"
    assert str(StoppedBy.APP_SHUTDOWN) == "app shutdown"
    from_disk: str = json.loads('{"state": "running"}')["state"]
    assert from_disk == S.RUNNING  # a plain string from run.json compares equal
    assert RunState("stopping") is S.STOPPING


def test_stopped_by_a_signal() -> None:
    assert StoppedBy.of_signal("SIGTERM") is StoppedBy.SIGTERM
    assert StoppedBy.of_signal("SIGBREAK") is StoppedBy.SIGBREAK
    with pytest.raises(ValueError, match="not a signal"):
        StoppedBy.of_signal("deadline")
    with pytest.raises(ValueError, match="is not a valid StoppedBy"):
        StoppedBy.of_signal("SIGHUP")


def test_who_stopped_a_run_in_words() -> None:
    assert StoppedBy.STOP.phrase == "stopped on request"
    assert StoppedBy.DEADLINE.phrase == "stopped by deadline"
    assert StoppedBy.APP_SHUTDOWN.phrase == "stopped by app shutdown"
    assert StoppedBy.SIGINT.phrase == "stopped by SIGINT"
    assert all("stopped by stop" not in member.phrase for member in StoppedBy)
