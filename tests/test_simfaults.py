"""Fault schedules: drawn from a seed, counted from the command line."""

from __future__ import annotations

import random

import pytest

from pingpong.protocol import MAX_LINE, ProtocolError, parse_request, parse_response
from pingpong.simfaults import (
    GARBAGE_TO_CLIENT,
    GARBAGE_TO_SERVER,
    OVERLONG,
    Cut,
    Fault,
    Inject,
    ServerStop,
    Stall,
    fault_to_json,
    parse_fault_counts,
    random_faults,
)


def test_random_faults_are_repeatable_and_as_many_as_asked() -> None:
    def draw(seed: int) -> list[Fault]:
        return list(
            random_faults(
                random.Random(seed), 3, 60, cuts=2, stalls=3, garbage=4, overlong=1, server_stop=1
            )
        )

    faults = draw(1)
    assert faults == draw(1)
    assert faults != draw(2)
    kinds = [type(fault).__name__ for fault in faults]
    assert sorted(kinds) == sorted(["Cut"] * 2 + ["Stall"] * 3 + ["Inject"] * 5 + ["ServerStop"])
    assert [f.at for f in faults] == sorted(f.at for f in faults)
    assert all(0 <= f.at <= 60 for f in faults)
    assert all(1 <= f.client <= 3 for f in faults if not isinstance(f, ServerStop))
    (stop,) = [f for f in faults if isinstance(f, ServerStop)]
    assert 12 <= stop.at <= 54


def test_garbage_is_never_a_valid_message() -> None:
    for line in GARBAGE_TO_SERVER:
        with pytest.raises(ProtocolError):
            parse_request(line)
    for line in GARBAGE_TO_CLIENT:
        with pytest.raises(ProtocolError):
            parse_response(line)
    assert len(OVERLONG) > MAX_LINE + 2


def test_fault_counts_from_the_command_line() -> None:
    assert parse_fault_counts("") == {}
    assert parse_fault_counts("cuts=2, stalls=1,server-stop") == {
        "cuts": 2,
        "stalls": 1,
        "server_stop": 1,
    }
    with pytest.raises(ValueError, match="unknown fault 'floods'; the faults are cuts, stalls"):
        parse_fault_counts("floods=3")
    with pytest.raises(ValueError, match="cuts: expected a count, got 'x'"):
        parse_fault_counts("cuts=x")
    with pytest.raises(ValueError, match="expected a count, got -1"):
        parse_fault_counts("cuts=-1")


def test_faults_as_run_json_records_them() -> None:
    assert fault_to_json(Cut(1.5, 2, 0.5)) == {"kind": "cut", "at": 1.5, "client": 2, "down": 0.5}
    assert fault_to_json(Stall(2.0, 1, 3.0))["duration"] == 3.0
    assert fault_to_json(Inject(1.0, 1, b"hello\n", to_server=False))["data"] == "hello\n"
    assert fault_to_json(Inject(1.0, 1, OVERLONG))["data"] == f"{len(OVERLONG)} bytes"
    assert fault_to_json(ServerStop(9.0)) == {"kind": "server stop", "at": 9.0}
