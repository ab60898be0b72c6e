"""One child process: output to files, stop by closing stdin, kill when it overstays."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from pingpong.running.process import ChildProcess, how_it_ended, tail

from .conftest import run

WAITS_FOR_STDIN = "import sys; sys.stdin.read(); print('bye'); sys.stderr.write('done')"
IGNORES_STDIN = "import time; time.sleep(30)"


def test_closing_stdin_stops_it(tmp_path: Path) -> None:
    async def scenario() -> int:
        child = ChildProcess("client1", [sys.executable, "-c", WAITS_FOR_STDIN], tmp_path)
        await child.spawn()
        assert child.state == "running"
        assert child.pid is not None
        child.ask_to_stop()
        return await child.wait(10)

    assert run(scenario()) == 0
    assert (tmp_path / "client1.out").read_text().strip() == "bye"
    assert tail(tmp_path / "client1.err") == "done"


def test_a_child_that_overstays_is_killed(tmp_path: Path) -> None:
    async def scenario() -> ChildProcess:
        child = ChildProcess("server", [sys.executable, "-c", IGNORES_STDIN], tmp_path)
        await child.spawn()
        child.ask_to_stop()
        await child.wait(0.5)
        return child

    child = run(scenario())
    assert child.killed
    assert child.exit_code == -9
    assert child.describe()["state"] == "exited"


def test_a_second_kill_sends_nothing(tmp_path: Path) -> None:
    # A second Ctrl+C kills every child, then the shutdown kills them again. A second
    # signal polls the child first, which could reap it before asyncio's watcher does;
    # asyncio then reports exit code 255 and the kill is not seen (a CI run showed it).
    async def scenario() -> tuple[ChildProcess, int]:
        child = ChildProcess("server", [sys.executable, "-c", IGNORES_STDIN], tmp_path)
        await child.spawn()
        assert child.process is not None
        sent = 0
        kill = child.process.kill

        def counted() -> None:
            nonlocal sent
            sent += 1
            kill()

        child.process.kill = counted  # type: ignore[method-assign]
        child.kill()
        child.kill()
        await child.wait(10)
        child.kill()
        return child, sent

    child, sent = run(scenario())
    assert sent == 1
    assert child.killed
    assert child.exit_code == -9


def test_tail_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert tail(tmp_path / "nope.err") == ""
    (tmp_path / "big.err").write_text("x" * 5000 + "END")
    assert tail(tmp_path / "big.err", limit=10) == "xxxxxxxEND"


def test_a_child_that_cannot_start_leaves_no_open_file(tmp_path: Path) -> None:
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("counts open files through /proc")

    async def scenario() -> None:
        child = ChildProcess("server", [str(tmp_path / "no-such-program")], tmp_path)
        with pytest.raises(FileNotFoundError):
            await child.spawn()
        assert child.state == "starting"

    before = len(list(fds.iterdir()))
    run(scenario())
    assert len(list(fds.iterdir())) == before


@pytest.mark.skipif(not hasattr(os, "waitid"), reason="waits without reaping through waitid")
def test_a_child_that_exited_before_the_kill_landed_is_not_killed(tmp_path: Path) -> None:
    # A second Ctrl+C kills every child still there; one that had just exited 0 on its
    # own, but that the event loop had not reaped yet, keeps its exit 0 and is not killed.
    async def scenario() -> ChildProcess:
        child = ChildProcess("client1", [sys.executable, "-c", "pass"], tmp_path)
        await child.spawn()
        assert child.pid is not None
        pid = child.pid

        # Wait until it has exited and asyncio's child watcher thread has reaped it, with
        # no await in between, so the event loop has not been told yet.
        def reaped() -> bool:
            try:
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return True
            return False

        deadline = time.monotonic() + 5
        while not reaped():
            if time.monotonic() > deadline:
                pytest.skip("this event loop reaps its children itself (no watcher thread)")
            time.sleep(0.001)  # noqa: ASYNC251 - the loop must not run before the kill
        assert child.process is not None
        assert child.process.returncode is None
        child.kill()
        await child.wait(10)
        return child

    child = run(scenario())
    assert child.exit_code == 0
    assert not child.killed
    assert child.describe()["killed"] is False


def test_how_a_process_ended_in_words() -> None:
    assert how_it_ended(0) == "exited with code 0"
    assert how_it_ended(3) == "exited with code 3"
    if sys.platform != "win32":
        assert how_it_ended(-9) == "was killed by signal 9 (SIGKILL)"
        assert how_it_ended(-15) == "was killed by signal 15 (SIGTERM)"
    assert how_it_ended(-200) == "was killed by signal 200"
