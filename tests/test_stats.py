"""Run totals and the percentile used for round-trip statistics."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pingpong.checking.stats import format_summary, percentile, round_trip_stats, summarize


def test_percentile() -> None:
    assert percentile([1.0], 0.95) == 1.0
    assert percentile([0.0, 10.0], 0.5) == 0.0
    assert percentile([0.0, 10.0], 0.51) == 10.0
    assert percentile(list(map(float, range(1, 101))), 0.95) == 95.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_round_trip_stats() -> None:
    assert round_trip_stats([]) is None
    assert round_trip_stats([300.0, 100.0, 200.0]) == {
        "min": 100.0, "avg": 200.0, "p50": 200.0, "p95": 300.0, "max": 300.0,
    }  # fmt: skip


def test_summarize_recorded_logs(tmp_path: Path) -> None:
    (tmp_path / "server.log").write_text(
        "2026-11-26;13:01:02.345;[0] PING;13:01:02.977;[0/0] PONG (1)\n"
        "2026-11-26;13:01:03.100;[1] PING;(проигнорировано);(проигнорировано)\n"
        "2026-11-26;;;13:01:05.000;[1] keepalive\n",
        encoding="utf-8",
    )
    (tmp_path / "client1.log").write_text(
        "2026-11-26;13:01:02.344;[0] PING;13:01:02.979;[0/0] PONG (1)\n"
        "2026-11-26;13:01:03.099;[1] PING;13:01:05.099;(таймаут)\n"
        "2026-11-26;;;13:01:05.001;[1] keepalive\n",
        encoding="utf-8",
    )
    summary = summarize(tmp_path)
    assert summary["server"] == {
        "requests": 2, "answered": 1, "ignored": 1, "ignored_pct": 50.0, "keepalives": 1,
        "last_response": 1,
    }  # fmt: skip
    (client,) = summary["clients"]
    assert client["sent"] == 2
    assert client["answered"] == 1
    assert client["timed_out"] == 1
    assert client["keepalives"] == 1
    assert client["late"] == 0
    assert client["round_trip_ms"]["max"] == 635.0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals end processes there")
def test_summary_says_how_each_process_ended() -> None:
    run = {
        "id": "2026-11-26_13-01-02", "state": "failed", "stopped_by": "SIGINT", "elapsed": 12.0,
        "error": "a second SIGINT stopped the run at once, killing its processes",
        "processes": [
            {"role": "server", "pid": 10, "exit_code": -9, "killed": True},
            # A kill was sent, but it had exited on its own first: not killed.
            {"role": "client1", "pid": 11, "exit_code": 0, "killed": False},
            {"role": "client2", "pid": 12, "exit_code": -15, "killed": False},
            {"role": "client3", "pid": 13, "exit_code": 1, "killed": False},
            {"role": "client4", "pid": None, "exit_code": None, "killed": False},
        ],
    }  # fmt: skip
    (line,) = [line for line in format_summary(run).splitlines() if "processes:" in line]
    assert line == (
        "  processes: server killed (SIGKILL), client1 exit 0, "
        "client2 was killed by signal 15 (SIGTERM), client3 exit 1, client4 never started"
    )


def test_summary_says_a_failed_check_is_timing_only() -> None:
    rule = {"name": "timeouts", "kind": "timing", "ok": False, "checked": 9, "findings_total": 2,
            "findings": ["client3.log:1: timed out after 2022 ms, not 2000",
                         "client3.log:7: timed out after 2039 ms, not 2000"],
            "late_ms": 39.0, "notes": []}  # fmt: skip
    delays = {"name": "delays", "kind": "timing", "ok": True, "checked": 9, "findings_total": 0,
              "findings": [], "late_ms": 0.0,
              "notes": ["the server measured its answer timers up to 38.9 ms late, allowed: "
                        "1 past the slack alone"]}  # fmt: skip
    run = {
        "id": "2026-11-26_13-01-02", "state": "finished", "stopped_by": "deadline",
        "elapsed": 300.2, "processes": [],
        "check": {"ok": False, "timing_only": True, "slack_ms": 20.0, "notes": [],
                  "rules": [rule, delays]},
    }  # fmt: skip
    lines = format_summary(run).splitlines()
    assert lines[-4:] == [
        "  check: FAIL (timing only: 2 findings, timers up to 39 ms late; the slack is 20 ms — "
        "on a busy machine try --slack-ms 50)",
        "    timeouts: client3.log:1: timed out after 2022 ms, not 2000",
        "    timeouts: client3.log:7: timed out after 2039 ms, not 2000",
        "    delays: the server measured its answer timers up to 38.9 ms late, allowed: "
        "1 past the slack alone",
    ]
    assert lines[0] == "run 2026-11-26_13-01-02: finished (stopped by deadline), 300.2 s"


def test_summary_counts_in_the_singular_too() -> None:
    server = {"requests": 1, "answered": 1, "ignored": 0, "ignored_pct": 0.0, "keepalives": 1,
              "last_response": 1}  # fmt: skip
    client = {"client": 1, "sent": 1, "answered": 1, "timed_out": 0, "late": 0, "keepalives": 1,
              "round_trip_ms": None}  # fmt: skip
    run = {"id": "r", "state": "finished", "stopped_by": "stop", "elapsed": 1.0,
           "processes": [], "summary": {"server": server, "clients": [client]}}  # fmt: skip
    text = format_summary(run)
    assert text.splitlines()[0] == "run r: finished (stopped on request), 1.0 s"
    assert (
        "  server: 1 request, 1 answered, 0 ignored (0.0 %), 1 keepalive, last response 1" in text
    )
    assert "  client1: 1 sent, 1 answered, 0 timed out, 1 keepalive; no round trips" in text
    assert "keepalives" not in text
    assert "stopped by stop" not in text
