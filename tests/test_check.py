"""The checker: a real run passes; each kind of corruption fails its rule, clearly."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pingpong.checking.check import check_run
from pingpong.checking.runlogs import load_run
from pingpong.core.logformat import (
    Answered,
    TimedOut,
    Unpaired,
    format_record,
    format_time,
    parse_client_line,
    parse_server_line,
)
from pingpong.core.settings import RunSettings

from .conftest import SLACK_MS, child_env, pingpong_argv


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run with enough of everything: ignores, timeouts, keepalives, 3 clients."""
    folder = tmp_path_factory.mktemp("good") / "run"
    result = subprocess.run(
        pingpong_argv(
            "run", "--log-dir", str(folder), "--clients", "3", "--duration", "4", "--seed", "11",
            "--interval-ms", "40-200", "--delay-ms", "20-150", "--timeout-ms", "300",
            "--keepalive-s", "0.5", "--ignore", "0.3", "--slack-ms", str(SLACK_MS),
        ),
        capture_output=True, text=True, env=child_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


@pytest.fixture
def copy(good_run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(good_run, target)
    return target


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def rewrite(path: Path, change: Callable[[list[str]], list[str]]) -> tuple[list[str], list[str]]:
    """Apply ``change`` to the file's lines; the lines before and after."""
    before = lines(path)
    after = change(list(before))
    path.write_text("".join(after), encoding="utf-8")
    assert lines(path) == after
    return before, after


def edited(before: list[str], after: list[str]) -> list[tuple[str, str]]:
    """The lines an in-place edit changed: (before, after) pairs."""
    assert len(before) == len(after)
    return [(old, new) for old, new in zip(before, after, strict=True) if old != new]


def removed(before: list[str], after: list[str]) -> list[str]:
    """The lines a deletion took out (failing if it did anything else)."""
    remaining = iter(after)
    gone = []
    current = next(remaining, None)
    for line in before:
        if line == current:
            current = next(remaining, None)
        else:
            gone.append(line)
    assert current is None, "lines were changed, not only removed"
    return gone


def keepalive_sent_later(line: str, by: timedelta) -> str:
    """A keepalive line of server.log, sent ``by`` later: the date follows the time."""
    record = parse_server_line(line)
    assert isinstance(record, Unpaired)
    return format_record(replace(record, response_time=record.response_time + by))


def first(pattern: str, items: list[str]) -> int:
    return next(i for i, line in enumerate(items) if re.search(pattern, line))


def set_setting(folder: Path, name: str, value: object) -> None:
    meta = json.loads((folder / "run.json").read_text())
    meta["settings"][name] = value
    (folder / "run.json").write_text(json.dumps(meta))


def failed_rules(folder: Path) -> dict[str, list[str]]:
    return {rule.name: rule.findings for rule in check_run(folder, SLACK_MS).rules if not rule.ok}


def test_the_real_run_passes(good_run: Path) -> None:
    report = check_run(good_run, SLACK_MS)
    assert report.ok, report.format()
    counts = {rule.name: rule.checked for rule in report.rules}
    assert counts["timeouts ignored"] > 0  # the run had ignored requests to pair
    assert counts["keepalive cadence"] >= 5


def test_cli_exit_codes(good_run: Path, copy: Path) -> None:
    slack = ["--slack-ms", str(SLACK_MS)]
    ok = subprocess.run(
        pingpong_argv("check", str(good_run), *slack), capture_output=True, env=child_env()
    )
    assert ok.returncode == 0
    (copy / "client1.log").write_text("nonsense\n", encoding="utf-8")
    bad = subprocess.run(
        pingpong_argv("check", str(copy), *slack), capture_output=True, text=True, env=child_env()
    )
    assert bad.returncode == 1
    assert "FAIL  format" in bad.stdout
    assert "client1.log:1: expected 5 fields" in bad.stdout
    missing = subprocess.run(
        pingpong_argv("check", str(copy / "nope")), capture_output=True, text=True, env=child_env()
    )
    assert missing.returncode == 2


def test_malformed_line(copy: Path) -> None:
    before, after = rewrite(
        copy / "server.log", lambda ls: [*ls[:3], "2026-11-26;xx;[1] PING;;\n", *ls[3:]]
    )
    assert removed(after, before) == ["2026-11-26;xx;[1] PING;;\n"]  # one line added
    assert "server.log:4: bad time 'xx', expected HH:MM:SS.mmm" in failed_rules(copy)["format"]


def test_half_written_last_line(copy: Path) -> None:
    with open(copy / "client2.log", "a", encoding="utf-8") as file:
        file.write("2026-11-26;13:01:0")
    lines = (copy / "client2.log").read_bytes().count(b"\n")
    findings = failed_rules(copy)["format"]
    assert f"client2.log:{lines + 1}: torn last line: 18 bytes without a line end" in "\n".join(
        findings
    )


def test_a_torn_last_line_is_never_read_as_a_record(copy: Path) -> None:
    # The last line again, all but its line end: parsed, it would be a second outcome.
    last = lines(copy / "client1.log")[-1]
    with open(copy / "client1.log", "a", encoding="utf-8") as file:
        file.write(last.rstrip("\n"))
    failed = failed_rules(copy)
    assert list(failed) == ["format"], failed
    (finding,) = failed["format"]
    assert finding.startswith("client1.log:")
    assert "torn last line" in finding


def test_missing_client_log(copy: Path) -> None:
    (copy / "client3.log").unlink()
    assert "missing client logs: client3.log" in failed_rules(copy)["format"]


def test_request_without_outcome(copy: Path) -> None:
    before, after = rewrite(
        copy / "client1.log", lambda ls: [ln for ln in ls if ";[3] PING;" not in ln]
    )
    assert len(removed(before, after)) == 1
    failed = failed_rules(copy)
    assert "client1.log: no outcome for requests 3" in failed["requests"]


def test_request_with_two_outcomes(copy: Path) -> None:
    def repeat_an_answer(ls: list[str]) -> list[str]:
        return [*ls, next(ln for ln in ls if isinstance(parse_client_line(ln), Answered))]

    before, after = rewrite(copy / "client2.log", repeat_an_answer)
    assert after[:-1] == before
    assert after[-1] in before
    failed = failed_rules(copy)
    assert any("has 2 outcome lines" in f for f in failed["requests"])
    assert any("received 2 times" in f for f in failed["response numbers"])


def test_response_numbers_out_of_send_order(copy: Path) -> None:
    def swap(ls: list[str]) -> list[str]:
        i = first(r"PONG", ls)
        j = first(r"PONG", ls[i + 1 :]) + i + 1
        ls[i], ls[j] = ls[j], ls[i]
        return ls

    before, after = rewrite(copy / "server.log", swap)
    (first_pong, _), (second_pong, _) = edited(before, after)
    assert sorted(after) == sorted(before)  # the same lines, two of them swapped
    assert first_pong != second_pong
    assert any("expected" in f for f in failed_rules(copy)["response numbers"])


def test_response_number_gap(copy: Path) -> None:
    before, after = rewrite(
        copy / "server.log", lambda ls: [ln for ln in ls if "keepalive" not in ln or "[5]" in ln]
    )
    assert removed(before, after)
    failed = failed_rules(copy)
    assert "response numbers" in failed
    assert any("is not in server.log" in f for f in failed["responses delivered"])


def test_pong_the_server_never_sent(copy: Path) -> None:
    def forge(ls: list[str]) -> list[str]:
        i = first(r"PONG \(1\)$", ls)
        ls[i] = re.sub(r"\[(\d+)/", "[999999/", ls[i])
        return ls

    before, after = rewrite(copy / "client1.log", forge)
    ((original, forged),) = edited(before, after)
    assert "[999999/" in forged
    assert "[999999/" not in original
    failed = failed_rules(copy)
    assert any(
        "[999999/" in f and "is not in server.log" in f for f in failed["responses delivered"]
    )
    assert any("never reached client1.log" in f for f in failed["responses delivered"])


def test_timeout_without_an_ignored_request(copy: Path) -> None:
    before, after = rewrite(
        copy / "server.log", lambda ls: [ln for ln in ls if "проигнорировано" not in ln]
    )
    assert removed(before, after)
    failed = failed_rules(copy)
    assert any(
        "timed out but the server did not ignore it" in f for f in failed["timeouts ignored"]
    )


def test_ignored_request_no_client_timed_out(copy: Path) -> None:
    gone = []
    for number in (1, 2, 3):
        before, after = rewrite(
            copy / f"client{number}.log", lambda ls: [ln for ln in ls if "таймаут" not in ln]
        )
        gone += removed(before, after)
    assert gone
    failed = failed_rules(copy)
    assert any("ignored request timed out on no client" in f for f in failed["timeouts ignored"])


def test_delays_outside_their_range(copy: Path) -> None:
    delays = [
        record.response_time - record.request_time
        for record in map(parse_server_line, lines(copy / "server.log"))
        if isinstance(record, Answered)
    ]
    # The run's delays are 20-150 ms: below 250-280 ms, even with the slack.
    assert min(delays) < timedelta(milliseconds=250 - SLACK_MS)
    set_setting(copy, "delay_ms", [250, 280])
    assert any("not in 250–280" in f for f in failed_rules(copy)["delays"])


def test_intervals_outside_their_range(copy: Path) -> None:
    sent = sorted(
        record.request_time
        for record in map(parse_client_line, lines(copy / "client1.log"))
        if isinstance(record, Answered | TimedOut)
    )
    intervals = [later - earlier for earlier, later in itertools.pairwise(sent)]
    # The run's intervals are 40-200 ms: below 1-2 s, even with the slack.
    assert min(intervals) < timedelta(milliseconds=1000 - SLACK_MS)
    set_setting(copy, "interval_ms", [1000, 2000])
    assert any("not in 1000–2000" in f for f in failed_rules(copy)["intervals"])


def test_timeout_at_the_wrong_time(copy: Path) -> None:
    def early(ls: list[str]) -> list[str]:
        i = first("таймаут", ls)
        record = parse_client_line(ls[i])
        assert isinstance(record, TimedOut)
        soon = record.request_time + timedelta(milliseconds=5)
        ls[i] = format_record(replace(record, response_time=soon))
        return ls

    path = next(
        copy / f"client{number}.log"
        for number in (1, 2, 3)
        if "таймаут" in (copy / f"client{number}.log").read_text(encoding="utf-8")
    )
    before, after = rewrite(path, early)
    ((original, corrupted),) = edited(before, after)
    old = parse_client_line(original)
    assert isinstance(old, TimedOut)
    soon = old.request_time + timedelta(milliseconds=5)
    assert parse_client_line(corrupted) == replace(old, response_time=soon)
    assert any("timed out after 5 ms, not 300" in f for f in failed_rules(copy)["timeouts"])


def test_ignored_share_against_the_probability(copy: Path) -> None:
    set_setting(copy, "ignore", 0.9)
    (finding,) = failed_rules(copy)["ignored share"]
    assert "expected about 90 %" in finding


def keepalive_rounds(ls: list[str]) -> list[list[int]]:
    """The indices of server.log's keepalive lines, one list per round.

    The copies of a round go out in one loop iteration, with one time.
    """
    rounds: dict[str, list[int]] = {}
    for i, line in enumerate(ls):
        if isinstance(parse_server_line(line), Unpaired):
            rounds.setdefault(line.split(";")[3], []).append(i)
    return list(rounds.values())


def test_keepalive_off_its_grid(copy: Path) -> None:
    def delay_a_copy(ls: list[str]) -> list[str]:
        # The second copy of a round, 200 ms after the first: within half a period of it,
        # so still in that round, and paused for far longer than the slack.
        i = next(indices for indices in keepalive_rounds(ls) if len(indices) >= 2)[1]
        ls[i] = keepalive_sent_later(ls[i], timedelta(milliseconds=200))
        return ls

    before, after = rewrite(copy / "server.log", delay_a_copy)
    ((original, delayed),) = edited(before, after)
    old, new = parse_server_line(original), parse_server_line(delayed)
    assert isinstance(old, Unpaired)
    assert new == replace(old, response_time=old.response_time + timedelta(milliseconds=200))
    findings = failed_rules(copy)["keepalive cadence"]
    assert any(
        "keepalive sent 200 ms after the previous copy of its round" in f for f in findings
    ), findings


def test_client_logs_swapped(copy: Path) -> None:
    (copy / "client1.log").rename(copy / "tmp.log")
    (copy / "client2.log").rename(copy / "client1.log")
    (copy / "tmp.log").rename(copy / "client2.log")
    assert "client1.log starts as client 2, not 1" in failed_rules(copy)["client numbers"]


def test_client_number_in_two_logs(copy: Path) -> None:
    before, after = rewrite(
        copy / "client2.log", lambda ls: [re.sub(r"PONG \(2\)", "PONG (1)", ln) for ln in ls]
    )
    assert edited(before, after)
    assert any(
        "appears in client1.log, client2.log" in f for f in failed_rules(copy)["client numbers"]
    )


def test_no_run_json_uses_the_defaults(copy: Path) -> None:
    (copy / "run.json").unlink()
    report = check_run(copy)
    assert "no valid run.json: checked against the default settings" in report.notes


def test_keepalive_round_off_its_grid(copy: Path) -> None:
    last_round = keepalive_rounds(lines(copy / "server.log"))[-1]

    def delay_the_last_round(ls: list[str]) -> list[str]:
        for i in last_round:
            ls[i] = keepalive_sent_later(ls[i], timedelta(milliseconds=200))
        return ls

    before, after = rewrite(copy / "server.log", delay_the_last_round)
    changes = edited(before, after)
    assert changes
    for original, delayed in changes:
        old, new = parse_server_line(original), parse_server_line(delayed)
        assert isinstance(old, Unpaired)
        assert new == replace(old, response_time=old.response_time + timedelta(milliseconds=200))
    findings = failed_rules(copy)["keepalive cadence"]
    # 200 ms plus the round's own lateness, which the slack allowed.
    where = f"server.log:{last_round[0] + 1}: keepalive round "
    assert any(f.startswith(where) and "ms off the 0.5 s grid" in f for f in findings), findings


def completion_times(path: Path) -> list[datetime]:
    """When each line's event completed (answer, timeout or arrival), from the parsed log."""
    return [parse_client_line(line).response_time for line in lines(path)]


def swap_lines(path: Path, i: int, j: int) -> None:
    def swap(ls: list[str]) -> list[str]:
        ls[i], ls[j] = ls[j], ls[i]
        return ls

    rewrite(path, swap)


def test_client_lines_swapped(copy: Path) -> None:
    path = copy / "client1.log"
    times = completion_times(path)
    # Lines 3 and 4, or the first pair after them that completed in different milliseconds.
    i = next(k for k in range(2, len(times) - 1) if times[k] != times[k + 1])
    swap_lines(path, i, i + 1)
    (finding,) = failed_rules(copy)["line order"]
    assert finding.startswith(f"client1.log:{i + 2}: completed at ")
    assert finding.endswith(f"before line {i + 1} above it ({format_time(times[i + 1])})")


def test_keepalive_swapped_with_its_neighbour(copy: Path) -> None:
    path = copy / "client2.log"
    times = completion_times(path)
    i = next(
        k
        for k, line in enumerate(lines(path))
        if "keepalive" in line and k + 1 < len(times) and times[k] != times[k + 1]
    )
    swap_lines(path, i, i + 1)
    assert [f.split(":")[:2] for f in failed_rules(copy)["line order"]] == [
        ["client2.log", str(i + 2)]
    ]


def test_first_and_last_client_lines_swapped(copy: Path) -> None:
    path = copy / "client3.log"
    count = len(lines(path))
    swap_lines(path, 0, count - 1)
    findings = failed_rules(copy)["line order"]
    assert [f.split(":")[:2] for f in findings] == [
        ["client3.log", "2"],
        ["client3.log", str(count)],
    ]


def test_the_real_run_reads_the_lateness_its_server_measured(good_run: Path) -> None:
    lateness = load_run(good_run).server_lateness
    assert lateness.answers_ms is not None
    assert lateness.keepalives_ms is not None
    reported = check_run(good_run, SLACK_MS).to_json()["server_lateness_ms"]
    assert reported == {"answers": lateness.answers_ms, "keepalives": lateness.keepalives_ms}


def delayed_run(folder: Path, over_ms: int, server_err: str | None = None) -> Path:
    """A run of one answer, its delay ``over_ms`` past the 1000 ms maximum."""
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"settings": RunSettings(clients=1).to_json()}))
    answered = 1000 + over_ms
    (folder / "server.log").write_text(
        f"2026-11-26;13:01:02.000;[0] PING;13:01:03.{answered - 1000:03};[0/0] PONG (1)\n",
        encoding="utf-8",
    )
    (folder / "client1.log").write_text(
        f"2026-11-26;13:01:01.999;[0] PING;13:01:03.{answered - 999:03};[0/0] PONG (1)\n",
        encoding="utf-8",
    )
    if server_err is not None:
        (folder / "server.err").write_text(server_err, encoding="utf-8")
    return folder


