"""Shared fixtures: an in-process server on a real loopback socket, process hygiene, waits.

Tests wait for conditions (a log line, a diagnostic, a state), never for a fixed time:
:func:`wait_until` and :func:`wait_until_async` return as soon as the condition holds,
and their timeouts are generous, for a loaded 2-core machine.
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
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pingpong.check import check_run
from pingpong.logfile import LogWriter
from pingpong.process import child_environment
from pingpong.server import Server
from pingpong.settings import MsRange, ServerSettings

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


#: How long a wait for a condition may take before the test fails.
WAIT_S = 30.0
#: How late a timer may fire on a loaded machine: the margin of a bound that only guesses
#: at the wall clock (an upper bound on a delay), chosen well short of what the test
#: tells apart (a delay that waited behind others, a stop that waited for a deadline).
LATE_MS = 500
#: The checker's timing slack for the runs the tests make. The default, 20 ms, is for a
#: machine doing nothing else; on a loaded one, timers fire up to tens of milliseconds
#: late. What the tests corrupt in a run is far larger.
SLACK_MS = 100


def wait_until(
    condition: Callable[[], T | None], what: str, timeout: float = WAIT_S, interval: float = 0.02
) -> T:
    """Poll ``condition`` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(interval)


async def wait_until_async(
    condition: Callable[[], T | None], what: str, timeout: float = WAIT_S, interval: float = 0.01
) -> T:
    """:func:`wait_until` inside an event loop, which keeps running meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        await asyncio.sleep(interval)


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


def assert_checked(recorded: object, folder: Path) -> None:
    """``recorded`` is the checker's verdict on the run in ``folder``, and the run is right.

    The dashboard checks with the default slack, which a loaded machine may exceed, so
    the run itself is judged with :data:`SLACK_MS`.
    """
    assert recorded == check_run(folder).to_json()
    report = check_run(folder, SLACK_MS)
    assert report.ok, report.format()


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

    def left() -> dict[int, str]:
        return {pid: cmd for pid, cmd in pingpong_processes().items() if pid not in before}

    with contextlib.suppress(AssertionError):
        wait_until(lambda: not left(), "the test's processes to exit", timeout=15)
    stray = left()
    if not stray:
        return
    for pid in stray:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    pytest.fail(f"processes left behind: {sorted(stray.values())}")


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

    def status(self) -> dict[str, Any]:
        _code, status = self.request("GET", "/api/status")
        assert isinstance(status, dict)
        return status

    def wait_for_state(self, *states: str, timeout: float = WAIT_S) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status()
            return status if status["state"] in states else None

        return wait_until(reached, f"the state to become one of {states}", timeout)

    def wait_for_requests(self, count: int) -> dict[str, Any]:
        """The status once the run's server has logged ``count`` requests."""

        def reached() -> dict[str, Any] | None:
            status = self.status()
            counters = status["counters"]
            return status if counters and counters["server"]["requests"] >= count else None

        return wait_until(reached, f"{count} requests in server.log")


def start_dashboard(runs_dir: Path, log: Path, port: int = 0) -> Dashboard:
    env = child_env()
    env["PINGPONG_RUNS_DIR"] = str(runs_dir)
    with open(log, "wb") as stderr:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=ROOT,
        )  # fmt: skip
    running = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
    try:
        wait_until(
            lambda: running.search(log.read_text()) or process.poll() is not None,
            "uvicorn to start",
        )
        match = running.search(log.read_text())
        if match is None:
            raise AssertionError(f"uvicorn did not start: {log.read_text()}")
    except BaseException:
        process.kill()
        process.wait()
        raise
    return Dashboard(process, int(match[1]), runs_dir, log)


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
