"""``pingpong run`` end to end: real processes, real sockets, shortened timings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pingpong.checking.check import check_run
from pingpong.core.settings import MsRange, RunSettings
from pingpong.running.runner import Run, new_run_folder

from .conftest import (
    SLACK_MS,
    child_env,
    pingpong_argv,
    pingpong_processes,
    run,
    wait_until,
    wait_until_async,
)

FAST = [
    "--interval-ms", "50-300", "--delay-ms", "20-200", "--timeout-ms", "400",
    "--keepalive-s", "0.5",
]  # fmt: skip


def start_run(runs: Path, *args: str) -> subprocess.Popen[str]:
    slack = ["--slack-ms", str(SLACK_MS)]
    return subprocess.Popen(
        pingpong_argv("run", "--runs-dir", str(runs), *FAST, *slack, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def only_run(runs: Path) -> Path:
    (folder,) = runs.iterdir()
    return folder


def wait_until_running(runs: Path, requests: int) -> Path:
    """The run's folder, once every client is connected and the server logged ``requests``."""

    def running() -> Path | None:
        folders = list(runs.iterdir()) if runs.exists() else []
        if len(folders) != 1:
            return None
        try:
            state = json.loads((folders[0] / "run.json").read_text())["state"]
            logged = len((folders[0] / "server.log").read_text().splitlines())
        except OSError:  # not written yet
            return None
        return folders[0] if state == "running" and logged >= requests else None

    return wait_until(running, f"a running run with {requests} lines in server.log")


@pytest.mark.parametrize("clients", [2, 3])
def test_run_end_to_end_passes_check(
    tmp_path: Path, clients: int, no_stray_processes: None
) -> None:
    process = start_run(tmp_path, "--clients", str(clients), "--duration", "3", "--seed", "42")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, out + err
    folder = only_run(tmp_path)
    assert "check: PASS" in out
    assert f"client{clients}:" in out
    assert "round trip ms min" in out
    names = {p.name for p in folder.iterdir()}
    assert {"server.log", "run.json", *(f"client{k}.log" for k in range(1, clients + 1))} <= names
    meta = json.loads((folder / "run.json").read_text())
    assert meta["state"] == "finished"
    assert meta["stopped_by"] == "deadline"
    assert meta["check"]["ok"] is True
    assert meta["check"]["slack_ms"] == SLACK_MS  # the slack asked for
    assert [p["exit_code"] for p in meta["processes"]] == [0] * (clients + 1)
    assert len(meta["summary"]["clients"]) == clients
    assert meta["summary"]["server"]["requests"] > 10 * clients
    # The CLI checker agrees with the one the runner ran.
    check = subprocess.run(
        pingpong_argv("check", str(folder), "--slack-ms", str(SLACK_MS)),
        capture_output=True,
        text=True,
        env=child_env(),
    )
    assert check.returncode == 0, check.stdout
    assert f"check {folder}: PASS" in check.stdout


def test_sigterm_mid_run_leaves_complete_logs(tmp_path: Path, no_stray_processes: None) -> None:
    process = start_run(tmp_path, "--duration", "60")
    folder = wait_until_running(tmp_path, requests=10)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, out + err
    meta = json.loads((folder / "run.json").read_text())
    assert meta["state"] == "finished"
    assert meta["stopped_by"] == "SIGTERM"
    assert "finished (stopped by SIGTERM)" in out
    assert meta["elapsed"] < 45  # well before the 60 s deadline
    assert check_run(folder, SLACK_MS).ok  # every line whole, every request with its outcome


def test_a_second_ctrl_c_kills_the_children_at_once(
    tmp_path: Path, no_stray_processes: None
) -> None:
    # Every request is ignored and times out only after 60 s, so a graceful stop would
    # keep the clients waiting for their requests in flight for up to a minute.
    process = start_run(tmp_path, "--duration", "120", "--ignore", "1", "--timeout-ms", "60000")
    folder = wait_until_running(tmp_path, requests=4)
    children = [
        pid
        for pid, cmd in pingpong_processes().items()
        if str(folder) in cmd and pid != process.pid
    ]
    assert len(children) == 3
    process.send_signal(signal.SIGINT)

    def stopping(name: str) -> bool:
        err = folder / name
        return err.exists() and "requests in flight" in err.read_text()

    wait_until(lambda: stopping("client1.err") and stopping("client2.err"), "clients stopping")
    assert process.poll() is None  # still waiting for the clients' requests in flight
    process.send_signal(signal.SIGINT)
    again = time.monotonic()
    wait_until(
        lambda: not set(children) & set(pingpong_processes()), "the children to die", timeout=10
    )
    gone_after = time.monotonic() - again
    out, err = process.communicate(timeout=30)
    assert gone_after < 3, f"the children took {gone_after:.1f} s to go"
    assert process.returncode == 1, out + err
    meta = json.loads((folder / "run.json").read_text())
    assert meta["state"] == "failed"
    assert meta["stopped_by"] == "SIGINT"
    assert meta["error"] == "a second SIGINT stopped the run at once, killing its processes"
    assert [p["killed"] for p in meta["processes"]] == [True, True, True]
    assert "failed (stopped by SIGINT)" in out
    report = check_run(folder, SLACK_MS)
    rules = {rule.name: rule for rule in report.rules}
    assert rules["format"].ok, rules["format"].findings  # killed, yet no half-written line