LATE_SERVER = (
    "server: stopped after 1 responses to 1 clients\n"
    "server: answer lateness p50 38.90 p99 38.90 max 38.90 ms (n=1)\n"
    "server: keepalive lateness p50 0.00 p99 0.00 max 0.00 ms (n=0)\n"
)


def test_a_late_server_timer_is_allowed_as_late_as_the_server_measured(tmp_path: Path) -> None:
    # 35 ms past the maximum: more than the 20 ms slack alone allows.
    alone = check_run(delayed_run(tmp_path / "alone", 35))
    assert not alone.ok
    assert alone.timing_only
    assert [(r.name, r.findings) for r in alone.rules if not r.ok] == [
        ("delays", ["server.log:1: delay 1035 ms, not in 100–1000"])
    ]
    assert alone.format().splitlines()[0] == (
        f"check {tmp_path / 'alone'}: FAIL (timing only: 1 finding, timers up to 35 ms late; "
        "the slack is 20 ms — on a busy machine try --slack-ms 50)"
    )
    # The server said its answer timers ran up to 38.9 ms late: allowed, and said so.
    measured = check_run(delayed_run(tmp_path / "measured", 35, LATE_SERVER))
    assert measured.ok, measured.format()
    delays = next(r for r in measured.rules if r.name == "delays")
    assert delays.notes == [
        "the server measured its answer timers up to 38.9 ms late, allowed: 1 past the slack alone"
    ]
    assert "note: the server measured its answer timers up to 38.9 ms late" in measured.format()
    # 60 ms past it is more than both.
    beyond = check_run(delayed_run(tmp_path / "beyond", 60, LATE_SERVER))
    assert [(r.name, r.findings) for r in beyond.rules if not r.ok] == [
        ("delays", ["server.log:1: delay 1060 ms, not in 100–1000 (allowed: 20 ms slack + "
                    "38.9 ms, how late the server measured its timers)"])
    ]  # fmt: skip
    assert beyond.to_json()["timing_only"] is True


