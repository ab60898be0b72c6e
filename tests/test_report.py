"""The end-of-run report: the check and the totals of a run folder, as JSON from a child."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pingpong.running.report import report

from .conftest import child_env, pingpong_argv

SERVER = "2026-11-26;13:01:02.345;[0] PING;13:01:02.977;[0/0] PONG (1)\n"
CLIENT = "2026-11-26;13:01:02.344;[0] PING;13:01:02.979;[0/0] PONG (1)\n"


def write_run(folder: Path) -> None:
    (folder / "server.log").write_text(SERVER, encoding="utf-8")
    (folder / "client1.log").write_text(CLIENT, encoding="utf-8")


def test_report_holds_check_and_summary(tmp_path: Path) -> None:
    write_run(tmp_path)
    result = report(tmp_path)
    assert result["check"]["ok"] is True
    assert result["summary"]["server"]["answered"] == 1
    assert result["summary"]["clients"][0]["round_trip_ms"]["max"] == 635


def test_report_from_the_command_line(tmp_path: Path) -> None:
    write_run(tmp_path)
    (tmp_path / "client1.log").write_text(CLIENT + "garbage\n", encoding="utf-8")
    out = subprocess.run(
        [*pingpong_argv()[:-1], "pingpong.running.report", str(tmp_path), "--slack-ms", "5"],
        capture_output=True, text=True, env=child_env(), check=True,
    ).stdout  # fmt: skip
    result = json.loads(out)
    assert result["check"]["ok"] is False
    assert result["check"]["slack_ms"] == 5
    (format_rule,) = [r for r in result["check"]["rules"] if r["name"] == "format"]
    assert format_rule["findings"] == ["client1.log:2: expected 5 fields separated by ';', got 1"]
