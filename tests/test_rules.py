"""Single rules on runs built in memory (test_check.py corrupts real runs)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from pingpong.logformat import Answered, Ignored, ServerRecord, Unpaired
from pingpong.protocol import Keepalive, Ping, Pong
from pingpong.rules import Rules
from pingpong.runlogs import Line, RunLogs
from pingpong.settings import MsRange, RunSettings

START = datetime(2026, 11, 26, 13, 0, 0)


def server_log(ignored: int, total: int) -> list[Line[ServerRecord]]:
    lines: list[Line[ServerRecord]] = []
    for n in range(total):
        at = START + timedelta(seconds=n)
        record: ServerRecord = (
            Ignored(at, Ping(n))
            if n < ignored
            else Answered(at, Ping(n), at + timedelta(milliseconds=500), Pong(n, n, 1))
        )
        lines.append(Line("server.log", n + 1, record))
    return lines


def share(ignored: int, total: int, probability: float) -> list[str]:
    logs = RunLogs(Path("run"), None, {}, server=server_log(ignored, total))
    rules = Rules(logs, RunSettings(ignore=probability), slack_ms=20)
    return rules.ignored_share().findings


def test_ignored_share_within_the_bound() -> None:
    assert share(10, 100, 0.1) == []
    assert share(18, 100, 0.1) == []  # z = 2.5: unusual, not impossible


def test_ignored_share_outside_the_bound() -> None:
    (finding,) = share(40, 100, 0.1)
    assert "40 of 100 requests ignored (40.0 %), expected about 10 %" in finding


def test_certain_probabilities_allow_no_exception() -> None:
    assert share(0, 50, 0.0) == []
    assert share(1, 50, 0.0) == ["1 of 50 requests ignored with probability 0"]
    assert share(50, 50, 1.0) == []


def test_delays_against_the_settings() -> None:
    logs = RunLogs(Path("run"), None, {}, server=server_log(0, 3))
    assert Rules(logs, RunSettings(), slack_ms=20).delays().findings == []
    findings = Rules(logs, RunSettings(delay_ms=MsRange(100, 400)), 20).delays().findings
    assert findings == [f"server.log:{n}: delay 500 ms, not in 100–400" for n in (1, 2, 3)]


def cadence(lateness_ms: list[int]) -> list[str]:
    """The cadence findings for one-copy keepalive rounds 1 s apart, each this late."""
    server: list[Line[ServerRecord]] = [
        Line("server.log", n + 1,
             Unpaired(START + timedelta(seconds=n, milliseconds=late), Keepalive(n)))
        for n, late in enumerate(lateness_ms)
    ]  # fmt: skip
    logs = RunLogs(Path("run"), None, {}, server=server)
    return (
        Rules(logs, RunSettings(clients=1, keepalive_s=1), slack_ms=20).keepalive_cadence().findings
    )


def test_keepalive_grid_from_its_earliest_round() -> None:
    # A late first round does not make the punctual rounds after it look off the grid.
    assert cadence([48, 1, 2, 0, 3]) == ["server.log:1: keepalive round +48 ms off the 1 s grid"]
    assert cadence([15, 2, 9, 0]) == []
    assert cadence([0, 2, 250, 1]) == ["server.log:3: keepalive round +250 ms off the 1 s grid"]