def test_protocol_rules_are_never_loosened(tmp_path: Path) -> None:
    folder = delayed_run(tmp_path / "run", 60, LATE_SERVER)
    (folder / "client1.log").write_text(  # a PONG the server never sent
        "2026-11-26;13:01:01.999;[0] PING;13:01:03.061;[7/0] PONG (1)\n", encoding="utf-8"
    )
    report = check_run(folder)
    assert not report.timing_only
    assert report.to_json()["timing_only"] is False
    failed = {r.name: r.findings for r in report.rules if not r.ok}
    assert "responses delivered" in failed
    assert (
        report.format().splitlines()[0].endswith(": FAIL (2 protocol findings, 1 timing finding)")
    ), report.format()


def test_check_says_a_failure_is_timing_only_on_the_command_line(tmp_path: Path) -> None:
    folder = delayed_run(tmp_path / "run", 35)
    result = subprocess.run(
        pingpong_argv("check", str(folder)), capture_output=True, text=True, env=child_env()
    )
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].endswith(
        ": FAIL (timing only: 1 finding, timers up to 35 ms late; the slack is 20 ms — "
        "on a busy machine try --slack-ms 50)"
    )
    assert "  FAIL  delays (timing)" in result.stdout
    assert "  ok    format " in result.stdout
    passed = subprocess.run(
        pingpong_argv("check", str(folder), "--slack-ms", "50"),
        capture_output=True, text=True, env=child_env(),
    )  # fmt: skip
    assert passed.returncode == 0, passed.stdout


