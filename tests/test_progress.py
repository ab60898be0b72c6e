"""The status line of ``pingpong run``: its text, its counts from the logs, and that it shows
on a terminal only."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pingpong.core.states import RunState
from pingpong.running.progress import LogTally, StatusLine, Tally, clock, format_status

from .conftest import child_env, pingpong_argv

FAST = [
    "--interval-ms", "50-300", "--delay-ms", "20-200", "--timeout-ms", "400",
    "--keepalive-s", "0.5", "--clients", "2",
]  # fmt: skip


def test_clock() -> None:
    assert clock(0) == "0:00"
    assert clock(75.4) == "1:15"
    assert clock(3725) == "1:02:05"
    assert clock(-3) == "0:00"


def test_status_in_words_when_it_fits() -> None:
    tally = Tally(answered=30, ignored=5, timeouts=4, keepalives=12)
    line = format_status(
        state=RunState.RUNNING, elapsed=12.2, duration=300, connected=2, clients=2, tally=tally,
        width=200,
    )  # fmt: skip
    assert line == (
        "0:12 elapsed · 4:48 left · clients 2/2 · requests 35 · answered 30 · ignored 5 · "
        "timeouts 4 · keepalives 12"
    )
    stopping = format_status(
        state=RunState.STOPPING, elapsed=300.4, duration=300, connected=0, clients=2, tally=tally,
        width=200,
    )  # fmt: skip
    assert stopping.startswith("5:00 elapsed · stopping… · clients 0/2 · ")


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (200, "2:31 elapsed · 2:29 left · clients 100/100 · requests 9234 · answered 8311 · "
              "ignored 923 · timeouts 923 · keepalives 30200"),
        # Narrower: keepalives go first, then the elapsed time, then the clients …
        (110, "2:31 elapsed · 2:29 left · clients 100/100 · requests 9234 · answered 8311 · "
              "ignored 923 · timeouts 923"),
        (100, "2:29 left · clients 100/100 · requests 9234 · answered 8311 · ignored 923 · "
              "timeouts 923"),
        (80, "2:29 left · requests 9234 · answered 8311 · ignored 923 · timeouts 923"),
        (60, "2:29 left · requests 9234 · answered 8311 · ignored 923"),
        (40, "2:29 left · requests 9234"),
        (20, "2:29 left"),
        (5, "2:29"),  # only then is a word cut
        (1, ""),
    ],
)  # fmt: skip
def test_status_drops_fields_before_it_fills_the_last_column(width: int, expected: str) -> None:
    tally = Tally(answered=8311, ignored=923, timeouts=923, keepalives=30200)
    line = format_status(
        state=RunState.RUNNING, elapsed=151, duration=300, connected=100, clients=100, tally=tally,
        width=width,
    )  # fmt: skip
    assert len(line) <= width - 1
    assert line == expected


def test_status_line_rewrites_itself_and_clears() -> None:
    out = io.StringIO()
    status = StatusLine(out)
    status.show("a long first line")
    status.show("short")
    status.clear()
    assert out.getvalue() == "\ra long first line\rshort            \r" + " " * 5 + "\r"


def test_tally_counts_whole_lines_as_they_come(tmp_path: Path) -> None:
    server, client = tmp_path / "server.log", tmp_path / "client1.log"
    tally = LogTally(tmp_path, clients=2)
    assert tally.poll() == Tally()  # no file yet
    server.write_text(
        "2026-11-26;13:01:02.345;[0] PING;13:01:02.977;[0/0] PONG (1)\n"
        "2026-11-26;13:01:03.100;[1] PING;(проигнорировано);(проигнорировано)\n"
        "2026-11-26;;;13:01:05.000;[1] keepalive\n"
        "2026-11-26;13:01:05.100;[2] PI",  # half a line: not yet
        encoding="utf-8",
    )
    client.write_text(
        "2026-11-26;13:01:02.344;[0] PING;13:01:02.979;[0/0] PONG (1)\n"
        "2026-11-26;13:01:03.099;[1] PING;13:01:05.099;(таймаут)\n"
        "not a log line\n",
        encoding="utf-8",
    )
    assert tally.poll() == Tally(answered=1, ignored=1, timeouts=1, keepalives=1)
    with server.open("a", encoding="utf-8") as log:
        log.write("NG;(проигнорировано);(проигнорировано)\n")
    assert tally.poll() == Tally(answered=1, ignored=2, timeouts=1, keepalives=1)
    assert tally.poll().requests == 3
    tally.close()


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_a_terminal_gets_a_live_status_line(tmp_path: Path, no_stray_processes: None) -> None:
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        pingpong_argv("run", "--duration", "3", "--runs-dir", str(tmp_path), *FAST),
        stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=child_env(),
    )  # fmt: skip
    os.close(terminal)
    output = b""
    while True:
        try:
            data = os.read(controller, 4096)
        except OSError:  # Linux: EIO once the other side is closed
            break
        if not data:
            break
        output += data
    os.close(controller)
    # 1 would be the checker's verdict on a loaded machine, not the status line's doing.
    assert process.wait(timeout=60) in (0, 1), output
    text = output.decode("utf-8")
    cut = text.index("\rrun ")  # the summary, after the wiped status line
    before, summary = text[:cut], text[cut + 1 :]
    statuses = [part for part in before.split("\r") if " left · " in part]
    assert len(statuses) >= 2, text  # updated about once a second
    assert "clients 2/2" in before
    assert before.endswith("\r" + " " * len(statuses[-1].rstrip())), text
    assert "finished (stopped by deadline)" in summary.splitlines()[0]
    assert "\n  check: " in summary


def test_a_pipe_gets_no_status_line(tmp_path: Path, no_stray_processes: None) -> None:
    result = subprocess.run(
        pingpong_argv("run", "--duration", "2", "--runs-dir", str(tmp_path), *FAST),
        capture_output=True, text=True, env=child_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 1: the checker's verdict
    assert "\n  check: " in result.stdout
    assert "\r" not in result.stdout
    assert "elapsed" not in result.stdout
    assert result.stdout.splitlines()[2].startswith("run ")  # straight to the summary
