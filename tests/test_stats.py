"""Run totals and the percentile used for round-trip statistics."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pingpong.stats import format_summary, percentile, round_trip_stats, summarize


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
