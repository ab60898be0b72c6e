"""Shared fixtures: an in-process server on a real loopback socket, process hygiene."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pingpong.logfile import LogWriter
from pingpong.process import child_environment
from pingpong.server import Server
from pingpong.settings import MsRange, ServerSettings

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


def run(coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
    """Run a coroutine in a fresh loop, failing on any error the loop reports."""
    errors: list[dict[str, Any]] = []

    async def main() -> T:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        return await asyncio.wait_for(coro, timeout)

    result = asyncio.run(main())
    assert not errors, f"the event loop reported errors: {errors}"
    return result


@dataclass
class RunningServer:
    server: Server
    port: int
    log_path: Path
    out: io.StringIO
    err: io.StringIO

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8").splitlines()


@asynccontextmanager
async def serving(
    tmp_path: Path,
    *,
    delay_ms: tuple[int, int] = (0, 0),
    ignore: float = 0.0,
    keepalive_s: float = 3600,
    seed: int | None = 1,
) -> AsyncIterator[RunningServer]:
    settings = ServerSettings(
        port=0,
        log_file=str(tmp_path / "server.log"),
        delay_ms=MsRange(*delay_ms),
        ignore=ignore,
        keepalive_s=keepalive_s,
        seed=seed,
    )
    out, err = io.StringIO(), io.StringIO()
    with LogWriter(settings.log_file) as log:
        server = Server(settings, log, out=out, err=err)
        _host, port = await server.start()
        try:
            yield RunningServer(server, port, Path(settings.log_file), out, err)
        finally:
            await server.stop()


def pingpong_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pingpong", *args]


def child_env() -> dict[str, str]:
    """The environment of a child that imports this checkout's pingpong."""
    return child_environment()


#: Marks every process this test session starts, however deep: children inherit it.
#: Process checks look only at processes that carry this session's own value, so the
#: suite never sees (let alone kills) a user's runs, dashboards or another suite's processes.
TEST_SESSION_ENV = "PINGPONG_TEST_SESSION"
os.environ[TEST_SESSION_ENV] = f"{os.getpid()}-{time.time_ns()}"


def _session_marker() -> bytes:
    return f"{TEST_SESSION_ENV}={os.environ[TEST_SESSION_ENV]}".encode()


def pingpong_processes() -> dict[int, str]:
    """This session's live ``python -m pingpong …`` processes: pid → command line (Linux /proc)."""
    marker = _session_marker()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if not (b"-m" in argv and b"pingpong" in argv):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if state != "Z" and marker in environ:
            found[int(entry.name)] = " ".join(a.decode(errors="replace") for a in argv)
    return found


@pytest.fixture
def no_stray_processes() -> Iterator[None]:
    """Fail if the test leaves one of its own pingpong processes behind (and kill it)."""
    before = set(pingpong_processes())
    yield
    left: dict[int, str] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = {pid: cmd for pid, cmd in pingpong_processes().items() if pid not in before}
        if not left:
            return
        time.sleep(0.05)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    pytest.fail(f"processes left behind: {sorted(left.values())}")


@dataclass
class Dashboard:
    """A real ``uvicorn app.main:app`` on a free loopback port."""

    process: subprocess.Popen[bytes]
    port: int
    runs_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"content-type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def wait_for_state(self, *states: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            _code, status = self.request("GET", "/api/status")
            if status["state"] in states:
                return status
            time.sleep(0.05)
        raise AssertionError(f"state never became {states}: {status.get('state')}")


def start_dashboard(runs_dir: Path, log: Path, port: int = 0) -> Dashboard:
    env = child_env()
    env["PINGPONG_RUNS_DIR"] = str(runs_dir)
    with open(log, "wb") as stderr:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=ROOT,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", log.read_text())
        if match:
            return Dashboard(process, int(match[1]), runs_dir, log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"uvicorn did not start: {log.read_text()}")


def stop_dashboard(dashboard: Dashboard) -> None:
    if dashboard.process.poll() is None:
        dashboard.process.send_signal(signal.SIGTERM)
        try:
            dashboard.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            dashboard.process.kill()
            dashboard.process.wait()


@pytest.fixture
def dashboard(tmp_path: Path, no_stray_processes: None) -> Iterator[Dashboard]:
    running = start_dashboard(tmp_path / "runs", tmp_path / "uvicorn.log")
    try:
        yield running
    finally:
        stop_dashboard(running)


@contextlib.contextmanager
def small_disk(path: Path, size: str = "64k", *, read_only: bool = False) -> Iterator[Path]:
    """A real, tiny file system (tmpfs) mounted on ``path``: full disks, read-only folders.

    Mounting needs root on Linux; anywhere else the test is skipped. Always unmounted.
    """
    if sys.platform != "linux" or getattr(os, "geteuid", lambda: -1)() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mount = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)]
    try:
        mounted = subprocess.run(mount, capture_output=True, text=True, timeout=30)
    except OSError as exc:
        pytest.skip(f"cannot mount a tmpfs: {exc}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(path)], capture_output=True)


def fill_disk(disk: Path, room: int = 0) -> None:
    """Fill ``disk`` up, then give back ``room`` bytes (rounded to the disk's pages)."""
    with open(disk / "filler", "wb", buffering=0) as filler:
        full = False
        while not full:
            try:
                filler.write(b"\0" * 4096)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                full = True
        if room:
            filler.truncate(max(0, filler.tell() - room))