def test_killed_runner_leaves_no_process(tmp_path: Path, no_stray_processes: None) -> None:
    process = start_run(tmp_path, "--duration", "60", "--clients", "3")
    folder = wait_until_running(tmp_path, requests=10)
    children = [
        pid
        for pid, cmd in pingpong_processes().items()
        if str(folder) in cmd and pid != process.pid
    ]
    assert len(children) == 4
    process.kill()  # no chance to clean up: the children must notice by themselves
    process.communicate(timeout=10)
    wait_until(lambda: not set(children) & set(pingpong_processes()), "the children to exit")
    report = check_run(folder)
    rules = {rule.name: rule for rule in report.rules}
    assert rules["format"].ok, rules["format"].findings  # no half-written line
    assert rules["requests"].ok, rules["requests"].findings  # every request has its outcome


def test_a_dead_client_fails_the_run(tmp_path: Path, no_stray_processes: None) -> None:
    settings = RunSettings(
        clients=2, duration=30, interval_ms=MsRange(50, 200), delay_ms=MsRange(10, 100),
        timeout_ms=300, keepalive_s=0.5,
    )  # fmt: skip

    async def scenario() -> dict[str, Any]:
        the_run = Run(settings, new_run_folder(tmp_path))
        await the_run.start()
        victim = the_run.processes[2]
        assert victim.role == "client2"
        assert victim.pid is not None
        victim_log = the_run.folder / "client2.log"
        await wait_until_async(
            lambda: victim_log.exists() and victim_log.read_text().count("\n") >= 3,
            "client2 to log its first requests",
        )
        os.kill(victim.pid, signal.SIGKILL)
        started = time.monotonic()
        result = await the_run.wait()
        assert time.monotonic() - started < 20  # noticed at once, not at the 30 s deadline
        return result

    result = run(scenario())
    assert result["state"] == "failed"
    assert result["stopped_by"] == "failure"
    assert "client2" in str(result["error"])
    assert "client2 (pid " in str(result["error"])
    assert ") was killed by signal 9 (SIGKILL); last lines of its stderr: " in str(result["error"])
    codes = {p["role"]: p["exit_code"] for p in result["processes"]}
    assert codes == {"server": 0, "client1": 0, "client2": -9}


def test_run_folders_are_never_reused(tmp_path: Path) -> None:
    now = datetime(2026, 11, 26, 13, 1, 2)
    names = [new_run_folder(tmp_path, now).name for _ in range(3)]
    assert names == ["2026-11-26_13-01-02", "2026-11-26_13-01-02-2", "2026-11-26_13-01-02-3"]


def test_log_dir_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "server.log").write_text("old\n")
    result = subprocess.run(
        pingpong_argv("run", "--log-dir", str(tmp_path), "--duration", "1"),
        capture_output=True, text=True, env=child_env(),
    )  # fmt: skip
    assert result.returncode == 2
    assert "already holds server.log" in result.stderr
    assert (tmp_path / "server.log").read_text() == "old\n"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="lists open files through /proc")
def test_polling_an_ended_run_opens_no_file(tmp_path: Path, no_stray_processes: None) -> None:
    """The dashboard polls a run's diagnostics until it is checked, after its stop."""
    settings = RunSettings(
        clients=1, duration=1, interval_ms=MsRange(50, 200), delay_ms=MsRange(10, 100),
        timeout_ms=300, keepalive_s=0.5,
    )  # fmt: skip
    folder = new_run_folder(tmp_path)

    def open_in_folder() -> list[str]:
        targets = []
        for fd in Path("/proc/self/fd").iterdir():
            try:
                targets.append(os.readlink(fd))
            except OSError:
                continue  # closed meanwhile (the listing's own descriptor)
        return [target for target in targets if target.startswith(str(folder))]

    async def scenario() -> list[str]:
        the_run = Run(settings, folder)
        await the_run.start()
        await the_run.wait()
        the_run.poll_diagnostics()
        return open_in_folder()

    assert run(scenario()) == []
