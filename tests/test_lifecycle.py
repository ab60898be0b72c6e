"""A process's stop request: its reason by kind, the text it prints, and when it forces."""

from __future__ import annotations

import asyncio
import signal

from pingpong.lifecycle import Stop, StopKind, StopReason

from .conftest import run


def test_reasons_print_as_before() -> None:
    assert str(StopReason.of_signal(signal.SIGTERM)) == "signal SIGTERM"
    assert str(StopReason.of_signal(signal.SIGINT)) == "signal SIGINT"
    assert str(StopReason(StopKind.DURATION)) == "duration reached"
    assert str(StopReason(StopKind.SUPERVISOR)) == "supervisor closed stdin"
    reason = StopReason.of_signal(signal.SIGTERM)
    assert (reason.kind, reason.signal) == (StopKind.SIGNAL, "SIGTERM")


def test_the_first_request_is_the_reason_and_a_later_signal_forces() -> None:
    async def scenario() -> None:
        stop = Stop()
        stop.request(StopReason(StopKind.DURATION))
        assert stop.requested.is_set()
        assert stop.reason == StopReason(StopKind.DURATION)
        stop.request(StopReason(StopKind.SUPERVISOR))  # not a person: no hurry
        assert not stop.force.is_set()
        stop.request(StopReason.of_signal(signal.SIGINT))
        assert stop.force.is_set()
        assert stop.forced_by == StopReason.of_signal(signal.SIGINT)
        stop.request(StopReason.of_signal(signal.SIGTERM))
        assert stop.forced_by == StopReason.of_signal(signal.SIGINT)  # the first that forced
        assert stop.reason == StopReason(StopKind.DURATION)

    run(scenario())


def test_a_signal_to_this_process_is_its_reason() -> None:
    async def scenario() -> None:
        stop = Stop()
        stop.install()
        try:
            signal.raise_signal(signal.SIGTERM)
            await asyncio.wait_for(stop.requested.wait(), 5)
            assert stop.reason == StopReason(StopKind.SIGNAL, "SIGTERM")
            signal.raise_signal(signal.SIGINT)
            await asyncio.wait_for(stop.force.wait(), 5)
            assert stop.forced_by == StopReason(StopKind.SIGNAL, "SIGINT")
        finally:
            stop.uninstall()

    run(scenario())
