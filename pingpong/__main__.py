"""The command line: ``pingpong run``, ``server``, ``client``, ``check``, ``bench``, ``simulate``.

The options of ``run``, ``server``, ``client`` and ``simulate`` are built from their schemas in
:mod:`pingpong.core.settings` (names, defaults, help, validation), and the settings are
checked before anything starts: each invalid option costs one line on stderr, naming
the command and the option, and the exit status is 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO, cast

from .core.settings import (
    ClientSettings,
    RunSettings,
    ServerSettings,
    Setting,
    SettingsError,
    SettingsErrors,
    SimulatedRunSettings,
    address_error,
)

__all__ = ["main"]

_DESCRIPTION = (
    "An asyncio TCP ping-pong system: a server and N clients, each its own process, "
    "logging every exchange, and a checker of their logs."
)
_SETTINGS: dict[str, type[RunSettings | ServerSettings | ClientSettings]] = {
    "run": RunSettings,
    "server": ServerSettings,
    "client": ClientSettings,
    "simulate": SimulatedRunSettings,
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Given(argparse.Action):
    """Store the value and note that the option was given: a rule between two options
    is reported on the one the user gave."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def _converter(setting: Setting[Any]) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            return setting.parse(text)
        except SettingsError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    return convert


def _help(setting: Setting[Any]) -> str:
    default = setting.show(setting.default)
    if setting.unit and setting.default is not None:
        default += f" {setting.unit}"
    return f"{setting.description} (default: {default})".replace("%", "%%")


def _add_settings(parser: argparse.ArgumentParser, command: str) -> None:
    for setting in _SETTINGS[command].schema.settings:
        parser.add_argument(
            setting.flag, dest=setting.name, type=_converter(setting), default=setting.default,
            metavar=setting.metavar, action=_Given, help=_help(setting),
        )  # fmt: skip


def _slack(text: str) -> float:
    from .checking.check import parse_slack

    try:
        return parse_slack(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_slack(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--slack-ms", type=_slack, default=None, metavar="MS",
        help="scheduling slack allowed on every timing rule of the check, in milliseconds "
        "(default: 20)",
    )  # fmt: skip


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = _Parser(
        prog="pingpong",
        description=_DESCRIPTION,
        epilog="'pingpong COMMAND --help' lists a command's options.",
    )
    commands = parser.add_subparsers(
        dest="command", title="commands", metavar="{run,server,client,check,bench,simulate}",
        parser_class=_Parser,
    )  # fmt: skip

    run = commands.add_parser(
        "run", help="run a server and N clients, then check their logs",
        description="Run a server and N clients as separate processes until the duration "
        "ends or Ctrl+C, then check their logs and print a summary. On a terminal, a status "
        "line shows the run's progress.",
    )  # fmt: skip
    _add_settings(run, "run")
    _add_folder(run)
    _add_slack(run)

    server = commands.add_parser("server", help="run the server alone")
    _add_settings(server, "server")
    client = commands.add_parser("client", help="run one client alone")
    _add_settings(client, "client")

    check = commands.add_parser("check", help="verify a run's logs against every rule")
    check.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="the run's folder")
    _add_slack(check)

    from .benchmarking.bench import add_arguments

    bench = commands.add_parser("bench", help="measure throughput and timing at scale")
    add_arguments(bench)

    simulate = commands.add_parser(
        "simulate", help="a run in virtual time over an in-memory network, then its check",
        description="Run the server's and the clients' sessions in virtual time over an "
        "in-memory network (no sockets, no waiting), write the run's folder as a real run "
        "would, then check its logs and print a summary.",
    )  # fmt: skip
    _add_settings(simulate, "simulate")
    _add_folder(simulate)
    simulate.add_argument(
        "--latency-ms", type=float, default=0.05, metavar="MS",
        help="one-way network latency (default: 0.05 ms, as on loopback)",
    )  # fmt: skip
    simulate.add_argument(
        "--jitter-ms", type=float, default=0.02, metavar="MS",
        help="extra latency of each message, uniform from 0 to MS (default: 0.02 ms)",
    )  # fmt: skip
    simulate.add_argument(
        "--faults", default="", metavar="KIND=N,…",
        help="faults at random instants, drawn from the seed: cuts, stalls, garbage, "
        "overlong, server_stop (default: none)",
    )  # fmt: skip
    simulate.add_argument(
        "--start", type=datetime.fromisoformat, default=None, metavar="YYYY-MM-DDTHH:MM:SS",
        help="the simulated local time the run starts at (default: 2026-01-01T00:00:00)",
    )  # fmt: skip
    simulate.add_argument(
        "--no-check", action="store_true",
        help="skip the check and the summary (for runs too big to load)",
    )  # fmt: skip
    return parser, dict(commands.choices)


