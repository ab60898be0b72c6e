"""Faults from outside: a full disk, a read-only runs folder, a port in use, a signal.

Each process gives up the same way: exit status 1 and one line on stderr saying what
failed, nothing left behind, memory flat. Where a real fault can be made, it is: a
tiny tmpfs (root on Linux; skipped elsewhere), a port held by a listening socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from pingpong.core.settings import ClientSettings, MsRange, ServerSettings
from pingpong.net.client import Client
from pingpong.net.lifecycle import SUPERVISED_ENV, Stop, StopKind, StopReason
from pingpong.net.logfile import LogWriter
from pingpong.net.server import Server
from pingpong.running.runner import write_json

from .conftest import child_env, fill_disk, pingpong_argv, run, small_disk
from .test_client import Handler, answer_all, port_of, start_fake, stop_fake

NO_SPACE = "[Errno 28] No space left on device"
FAST = [
    "--interval-ms", "50-300", "--delay-ms", "20-200", "--timeout-ms", "400",
    "--keepalive-s", "0.5",
]  # fmt: skip


class FullDisk(LogWriter):
    """A log whose disk fills up after ``room`` writes: then every write fails, as the OS says."""

    def __init__(self, path: Path, room: int) -> None:
        super().__init__(path)
        self.room = room
        self.refused = 0
        self.accepted = 0  # lines written

    def write_line(self, line: str) -> None:
        if self.room == 0:
            self.refused += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= 1
        super().write_line(line)
        self.accepted += line.count("\n")


@pytest.fixture
def port_in_use() -> Iterator[int]:
    """A loopback port some other program is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def run_json(folder: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    return data


def errs(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(folder.glob("*.err")))


# -- the server's log ---------------------------------------------------------------


def test_server_gives_up_when_its_log_cannot_be_written(tmp_path: Path) -> None:
    """Memory stays flat, nothing reaches a client unlogged, the reason is kept."""
    settings = ServerSettings(
        port=0, log_file=str(tmp_path / "server.log"), delay_ms=MsRange(0, 0), ignore=0.0,
        keepalive_s=3600, seed=1,
    )  # fmt: skip

    async def scenario() -> tuple[Server, int, int]:
        log = FullDisk(tmp_path / "server.log", room=3)
        err = io.StringIO()
        server = Server(settings, log, out=io.StringIO(), err=err)
        _host, port = await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            batch = 0
            while not server.failed.is_set():  # one batch a loop iteration, one flush each
                assert batch < 100, "the log never failed"
                writer.write(b"".join(b"[%d] PING\n" % (batch * 100 + k) for k in range(100)))
                await writer.drain()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(server.failed.wait(), 0.05)
                batch += 1
            # Requests keep coming after the log failed; a bad line marks their end.
            writer.write(b"".join(b"[%d] PING\n" % k for k in range(1000, 3000)) + b"bad\n")
            await writer.drain()
            while "not answered" not in err.getvalue():  # noqa: ASYNC110 - a StringIO
                await asyncio.sleep(0.01)
            pending = len(server.session.log_text())  # what would pile up in memory
        finally:
            await server.abort()
        received = len(await reader.read())  # everything it was sent, up to the close
        writer.close()
        return server, pending, received

    server, pending, received = run(scenario())
    assert server.failure == f"cannot write log {tmp_path / 'server.log'}: {NO_SPACE}"
    assert pending == 0
    logged = (tmp_path / "server.log").read_bytes()
    assert logged.endswith(b"\n")
    # Each PONG line on the wire is in the log: the log is written before the sockets.
    assert received == sum(len(line.rsplit(";", 1)[1]) + 1 for line in logged.decode().splitlines())


def test_server_process_on_a_full_disk_exits_1_with_one_line(
    tmp_path: Path, no_stray_processes: None
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        log = disk / "server.log"
        process = subprocess.Popen(
            pingpong_argv("server", "--port", "0", "--log-file", str(log), "--delay-ms", "0-0",
                          "--ignore", "0"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), text=True,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            port = int(process.stdout.readline().rsplit(":", 1)[1])

            async def flood() -> None:
                """Eight fast clients, until the server goes away."""

                async def one(number: int) -> None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    with contextlib.suppress(OSError):  # the server gave up
                        for batch in range(10_000):
                            writer.write(
                                b"".join(b"[%d] PING\n" % (batch * 50 + k) for k in range(50))
                            )
                            await writer.drain()
                            if not await reader.read(1 << 16):
                                break
                    writer.close()

                await asyncio.gather(*(one(n) for n in range(8)))

            started = time.monotonic()
            run(flood())
            _out, err = process.communicate(timeout=20)
            seconds = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        data = log.read_bytes()
    assert process.returncode == 1, err
    assert err == f"pingpong server: cannot write log {log}: {NO_SPACE}\n"
    assert seconds < 15
    assert data.endswith(b"\n")  # a torn last line was cut off again


# -- the client's log -------------------------------------------------------------------


def silent() -> Handler:
    """A fake server that reads every request and answers none: each one times out."""

    async def handler(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        while await reader.readline():
            pass

    return handler


@pytest.mark.parametrize("outcome", ["answered", "timed out"])
def test_client_gives_up_when_its_log_cannot_be_written(tmp_path: Path, outcome: str) -> None:
    """Not a lost connection: no reconnect, no wait for the stop, the reason kept."""

    async def scenario() -> tuple[Client, str, float, FullDisk]:
        fake = await start_fake(answer_all(0.01) if outcome == "answered" else silent())
        settings = ClientSettings(
            port=port_of(fake), log_file=str(tmp_path / "client1.log"),
            interval_ms=MsRange(20, 20), timeout_ms=100, seed=1,
        )  # fmt: skip
        err = io.StringIO()
        log = FullDisk(tmp_path / "client1.log", room=5)
        client = Client(settings, log, err=err)
        stop = Stop()
        asyncio.get_running_loop().call_later(30, stop.request, StopReason(StopKind.DURATION))
        started = time.monotonic()
        await client.run(stop)
        seconds = time.monotonic() - started
        await stop_fake(fake)
        return client, err.getvalue(), seconds, log

    client, err, seconds, log = run(scenario())
    assert client.failure == f"cannot write log {tmp_path / 'client1.log'}: {NO_SPACE}"
    assert seconds < 5  # gave up at once, not at the end of its duration
    assert err.count("connected to") == 1  # never took the log for the connection
    assert "reconnecting" not in err
    # One write a loop iteration, however many lines: five went in, the sixth failed, no more.
    assert log.refused == 1
    assert len((tmp_path / "client1.log").read_text(encoding="utf-8").splitlines()) == log.accepted


def test_client_process_on_a_full_disk_exits_1_with_one_line(
    tmp_path: Path, no_stray_processes: None
) -> None:
    server = subprocess.Popen(
        pingpong_argv("server", "--port", "0", "--log-file", str(tmp_path / "server.log"),
                      "--delay-ms", "0-0", "--ignore", "0"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=child_env(), text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        port = server.stdout.readline().rsplit(":", 1)[1].strip()
        with small_disk(tmp_path / "disk") as disk:
            fill_disk(disk, room=4096)
            log = disk / "client1.log"
            started = time.monotonic()
            client = subprocess.run(
                pingpong_argv("client", "--port", port, "--log-file", str(log),
                              "--interval-ms", "10-10", "--duration", "40"),
                capture_output=True, text=True, env=child_env(), timeout=30,
            )  # fmt: skip
            seconds = time.monotonic() - started
            data = log.read_bytes()
    finally:
        server.terminate()
        server.communicate(timeout=10)
    assert client.returncode == 1, client.stderr
    assert client.stderr.splitlines()[-1] == f"pingpong client: cannot write log {log}: {NO_SPACE}"
    assert "reconnecting" not in client.stderr
    assert "Traceback" not in client.stderr
    assert seconds < 20
    assert data.endswith(b"\n")


# -- the runner ----------------------------------------------------------------------


def test_port_in_use_fails_the_run_with_the_servers_line(
    tmp_path: Path, port_in_use: int, no_stray_processes: None
) -> None:
    result = subprocess.run(
        pingpong_argv("run", "--runs-dir", str(tmp_path), "--port", str(port_in_use),
                      "--duration", "5"),
        capture_output=True, text=True, env=child_env(), timeout=60,
    )  # fmt: skip
    line = f"pingpong server: cannot listen on 127.0.0.1:{port_in_use}: address already in use"
    assert result.returncode == 1, result.stdout + result.stderr
    (folder,) = tmp_path.iterdir()
    assert "Fatal Python error" not in errs(folder) + result.stderr
    assert (folder / "server.err").read_text() == line + "\n"
    meta = run_json(folder)
    assert meta["state"] == "failed"
    assert meta["error"] == line
    assert meta["check"] is None
    assert meta["check_not_run"] == "the server never started"
    assert [(p["role"], p["exit_code"]) for p in meta["processes"]] == [("server", 1)]  # type: ignore[attr-defined]
    assert f"error: {line}" in result.stdout
    assert "check: not run (the server never started)" in result.stdout


def test_supervised_server_with_its_port_taken_exits_1_without_abort(
    tmp_path: Path, port_in_use: int
) -> None:
    """Its stdin an open pipe, as under the runner: the thread watching it must not
    hold up the interpreter's exit (it used to abort: SIGABRT, "Fatal Python error")."""
    env = child_env() | {SUPERVISED_ENV: "1"}
    where = f"127.0.0.1:{port_in_use}"
    for _ in range(3):
        process = subprocess.Popen(
            pingpong_argv("server", "--port", str(port_in_use), "--log-file",
                          str(tmp_path / "server.log")),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            text=True,
        )  # fmt: skip
        try:
            _out, err = process.communicate(timeout=30)  # communicate closes stdin only at the end
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 1, err
        assert err == f"pingpong server: cannot listen on {where}: address already in use\n"


def test_sigterm_to_the_server_mid_run(tmp_path: Path, no_stray_processes: None) -> None:
    """The server stops cleanly (exit 0, no abort); a process that leaves before the
    run asks it to fails the run, whatever its exit code."""
    runner = subprocess.Popen(
        pingpong_argv("run", "--runs-dir", str(tmp_path), "--duration", "60", *FAST),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        meta: dict[str, object] = {}
        while time.monotonic() < deadline and meta.get("state") != "running":
            folders = list(tmp_path.iterdir())
            with contextlib.suppress(OSError, ValueError):
                meta = run_json(folders[0]) if folders else {}
            time.sleep(0.05)
        assert meta.get("state") == "running"
        server_pid = meta["processes"][0]["pid"]  # type: ignore[index]
        os.kill(server_pid, signal.SIGTERM)
        out, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 1, out + err
    folder = folders[0]
    assert "Fatal Python error" not in errs(folder)
    meta = run_json(folder)
    codes = {p["role"]: p["exit_code"] for p in meta["processes"]}  # type: ignore[attr-defined]
    assert codes == {"server": 0, "client1": 0, "client2": 0}
    assert meta["state"] == "failed"
    assert meta["stopped_by"] == "failure"
    assert str(meta["error"]).startswith(
        f"server (pid {server_pid}) exited with code 0; last lines of its stderr: "
    )
    assert "stopping (signal SIGTERM)" in str(meta["error"])


def test_run_on_a_full_disk(tmp_path: Path, no_stray_processes: None) -> None:
    """Every child stopped, run.json whole (or the previous one), no temporary file,
    no torn log line, no traceback; one line says what failed; exit status 1."""
    with small_disk(tmp_path / "disk") as disk:
        result = subprocess.run(
            pingpong_argv("run", "--runs-dir", str(disk), "--clients", "8", "--duration", "60",
                          "--interval-ms", "10-20", "--delay-ms", "0-5", "--timeout-ms", "200"),
            capture_output=True, text=True, env=child_env(), timeout=90,
        )  # fmt: skip
        (folder,) = disk.iterdir()
        names = {p.name for p in folder.iterdir()}
        meta = run_json(folder)
        logs = {p.name: p.read_bytes() for p in folder.glob("*.log")}
        child_errs = errs(folder)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + child_errs
    assert "Fatal Python error" not in child_errs
    assert "run.tmp" not in names
    assert all(data.endswith(b"\n") for data in logs.values() if data), logs.keys()
    elapsed = re.search(r": failed \(stopped by failure\), ([0-9.]+) s\n", result.stdout)
    assert elapsed, result.stdout
    assert float(elapsed[1]) < 30  # stopped by the failure, long before its duration
    if meta["state"] == "failed":  # the final run.json fitted
        assert meta["error"]
    else:  # it did not: the file is the last one written whole, and the runner says why
        assert meta["state"] in ("starting", "running")
        (line,) = [x for x in result.stderr.splitlines() if "run.json" in x]
        assert line == f"pingpong run: cannot write {folder / 'run.json'}: {NO_SPACE}"


def test_write_json_on_a_full_disk_keeps_the_old_file(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        path = disk / "run.json"
        write_json(path, {"state": "running"})
        fill_disk(disk)
        with pytest.raises(OSError, match="No space left"):
            write_json(path, {"state": "finished", "pad": "x" * 10_000})
        assert json.loads(path.read_text()) == {"state": "running"}
        assert not (disk / "run.tmp").exists()


@pytest.mark.parametrize("place", ["read-only", "a file"])
def test_run_in_an_unwritable_runs_folder_exits_2(tmp_path: Path, place: str) -> None:
    with contextlib.ExitStack() as stack:
        if place == "read-only":
            runs = stack.enter_context(small_disk(tmp_path / "ro", read_only=True))
            reason = "[Errno 30] Read-only file system"
        else:
            runs = tmp_path / "runs"
            runs.write_text("not a folder")
            reason = "[Errno 17] File exists"
        result = subprocess.run(
            pingpong_argv("run", "--runs-dir", str(runs), "--duration", "5"),
            capture_output=True, text=True, env=child_env(), timeout=30,
        )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"pingpong run: error: cannot create a run folder in {runs}: {reason}\n"


def test_run_into_a_read_only_log_dir_exits_2(tmp_path: Path) -> None:
    with small_disk(tmp_path / "ro", read_only=True) as folder:
        result = subprocess.run(
            pingpong_argv("run", "--log-dir", str(folder), "--duration", "5"),
            capture_output=True, text=True, env=child_env(), timeout=30,
        )  # fmt: skip
    assert result.returncode == 2
    reason = "[Errno 30] Read-only file system"
    assert result.stderr == f"pingpong run: error: cannot write {folder / 'run.json'}: {reason}\n"


@pytest.mark.parametrize("place", ["read-only", "a file"])
def test_dashboard_start_in_an_unwritable_runs_folder_is_503(
    tmp_path: Path, place: str, no_stray_processes: None
) -> None:
    with contextlib.ExitStack() as stack:
        if place == "read-only":
            runs = stack.enter_context(small_disk(tmp_path / "ro", read_only=True))
            reason = "[Errno 30] Read-only file system"
        else:
            runs = tmp_path / "runs"
            runs.write_text("not a folder")
            reason = "[Errno 17] File exists"
        client = stack.enter_context(TestClient(create_app(runs), base_url="http://localhost"))
        response = client.post("/api/start", json={"duration": 5})
        status = client.get("/api/status").json()
    assert response.status_code == 503
    assert response.json() == {"detail": f"cannot create a run folder in {runs}: {reason}"}
    assert status["state"] == "idle"


def test_dashboard_run_with_its_port_taken_fails_with_the_servers_line(
    tmp_path: Path, port_in_use: int, no_stray_processes: None
) -> None:
    with TestClient(create_app(tmp_path / "runs"), base_url="http://localhost") as client:
        response = client.post("/api/start", json={"port": port_in_use, "duration": 5})
        assert response.status_code == 202
        deadline = time.monotonic() + 30
        status = client.get("/api/status").json()
        while status["state"] not in ("finished", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            status = client.get("/api/status").json()
    assert status["state"] == "failed"
    line = f"pingpong server: cannot listen on 127.0.0.1:{port_in_use}: address already in use"
    assert status["run"]["error"] == line
    assert status["run"]["check_not_run"] == "the server never started"
    (folder,) = (tmp_path / "runs").iterdir()
    assert "Fatal Python error" not in errs(folder)


class FullStream(io.StringIO):
    """A stderr on a full disk."""

    def write(self, _text: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_client_whose_stderr_cannot_be_written_keeps_going(tmp_path: Path) -> None:
    """Its warnings are lost; its log, the record that matters, is complete."""

    async def scenario() -> int:
        fake = await start_fake(answer_all(0.01))
        settings = ClientSettings(
            port=port_of(fake), log_file=str(tmp_path / "client1.log"),
            interval_ms=MsRange(50, 50), timeout_ms=300, seed=1,
        )  # fmt: skip
        with LogWriter(settings.log_file) as log:
            client = Client(settings, log, err=FullStream())
            stop = Stop()
            asyncio.get_running_loop().call_later(0.5, stop.request, StopReason(StopKind.DURATION))
            await client.run(stop)
        await stop_fake(fake)
        return client.sent

    sent = run(scenario())
    lines = (tmp_path / "client1.log").read_text(encoding="utf-8").splitlines()
    assert sent >= 5
    assert len(lines) == sent  # one answer each