def timed_out_run(folder: Path, over_ms: int, client_err: str | None = None) -> Path:
    """A run of one ignored request, timed out ``over_ms`` past the 2000 ms timeout."""
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"settings": RunSettings(clients=1).to_json()}))
    (folder / "server.log").write_text(
        "2026-11-26;13:01:02.000;[0] PING;(проигнорировано);(проигнорировано)\n", encoding="utf-8"
    )
    timed_out = 3999 + over_ms  # ms after 13:01:00
    (folder / "client1.log").write_text(
        f"2026-11-26;13:01:01.999;[0] PING;13:01:{timed_out // 1000:02}.{timed_out % 1000:03};"
        "(таймаут)\n",
        encoding="utf-8",
    )
    if client_err is not None:
        (folder / "client1.err").write_text(client_err, encoding="utf-8")
    return folder


LATE_CLIENT = (
    "client: stopped after 1 requests\n"
    "client: send lateness p50 0.00 p99 0.00 max 0.00 ms (n=1)\n"
    "client: timeout lateness p50 45.00 p99 45.00 max 45.00 ms (n=1)\n"
)


def test_a_late_client_timer_is_allowed_as_late_as_that_client_measured(tmp_path: Path) -> None:
    # 40 ms past the timeout: more than the 20 ms slack alone allows.
    alone = check_run(timed_out_run(tmp_path / "alone", 40))
    assert alone.timing_only
    assert [(r.name, r.findings) for r in alone.rules if not r.ok] == [
        ("timeouts", ["client1.log:1: timed out after 2040 ms, not 2000"])
    ]
    # The client said its timeout timers ran up to 45 ms late: allowed, and said so.
    measured = check_run(timed_out_run(tmp_path / "measured", 40, LATE_CLIENT))
    assert measured.ok, measured.format()
    timeouts = next(r for r in measured.rules if r.name == "timeouts")
    assert timeouts.notes == [
        "client1 measured its timeout timers up to 45.0 ms late, allowed: 1 past the slack alone"
    ]
    assert "note: client1 measured its timeout timers up to 45.0 ms late" in measured.format()
    # 80 ms past it is more than both.
    beyond = check_run(timed_out_run(tmp_path / "beyond", 80, LATE_CLIENT))
    assert [(r.name, r.findings) for r in beyond.rules if not r.ok] == [
        ("timeouts", ["client1.log:1: timed out after 2080 ms, not 2000 (allowed: 20 ms slack + "
                      "45.0 ms, how late client1 measured its timers)"])
    ]  # fmt: skip
    assert beyond.timing_only
    # Only the late side: a timeout that fired early is not excused by lateness.
    early = check_run(timed_out_run(tmp_path / "early", -40, LATE_CLIENT))
    assert [(r.name, r.findings) for r in early.rules if not r.ok] == [
        ("timeouts", ["client1.log:1: timed out after 1960 ms, not 2000"])
    ]