def _add_folder(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs-dir", default="runs", metavar="DIR",
        help="where each run gets its own folder (default: runs)",
    )  # fmt: skip
    parser.add_argument(
        "--log-dir", default=None, metavar="DIR",
        help="write this run into DIR instead (it must hold no logs yet)",
    )  # fmt: skip


def _settings(args: argparse.Namespace) -> RunSettings | ServerSettings | ClientSettings:
    """The command's settings from its options; raises SettingsErrors."""
    kind = _SETTINGS[args.command]
    values = {name: getattr(args, name) for name in kind.schema.names}
    settings = kind(**kind.schema.validate(values, getattr(args, "given", set())))
    if "host" in kind.schema.names:
        message = address_error(settings.host, loopback_only=False)
        if message is not None:
            raise SettingsErrors([SettingsError("host", message)])
    return settings


class _Stdout:
    """``sys.stdout`` for as long as a command runs: once its reader has gone (``| head``
    closed the pipe), what the command prints is dropped instead of raising, and the
    command goes on to its own exit status, as command-line tools do."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        self.gone = True
        # What is still buffered would raise again when the interpreter flushes it at
        # exit: the descriptor now leads nowhere.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    stdout = sys.stdout
    if stdout is None:  # no console at all (pythonw): print() already writes nowhere
        return _main(argv)
    sys.stdout = cast(TextIO, _Stdout(stdout))
    try:
        return _main(argv)
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


def _main(argv: Sequence[str] | None) -> int:
    parser, commands = _parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        return 2
    if unknown:  # said by the command's parser, so the message names the command
        commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")

    if args.command in _SETTINGS:
        try:
            settings = _settings(args)
        except SettingsErrors as exc:
            schema = _SETTINGS[args.command].schema
            for error in exc.errors:
                flag = schema[error.field].flag
                print(f"pingpong {args.command}: error: argument {flag}: {error.message}",
                      file=sys.stderr)  # fmt: skip
            return 2
        if isinstance(settings, ServerSettings):
            from .net.server import serve

            return asyncio.run(serve(settings))
        if isinstance(settings, ClientSettings):
            from .net.client import run_client

            return asyncio.run(run_client(settings))
        if isinstance(settings, SimulatedRunSettings):
            return _simulate(args, settings)
        from .running.runner import run_cli

        return asyncio.run(run_cli(settings, Path(args.runs_dir), args.log_dir, args.slack_ms))
    if args.command == "bench":
        from .benchmarking.bench import bench_cli

        return bench_cli(args)
    from .checking.check import check_cli

    return check_cli(args.run_dir, args.slack_ms)


def _simulate(args: argparse.Namespace, settings: SimulatedRunSettings) -> int:
    import random

    from .simulation.command import DEFAULT_START, pick_seed, simulate_cli
    from .simulation.engine import Network
    from .simulation.faults import parse_fault_counts, random_faults

    def error(option: str, message: str) -> int:
        print(f"pingpong simulate: error: argument {option}: {message}", file=sys.stderr)
        return 2

    if settings.seed is None:
        settings = dataclasses.replace(settings, seed=pick_seed())
    assert settings.seed is not None
    try:
        network = Network(args.latency_ms, args.jitter_ms)
    except SettingsError as exc:
        return error(f"--{exc.field.replace('_', '-')}", exc.message)
    try:
        counts = parse_fault_counts(args.faults)
    except ValueError as exc:
        return error("--faults", str(exc))
    if args.start is not None and args.start.tzinfo is not None:
        return error("--start", "the simulated local time, without a zone")
    faults = random_faults(
        random.Random(f"faults {settings.seed}"), settings.clients, settings.duration, **counts
    )
    return simulate_cli(
        settings, Path(args.runs_dir), args.log_dir, network=network, faults=faults,
        start=args.start or DEFAULT_START, check=not args.no_check,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
