"""Smoke tests of the benchmarks: each scenario runs briefly and prints its table.

Benchmarks are not tests: nothing here asserts a speed, only that the tables come out.
"""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT, child_env, pingpong_argv


def test_pingpong_bench_prints_both_tables(no_stray_processes: None) -> None:
    result = subprocess.run(
        pingpong_argv("bench", "--seconds", "0.5", "--rounds", "1", "--connections", "4",
                      "--clients-list", "5", "--scale-seconds", "1"),
        capture_output=True, text=True, env=child_env(), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in ("asyncio responder", "responder + log line", "pingpong server"):
        (row,) = [line for line in lines if line.startswith(name)]
        assert float(row.split()[-3].replace(",", "")) > 0  # requests/s
    (row,) = [line for line in lines if line.split() and line.split()[0] == "5"]
    assert "?" not in row  # the server reported its lateness


def test_dashboard_benchmark_prints_its_table(no_stray_processes: None) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "dashboard.py"), "--duration", "1",
         "--interval-ms", "50-100", "--viewers", "1,2"],
        capture_output=True, text=True, env=child_env(), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert [row[0] for row in rows] == ["1", "2"]
