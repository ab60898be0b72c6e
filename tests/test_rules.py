"""Single rules on runs built in memory (test_check.py corrupts real runs)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pingpong.checking.rules import TIMING_RULES, Rules
from pingpong.checking.runlogs import ClientLateness, Line, RunLogs, TimerLateness
from pingpong.core.logformat import (
    Answered,
    ClientRecord,
    Ignored,
    ServerRecord,
    TimedOut,
    Unpaired,
)
from pingpong.core.protocol import Keepalive, Ping, Pong
from pingpong.core.settings import MsRange, RunSettings

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


def order(*times: datetime) -> list[str]:
    lines: list[Line[ClientRecord]] = [
        Line("client1.log", n, Unpaired(at, Keepalive(n))) for n, at in enumerate(times, start=1)
    ]
    logs = RunLogs(Path("run"), None, {}, clients={1: lines})
    return Rules(logs, RunSettings(), slack_ms=20).line_order().findings


def test_client_lines_in_completion_order_across_midnight() -> None:
    before = datetime(2026, 11, 26, 23, 59, 59, 999000)
    after = datetime(2026, 11, 27, 0, 0, 0, 1000)
    assert order(before, before, after, after) == []  # equal milliseconds are fine
    assert order(after, before) == [
        "client1.log:2: completed at 23:59:59.999, before line 1 above it (00:00:00.001)"
    ]


def test_every_rule_is_a_protocol_or_a_timing_rule() -> None:
    logs = RunLogs(Path("run"), None, {}, server=server_log(0, 3))
    kinds = {rule.name: rule.timing for rule in Rules(logs, RunSettings(), 20).run()}
    # Timers firing late can break these, and only these; any other rule (a new one too)
    # is about what happened and is never loosened.
    assert {name for name, timing in kinds.items() if timing} == {
        "delays", "intervals", "timeouts", "keepalive cadence",
    }  # fmt: skip
    assert {"format", "requests", "response numbers", "responses delivered", "timeouts ignored",
            "ignored share", "keepalive rounds", "client numbers"} <= set(kinds)  # fmt: skip
    assert {name for name, timing in kinds.items() if timing} == TIMING_RULES


def test_a_timing_finding_says_how_far_past_its_bound_it_is() -> None:
    logs = RunLogs(Path("run"), None, {}, server=server_log(0, 3))
    rule = Rules(logs, RunSettings(delay_ms=MsRange(100, 460)), slack_ms=20).delays()
    assert rule.late_ms == pytest.approx(40)  # 500 ms against 460
    assert rule.timing


def test_a_late_keepalive_round_is_allowed_as_late_as_the_server_measured() -> None:
    server: list[Line[ServerRecord]] = [
        Line("server.log", n + 1,
             Unpaired(START + timedelta(seconds=n, milliseconds=late), Keepalive(n)))
        for n, late in enumerate([0, 1, 39, 2])
    ]  # fmt: skip
    settings = RunSettings(clients=1, keepalive_s=1)
    alone = RunLogs(Path("run"), None, {}, server=server)
    rule = Rules(alone, settings, slack_ms=20).keepalive_cadence()
    assert rule.findings == ["server.log:3: keepalive round +39 ms off the 1 s grid"]
    assert rule.late_ms == pytest.approx(39)
    measured = RunLogs(Path("run"), None, {}, server=server,
                       server_lateness=TimerLateness(keepalives_ms=38.87))  # fmt: skip
    rule = Rules(measured, settings, slack_ms=20).keepalive_cadence()
    assert rule.findings == []
    assert rule.notes == [
        "the server measured its keepalive timers up to 38.9 ms late, allowed: "
        "1 past the slack alone"
    ]
    # How late answers were says nothing about keepalive rounds.
    answers = RunLogs(Path("run"), None, {}, server=server,
                      server_lateness=TimerLateness(answers_ms=100))  # fmt: skip
    assert Rules(answers, settings, slack_ms=20).keepalive_cadence().findings != []


def test_too_many_copies_in_a_round_is_a_protocol_finding() -> None:
    at = START + timedelta(seconds=1)
    server: list[Line[ServerRecord]] = [
        Line("server.log", n + 1, Unpaired(at, Keepalive(n))) for n in range(3)
    ]
    logs = RunLogs(Path("run"), None, {}, server=server)
    rules = Rules(logs, RunSettings(clients=2), slack_ms=20)
    assert rules.keepalive_rounds().findings == [
        "server.log:1: a keepalive round of 3 copies for 2 clients"
    ]
    assert not rules.keepalive_rounds().timing
    assert rules.keepalive_cadence().findings == []


def test_a_late_send_is_allowed_as_late_as_that_client_measured() -> None:
    # Due every 1000 ms; request 2 went 35 ms late, so its interval is long and the next short.
    sent = [0, 1000, 2035, 3000]
    client: list[Line[ClientRecord]] = [
        Line("client1.log", n + 1, TimedOut(START + timedelta(milliseconds=at), Ping(n),
                                            START + timedelta(milliseconds=at + 2000)))
        for n, at in enumerate(sent)
    ]  # fmt: skip
    settings = RunSettings(clients=1, interval_ms=MsRange(1000, 1000))
    alone = RunLogs(Path("run"), None, {}, clients={1: client})
    assert Rules(alone, settings, slack_ms=20).intervals().findings == [
        "client1.log:3: request 2 sent 1035 ms after request 1, not in 1000–1000",
        "client1.log:4: request 3 sent 965 ms after request 2, not in 1000–1000",
    ]
    late = {1: ClientLateness(sends_ms=20)}
    measured = RunLogs(Path("run"), None, {}, clients={1: client}, client_lateness=late)
    rule = Rules(measured, settings, slack_ms=20).intervals()
    assert rule.findings == []
    assert rule.notes == [
        "client1 measured its send timers up to 20.0 ms late, allowed: 2 past the slack alone"
    ]
    # Another client's lateness, or its timeout timers', says nothing about client1's sends.
    for other in ({2: ClientLateness(sends_ms=100)}, {1: ClientLateness(timeouts_ms=100)}):
        logs = RunLogs(Path("run"), None, {}, clients={1: client}, client_lateness=other)
        assert len(Rules(logs, settings, slack_ms=20).intervals().findings) == 2
    short = RunLogs(Path("run"), None, {}, clients={1: client},
                    client_lateness={1: ClientLateness(sends_ms=10)})  # fmt: skip
    assert Rules(short, settings, slack_ms=20).intervals().findings[0] == (
        "client1.log:3: request 2 sent 1035 ms after request 1, not in 1000–1000 "
        "(allowed: 20 ms slack + 10.0 ms, how late client1 measured its timers)"
    )
