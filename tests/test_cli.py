"""The command line: options built from the settings, one line per invalid option and status 2
before anything starts, help a person can read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pingpong.__main__ import _parser, _settings, main
from pingpong.core.settings import MsRange, RunSettings

from .conftest import ROOT, SLACK_MS, child_env, pingpong_argv


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[object, str, str]:
    try:
        code: object = main(args)
    except SystemExit as exited:  # argparse's own errors exit; ours return the status
        code = exited.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["run", "--delay-ms", "900-100"], "pingpong run: error: argument --delay-ms: "
         "min must not be above max"),
        (["run", "--ignore", "1.5"], "pingpong run: error: argument --ignore: "
         "must be a number from 0 to 1"),
        (["run", "--timeout-ms", "1000"], "pingpong run: error: argument --timeout-ms: "
         "must be above the server delay maximum (1000 ms)"),
        (["run", "--delay-ms", "0-2500"], "pingpong run: error: argument --delay-ms: "
         "max must be below the timeout (2000 ms)"),
        (["run", "--clients", "0"], "pingpong run: error: argument --clients: "
         "must be a whole number from 1 to 100"),
        (["run", "--clients", "two"], "pingpong run: error: argument --clients: "
         "must be a whole number from 1 to 100"),
        (["run", "--interval-ms", "abc"], "pingpong run: error: argument --interval-ms: "
         "must be MIN-MAX in milliseconds, like 300-3000"),
        (["run", "--interval-ms", "5-10"], "pingpong run: error: argument --interval-ms: "
         "min and max must be whole numbers of milliseconds from 10 to 60000"),
        (["run", "--duration", "0"], "pingpong run: error: argument --duration: "
         "must be a number of seconds from 1 to 86400"),
        (["run", "--seed", "100000000000000000000000"], "pingpong run: error: argument --seed: "
         "must be a whole number from 0 to 9007199254740991, or nothing for a random seed"),
        (["run", "--host", "999.1.1.1"], "pingpong run: error: argument --host: "
         "is not an address or a name this machine can resolve"),
        (["run", "--port", "-1"], "pingpong run: error: argument --port: "
         "must be a whole number from 0 to 65535"),
        (["server", "--keepalive-s", "0"], "pingpong server: error: argument --keepalive-s: "
         "must be a number of seconds from 0.1 to 3600"),
        (["server", "--port", "70000"], "pingpong server: error: argument --port: "
         "must be a whole number from 0 to 65535"),
        (["server", "--host", ""], "pingpong server: error: argument --host: must not be empty"),
        (["client", "--port", "0"], "pingpong client: error: argument --port: "
         "must be a whole number from 1 to 65535"),
        (["client", "--timeout-ms", "0"], "pingpong client: error: argument --timeout-ms: "
         "must be a whole number of milliseconds from 1 to 3600000"),
        (["client", "--host", "no-such-host.invalid"], "pingpong client: error: argument "
         "--host: is not an address or a name this machine can resolve"),
        (["run", "--bogus"], "pingpong run: error: unrecognized arguments: --bogus"),
        (["check", "a", "b"], "pingpong check: error: unrecognized arguments: b"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)  # fmt: skip
def test_invalid_options_exit_2_with_one_line(
    args: list[str], line: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = [*args, *(["--runs-dir", str(tmp_path)] if args[0] == "run" else [])]
    code, _out, err = run_main(argv, capsys)
    assert code == 2
    assert line in err
    assert err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())  # nothing started, nothing written


def test_options_of_both_sides_of_a_rule_are_both_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _out, err = run_main(
        ["run", "--delay-ms", "0-2500", "--timeout-ms", "2000", "--runs-dir", str(tmp_path)],
        capsys,
    )
    assert code == 2
    assert err.splitlines() == [
        "pingpong run: error: argument --delay-ms: max must be below the timeout (2000 ms)",
        "pingpong run: error: argument --timeout-ms: must be above the server delay maximum "
        "(2500 ms)",
    ]


def test_no_command_prints_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main([], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("usage: pingpong [-h] {run,server,client,check,bench,simulate} ...")
    assert "run a server and N clients, then check their logs" in err


def test_options_parse_into_the_settings() -> None:
    parser, _commands = _parser()
    options = "--clients 3 --delay-ms 0-0 --ignore 0 --seed 5 --duration 10"
    args = parser.parse_args(["run", *options.split()])
    assert _settings(args) == RunSettings(
        clients=3, delay_ms=MsRange(0, 0), ignore=0.0, seed=5, duration=10.0
    )
    assert _settings(parser.parse_args(["run"])) == RunSettings()


def test_a_child_command_line_parses_back_into_its_settings() -> None:
    parser, _commands = _parser()
    run = RunSettings(seed=7, delay_ms=MsRange(5, 50), ignore=0.3, keepalive_s=0.25)
    for settings in (run.server("s.log"), run.client(2, "c.log", 4242)):
        assert _settings(parser.parse_args(settings.argv())) == settings


def test_zero_delay_and_ignore_are_valid(tmp_path: Path) -> None:
    result = subprocess.run(
        pingpong_argv(
            "run", "--delay-ms", "0-0", "--ignore", "0", "--duration", "1", "--clients", "1",
            "--interval-ms", "20-40", "--timeout-ms", "500", "--runs-dir", str(tmp_path),
            "--slack-ms", str(SLACK_MS),
        ),
        capture_output=True, text=True, env=child_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 ignored (0.0 %)" in result.stdout
    assert "\r" not in result.stdout  # no status line into a pipe


def help_of(*command: str) -> str:
    result = subprocess.run(
        pingpong_argv(*command, "--help"), capture_output=True, text=True, env=child_env()
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_lists_every_command_in_plain_text() -> None:
    text = help_of()
    assert "{run,server,client,check,bench,simulate}" in text
    assert "``" not in text
    assert "SPEC" not in text
    assert "§" not in text


@pytest.mark.parametrize("command", ["run", "server", "client", "check", "bench", "simulate"])
def test_every_option_has_help(command: str) -> None:
    text = help_of(command)
    options = text.split("options:\n", 1)[1]
    # Each option line either carries its help or is followed by it on the next line.
    lines = options.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("  -"):
            has_help = "  " in line.strip() or (
                i + 1 < len(lines) and lines[i + 1].startswith(" " * 10)
            )
            assert has_help, line
    assert "SPEC" not in text


def test_help_states_the_defaults_that_are_not_obvious() -> None:
    server = " ".join(help_of("server").split())
    assert "--duration S stop after this many seconds (default: no time limit)" in server
    assert "0 lets the system pick a free one (default: 8888)" in server
    assert "--log-file FILE file to append the log to (default: server.log)" in server
    client = " ".join(help_of("client").split())
    assert "--duration S stop after this many seconds (default: no time limit)" in client
    run = " ".join(help_of("run").split())
    assert "0 lets the system pick a free one (default: 0)" in run
    assert "--timeout-ms MS" in run
    assert "(default: 2000 ms)" in run


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-0.5", "x"])
@pytest.mark.parametrize("command", ["run", "check"])
def test_slack_must_be_a_finite_number_not_below_zero(
    command: str, value: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    where = ["--runs-dir", str(tmp_path)] if command == "run" else [str(tmp_path)]
    code, out, err = run_main([command, *where, f"--slack-ms={value}"], capsys)
    assert code == 2
    assert out == ""
    assert err == (
        f"pingpong {command}: error: argument --slack-ms: "
        "must be a number of milliseconds, 0 or more\n"
    )
    assert not any(tmp_path.iterdir())


def tiny_run(folder: Path) -> Path:
    """A run folder of one client and two exchanges, written by hand."""
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"settings": RunSettings(clients=1).to_json()}))
    (folder / "server.log").write_text(
        "2026-11-26;13:01:02.345;[0] PING;13:01:02.977;[0/0] PONG (1)\n"
        "2026-11-26;;;13:01:05.000;[1] keepalive\n",
        encoding="utf-8",
    )
    (folder / "client1.log").write_text(
        "2026-11-26;13:01:02.344;[0] PING;13:01:02.979;[0/0] PONG (1)\n"
        "2026-11-26;;;13:01:05.001;[1] keepalive\n",
        encoding="utf-8",
    )
    return folder


def test_check_of_a_folder_that_is_not_a_run(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:  # fmt: skip
    code, out, err = run_main(["check", str(tmp_path)], capsys)
    assert (code, out) == (2, "")
    assert err == f"pingpong check: error: {tmp_path} is not a run folder (no server.log)\n"
    code, out, err = run_main(["check", str(tmp_path / "nope")], capsys)
    assert (code, out) == (2, "")
    assert err == f"pingpong check: error: {tmp_path / 'nope'} is not a folder\n"
    (tmp_path / "run.json").write_text("{}")  # a run whose server never wrote its log
    code, out, err = run_main(["check", str(tmp_path)], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"pingpong check: error: {tmp_path} has no server.log: its server never logged anything\n"
    )
    code, out, _err = run_main(["check", str(tiny_run(tmp_path / "run"))], capsys)
    assert code == 0, out
    assert out.startswith(f"check {tmp_path / 'run'}: PASS\n")


def into_a_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``pingpong ARGS`` with stdout a pipe whose reader has already gone (``| head``
    after its first line): every write to it fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            pingpong_argv(*args), stdout=write_end, stderr=subprocess.PIPE, text=True,
            env=child_env(), timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)


def test_a_closed_pipe_ends_every_command_quietly(tmp_path: Path) -> None:
    run = tiny_run(tmp_path / "run")
    passed = into_a_closed_pipe("check", str(run))
    assert (passed.returncode, passed.stderr) == (0, "")  # the verdict, no traceback
    (run / "client1.log").write_text("nonsense\n", encoding="utf-8")
    failed = into_a_closed_pipe("check", str(run))
    assert (failed.returncode, failed.stderr) == (1, "")
    for command in ("run", "check", "bench", "server", "client"):
        helped = into_a_closed_pipe(command, "--help")
        assert (helped.returncode, helped.stderr) == (0, ""), command
    # A lone server prints its diagnostics to stdout: with no one reading them, it serves on.
    server = into_a_closed_pipe(
        "server", "--port", "0", "--duration", "1", "--log-file", str(tmp_path / "s.log")
    )
    assert server.returncode == 0, server.stderr
    assert "Traceback" not in server.stderr
    ran = into_a_closed_pipe(
        "run", "--duration", "1", "--clients", "1", "--interval-ms", "20-40",
        "--delay-ms", "0-10", "--timeout-ms", "500", "--runs-dir", str(tmp_path / "runs"),
        "--slack-ms", str(SLACK_MS),
    )  # fmt: skip
    assert (ran.returncode, ran.stderr) == (0, "")


def options_of(text: str) -> dict[str, str]:
    """Each option of a --help text (every section), with its metavar and help as one line."""
    options: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("  -"):
            current = line.split()[0].rstrip(",")
            options[current] = line.strip()
        elif current is not None and line.startswith(" " * 10):
            options[current] += " " + line.strip()
        else:
            current = None
    return options


@pytest.mark.parametrize(
    "argv",
    [pingpong_argv("bench", "--help"),
     [sys.executable, str(ROOT / "benchmarks" / "dashboard.py"), "--help"]],
    ids=["pingpong bench", "benchmarks/dashboard.py"],
)  # fmt: skip
def test_benchmark_help_says_what_each_option_does_and_its_default(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=child_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    usage, description = result.stdout.split("\n\n")[:2]
    assert len(description.split()) > 20, description  # a description, not just a usage
    options = options_of(result.stdout)
    assert len(options) >= 5, options
    for option, text in options.items():
        if option in ("-h", "--help"):
            continue
        assert "(default: " in text, text
        # A placeholder a person reads (N, S, MIN-MAX), not the option's name shouted.
        shouted = option.lstrip("-").replace("-", "_").upper()
        assert shouted not in text.split(), text
        assert shouted not in usage, usage


def test_benchmark_options_are_checked(tmp_path: Path) -> None:
    for args, line in [
        (["--connections", "0"], "argument --connections: must be a whole number above 0"),
        (["--seconds", "nan"], "argument --seconds: must be a number above 0"),
        (["--clients-list", "10,x"],
         "argument --clients-list: must be client counts above 0, like 10,100,1000"),
    ]:  # fmt: skip
        result = subprocess.run(
            pingpong_argv("bench", *args), capture_output=True, text=True, env=child_env()
        )
        assert result.returncode == 2
        assert result.stderr == f"pingpong bench: error: {line}\n"
