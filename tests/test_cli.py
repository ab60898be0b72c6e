"""The command line: options of SPEC §8, one-line errors with status 2 before anything starts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pingpong.__main__ import main

from .conftest import child_env, pingpong_argv


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--delay-ms", "900-100"], "--delay-ms: must satisfy 0 <= min <= max"),
        (["run", "--ignore", "1.5"], "--ignore: must be between 0 and 1, got 1.5"),
        (["run", "--timeout-ms", "1000"], "--timeout-ms: must be greater than the delay maximum"),
        (["run", "--clients", "0"], "--clients: must be between 1 and 100"),
        (["run", "--interval-ms", "abc"], "expected MIN-MAX in milliseconds"),
        (["run", "--interval-ms", "5-10"], "10 <= min <= max <= 60000"),
        (["run", "--duration", "0"], "--duration: must be between 1 and 86400"),
        (["server", "--keepalive-s", "0"], "--keepalive-s: must be between 0.1 and 3600"),
        (["server", "--port", "70000"], "--port: must be between 0 and 65535"),
        (["client", "--timeout-ms", "0"], "--timeout-ms: must be between 1"),
        (["run", "--clients", "two"], "invalid int value"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_invalid_options_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = [*args, *(["--runs-dir", str(tmp_path)] if args[0] == "run" else [])]
    try:
        code: object = main(argv)
    except SystemExit as exited:  # argparse's own errors exit; ours return the status
        code = exited.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())  # nothing started, nothing written


def test_zero_delay_and_ignore_are_valid(tmp_path: Path) -> None:
    result = subprocess.run(
        pingpong_argv(
            "run", "--delay-ms", "0-0", "--ignore", "0", "--duration", "1", "--clients", "1",
            "--interval-ms", "20-40", "--timeout-ms", "500", "--runs-dir", str(tmp_path),
        ),
        capture_output=True, text=True, env=child_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 ignored (0.0 %)" in result.stdout


def test_help_lists_every_command() -> None:
    result = subprocess.run(
        pingpong_argv("--help"), capture_output=True, text=True, env=child_env()
    )
    assert "{run,server,client,check,bench,simulate}" in result.stdout
