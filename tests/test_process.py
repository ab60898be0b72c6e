"""One child process: output to files, stop by closing stdin, kill when it overstays."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pingpong.process import ChildProcess, tail

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
