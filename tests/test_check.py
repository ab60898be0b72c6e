"""The checker: a real run passes; each kind of corruption fails its rule, clearly."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from pingpong.check import check_run
from pingpong.logformat import format_time, parse_client_line

from .conftest import child_env, pingpong_argv


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run with enough of everything: ignores, timeouts, keepalives, 3 clients."""
    folder = tmp_path_factory.mktemp("good") / "run"
    result = subprocess.run(
        pingpong_argv(
            "run", "--log-dir", str(folder), "--clients", "3", "--duration", "4", "--seed", "11",
            "--interval-ms", "40-200", "--delay-ms", "20-150", "--timeout-ms", "300",
            "--keepalive-s", "0.5", "--ignore", "0.3",
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


def rewrite(path: Path, change: Callable[[list[str]], list[str]]) -> None:
    path.write_text("".join(change(lines(path))), encoding="utf-8")


def first(pattern: str, items: list[str]) -> int:
    return next(i for i, line in enumerate(items) if re.search(pattern, line))


def set_setting(folder: Path, name: str, value: object) -> None:
    meta = json.loads((folder / "run.json").read_text())
    meta["settings"][name] = value
    (folder / "run.json").write_text(json.dumps(meta))


def failed_rules(folder: Path) -> dict[str, list[str]]:
    return {rule.name: rule.findings for rule in check_run(folder).rules if not rule.ok}


def test_the_real_run_passes(good_run: Path) -> None:
    report = check_run(good_run)
    assert report.ok, report.format()
    counts = {rule.name: rule.checked for rule in report.rules}
    assert counts["timeouts ignored"] > 0  # the run had ignored requests to pair
    assert counts["keepalive cadence"] >= 5


def test_cli_exit_codes(good_run: Path, copy: Path) -> None:
    ok = subprocess.run(pingpong_argv("check", str(good_run)), capture_output=True, env=child_env())
    assert ok.returncode == 0
    (copy / "client1.log").write_text("nonsense\n", encoding="utf-8")
    bad = subprocess.run(
        pingpong_argv("check", str(copy)), capture_output=True, text=True, env=child_env()
    )
    assert bad.returncode == 1
    assert "FAIL  format" in bad.stdout
    assert "client1.log:1: expected 5 fields" in bad.stdout
    missing = subprocess.run(
        pingpong_argv("check", str(copy / "nope")), capture_output=True, text=True, env=child_env()
    )
    assert missing.returncode == 2


def test_malformed_line(copy: Path) -> None:
    rewrite(copy / "server.log", lambda ls: [*ls[:3], "2026-11-26;xx;[1] PING;;\n", *ls[3:]])
    assert "server.log:4: bad time 'xx', expected HH:MM:SS.mmm" in failed_rules(copy)["format"]


def test_half_written_last_line(copy: Path) -> None:
    with open(copy / "client2.log", "a", encoding="utf-8") as file:
        file.write("2026-11-26;13:01:0")
    findings = failed_rules(copy)["format"]
    assert any("client2.log" in f and "unfinished last line" in f for f in findings)


def test_missing_client_log(copy: Path) -> None:
    (copy / "client3.log").unlink()
    assert "missing client logs: client3.log" in failed_rules(copy)["format"]


def test_request_without_outcome(copy: Path) -> None:
    rewrite(copy / "client1.log", lambda ls: [ln for ln in ls if ";[3] PING;" not in ln])
    failed = failed_rules(copy)
    assert "client1.log: no outcome for requests 3" in failed["requests"]


def test_request_with_two_outcomes(copy: Path) -> None:
    rewrite(copy / "client2.log", lambda ls: [*ls, next(ln for ln in ls if "PONG" in ln)])
    failed = failed_rules(copy)
    assert any("has 2 outcome lines" in f for f in failed["requests"])
    assert any("received 2 times" in f for f in failed["response numbers"])


def test_response_numbers_out_of_send_order(copy: Path) -> None:
    def swap(ls: list[str]) -> list[str]:
        i = first(r"PONG", ls)
        j = first(r"PONG", ls[i + 1 :]) + i + 1
        ls[i], ls[j] = ls[j], ls[i]
        return ls

    rewrite(copy / "server.log", swap)
    assert any("expected" in f for f in failed_rules(copy)["response numbers"])


def test_response_number_gap(copy: Path) -> None:
    rewrite(
        copy / "server.log", lambda ls: [ln for ln in ls if "keepalive" not in ln or "[5]" in ln]
    )
    failed = failed_rules(copy)
    assert "response numbers" in failed
    assert any("is not in server.log" in f for f in failed["responses delivered"])


def test_pong_the_server_never_sent(copy: Path) -> None:
    def forge(ls: list[str]) -> list[str]:
        i = first(r"PONG \(1\)$", ls)
        ls[i] = re.sub(r"\[(\d+)/", "[999999/", ls[i])
        return ls

    rewrite(copy / "client1.log", forge)
    failed = failed_rules(copy)
    assert any(
        "[999999/" in f and "is not in server.log" in f for f in failed["responses delivered"]
    )
    assert any("never reached client1.log" in f for f in failed["responses delivered"])


def test_timeout_without_an_ignored_request(copy: Path) -> None:
    rewrite(copy / "server.log", lambda ls: [ln for ln in ls if "проигнорировано" not in ln])
    failed = failed_rules(copy)
    assert any(
        "timed out but the server did not ignore it" in f for f in failed["timeouts ignored"]
    )


def test_ignored_request_no_client_timed_out(copy: Path) -> None:
    for number in (1, 2, 3):
        rewrite(copy / f"client{number}.log", lambda ls: [ln for ln in ls if "таймаут" not in ln])
    failed = failed_rules(copy)
    assert any("ignored request timed out on no client" in f for f in failed["timeouts ignored"])


def test_delays_outside_their_range(copy: Path) -> None:
    set_setting(copy, "delay_ms", [20, 60])
    assert any("not in 20–60" in f for f in failed_rules(copy)["delays"])


def test_intervals_outside_their_range(copy: Path) -> None:
    set_setting(copy, "interval_ms", [100, 120])
    assert any("not in 100–120" in f for f in failed_rules(copy)["intervals"])


def test_timeout_at_the_wrong_time(copy: Path) -> None:
    def late(ls: list[str]) -> list[str]:
        i = first("таймаут", ls)
        fields = ls[i].split(";")
        fields[3] = fields[1][:-3] + str((int(fields[1][-3:]) + 5) % 1000).zfill(3)
        ls[i] = ";".join(fields)
        return ls

    for number in (1, 2, 3):
        path = copy / f"client{number}.log"
        if "таймаут" in path.read_text(encoding="utf-8"):
            rewrite(path, late)
            break
    assert any("timed out after" in f for f in failed_rules(copy)["timeouts"])


def test_ignored_share_against_the_probability(copy: Path) -> None:
    set_setting(copy, "ignore", 0.9)
    (finding,) = failed_rules(copy)["ignored share"]
    assert "expected about 90 %" in finding


def test_keepalive_off_its_grid(copy: Path) -> None:
    def shift(ls: list[str]) -> list[str]:
        i = [k for k, ln in enumerate(ls) if "keepalive" in ln][-1]
        fields = ls[i].split(";")
        fields[3] = fields[3][:-3] + str((int(fields[3][-3:]) + 200) % 1000).zfill(3)
        ls[i] = ";".join(fields)
        return ls

    rewrite(copy / "server.log", shift)
    findings = failed_rules(copy)["keepalive cadence"]
    assert any("after the previous copy of its round" in f for f in findings), findings


def test_client_logs_swapped(copy: Path) -> None:
    (copy / "client1.log").rename(copy / "tmp.log")
    (copy / "client2.log").rename(copy / "client1.log")
    (copy / "tmp.log").rename(copy / "client2.log")
    assert "client1.log starts as client 2, not 1" in failed_rules(copy)["client numbers"]


def test_client_number_in_two_logs(copy: Path) -> None:
    rewrite(copy / "client2.log", lambda ls: [re.sub(r"PONG \(2\)", "PONG (1)", ln) for ln in ls])
    assert any(
        "appears in client1.log, client2.log" in f for f in failed_rules(copy)["client numbers"]
    )


def test_no_run_json_uses_the_defaults(copy: Path) -> None:
    (copy / "run.json").unlink()
    report = check_run(copy)
    assert "no valid run.json: checked against the default settings" in report.notes


def test_keepalive_round_off_its_grid(copy: Path) -> None:
    def shift(ls: list[str]) -> list[str]:
        last_time = [ln for ln in ls if "keepalive" in ln][-1].split(";")[3]
        for k, ln in enumerate(ls):
            fields = ln.split(";")
            if "keepalive" in ln and fields[3] == last_time:  # every copy of the last round
                fields[3] = fields[3][:-3] + str((int(fields[3][-3:]) + 200) % 1000).zfill(3)
                ls[k] = ";".join(fields)
        return ls

    rewrite(copy / "server.log", shift)
    assert any("off the 0.5 s grid" in f for f in failed_rules(copy)["keepalive cadence"])


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
