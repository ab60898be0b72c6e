"""The diagnostics budget, on a fake clock: paid by input, held back, summarised."""

from __future__ import annotations

from pingpong.core.throttle import ALLOWANCE, SUMMARY_S, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[Throttle, list[str], Clock]:
    lines: list[str] = []
    clock = Clock()
    return Throttle(lines.append, prefix="server: ", clock=clock), lines, clock


def test_reports_within_the_allowance_are_printed_whole() -> None:
    throttle, lines, _clock = make()
    throttle.report("client 1: empty line; not answered")
    assert lines == ["server: client 1: empty line; not answered\n"]


def test_a_flood_costs_no_more_than_it_brought() -> None:
    throttle, lines, clock = make()
    received = 0
    for n in range(100_000):  # one newline received, one report to make, a thousand a second
        received += 1
        throttle.received(1)
        throttle.report(f"client 1: empty line {n}; not answered")
        clock.now += 0.001
    throttle.close()
    printed = sum(map(len, lines))
    assert printed <= received + ALLOWANCE + 100
    assert lines[-1].startswith("server: ")
    assert (
        "more like this not shown; the last: client 1: empty line 99999; not answered"
        in (lines[-1])
    )
    summaries = [line for line in lines if "more like this" in line]
    assert 1 < len(summaries) <= 100 * SUMMARY_S + 1  # at most one a second
    held = sum(int(line.split()[1]) for line in summaries)
    shown = len(lines) - len(summaries)
    assert shown + held == 100_000  # every report printed or counted


def test_a_held_back_report_waits_for_budget_then_a_second() -> None:
    throttle, lines, clock = make()
    throttle.report("x" * ALLOWANCE)  # more than the whole budget
    assert lines == []
    assert throttle.held == 1
    throttle.report("short")  # held too: nothing overtakes what is held
    assert (lines, throttle.held) == ([], 2)
    throttle.received(ALLOWANCE)
    assert lines == []  # budget, but not a second yet
    clock.now = SUMMARY_S
    throttle.received(0)
    assert lines == ["server: 2 more like this not shown; the last: short\n"]
    assert throttle.held == 0
    throttle.report("next")
    assert lines[-1] == "server: next\n"


def test_close_says_what_is_held_whatever_the_budget() -> None:
    throttle, lines, _clock = make()
    throttle.report("x" * ALLOWANCE)
    throttle.close()
    assert lines == [f"server: 1 more like this not shown; the last: {'x' * ALLOWANCE}\n"]


def test_the_budget_never_holds_more_than_the_allowance() -> None:
    throttle, lines, _clock = make()
    throttle.received(10 * ALLOWANCE)
    for _ in range(1000):
        throttle.report("y" * 99)  # 108 bytes a line with the prefix and newline
    assert len(lines) == ALLOWANCE // 108
