"""The command line: ``pingpong run | server | client | check | bench | simulate`` (SPEC §8).

Options are validated by :mod:`pingpong.settings` before anything starts; an
invalid one exits with status 2 and a single line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from .settings import (
    ClientSettings,
    RunSettings,
    ServerSettings,
    SettingsError,
    SimulatedRunSettings,
    parse_range,
)

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _ms_range(name: str) -> argparse._ActionType:
    def convert(text: str) -> object:
        try:
            return parse_range(text, name)
        except SettingsError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    return convert


def _add_common(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address (default %(default)s)")
    parser.add_argument("--port", type=int, default=port, help="TCP port (default %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help="make random choices repeatable")


def _add_server_timing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--delay-ms", type=_ms_range("delay_ms"), default="100-1000",
        help="response delay range, MIN-MAX (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--ignore", type=float, default=0.1, help="probability to ignore a request (default 0.1)"
    )
    parser.add_argument(
        "--keepalive-s", type=float, default=5.0, help="keepalive period (default 5)"
    )


def _add_client_timing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval-ms", type=_ms_range("interval_ms"), default="300-3000",
        help="send interval range, MIN-MAX (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--timeout-ms", type=int, default=2000, help="response timeout (default 2000)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pingpong", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run a server and N clients, then check their logs")
    run.add_argument("--clients", type=int, default=2, help="number of clients (default 2)")
    run.add_argument("--duration", type=float, default=300.0, help="seconds (default 300)")
    _add_common(run, port=0)
    run.add_argument("--runs-dir", default="runs", help="parent of run folders (default runs)")
    run.add_argument("--log-dir", default=None, help="write the run into this folder instead")
    _add_server_timing(run)
    _add_client_timing(run)

    server = commands.add_parser("server", help="run the server alone")
    _add_common(server, port=8888)
    server.add_argument("--log-file", default="server.log")
    server.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    _add_server_timing(server)

    client = commands.add_parser("client", help="run one client alone")
    _add_common(client, port=8888)
    client.add_argument("--log-file", default="client1.log")
    client.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    _add_client_timing(client)

    check = commands.add_parser("check", help="verify a run's logs against the spec")
    check.add_argument("run_dir", metavar="RUN_DIR", type=Path)
    check.add_argument(
        "--slack-ms", type=float, default=None,
        help="scheduling slack allowed on every timing rule (default 20)",
    )  # fmt: skip

    from .bench import add_arguments

    bench = commands.add_parser("bench", help="measure throughput and timing at scale")
    add_arguments(bench)

    simulate = commands.add_parser(
        "simulate", help="a run in virtual time over an in-memory network, then its check"
    )
    simulate.add_argument("--clients", type=int, default=2, help="number of clients (default 2)")
    simulate.add_argument("--duration", type=float, default=300.0, help="seconds (default 300)")
    simulate.add_argument(
        "--seed", type=int, default=None, help="the run's seed (default: drawn, kept in run.json)"
    )
    simulate.add_argument("--runs-dir", default="runs", help="parent of run folders (default runs)")
    simulate.add_argument("--log-dir", default=None, help="write the run into this folder instead")
    _add_server_timing(simulate)
    _add_client_timing(simulate)
    simulate.add_argument(
        "--latency-ms", type=float, default=0.05, help="one-way network latency (default 0.05)"
    )
    simulate.add_argument(
        "--jitter-ms", type=float, default=0.02, help="extra latency, uniform 0-J (default 0.02)"
    )
    simulate.add_argument(
        "--faults", default="",
        help="faults at random instants: cuts=N,stalls=N,garbage=N,overlong=N,server_stop=1",
    )  # fmt: skip
    simulate.add_argument(
        "--start", type=datetime.fromisoformat, default=None,
        help="simulated start, YYYY-MM-DDTHH:MM:SS (default 2026-01-01T00:00:00)",
    )  # fmt: skip
    simulate.add_argument(
        "--no-check", action="store_true", help="skip the check (for runs too big to load)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "server":
            server_settings = ServerSettings(
                host=args.host, port=args.port, log_file=args.log_file,
                duration=args.duration, seed=args.seed, delay_ms=args.delay_ms,
                ignore=args.ignore, keepalive_s=args.keepalive_s,
            )  # fmt: skip
        elif args.command == "client":
            client_settings = ClientSettings(
                host=args.host, port=args.port, log_file=args.log_file,
                duration=args.duration, seed=args.seed, interval_ms=args.interval_ms,
                timeout_ms=args.timeout_ms,
            )  # fmt: skip
        elif args.command == "run":
            run_settings = RunSettings(
                clients=args.clients, duration=args.duration, interval_ms=args.interval_ms,
                delay_ms=args.delay_ms, ignore=args.ignore, keepalive_s=args.keepalive_s,
                timeout_ms=args.timeout_ms, seed=args.seed, host=args.host, port=args.port,
            )  # fmt: skip
    except SettingsError as exc:
        print(f"pingpong {args.command}: error: --{exc.field.replace('_', '-')}: {exc.message}",
              file=sys.stderr)  # fmt: skip
        return 2

    if args.command == "server":
        from .server import serve

        return asyncio.run(serve(server_settings))
    if args.command == "client":
        from .client import run_client

        return asyncio.run(run_client(client_settings))
    if args.command == "run":
        from .runner import run_cli

        return asyncio.run(run_cli(run_settings, Path(args.runs_dir), args.log_dir))
    if args.command == "bench":
        from .bench import bench_cli

        return bench_cli(args)
    if args.command == "simulate":
        return _simulate(args)
    from .check import check_cli

    return check_cli(args.run_dir, args.slack_ms)


def _simulate(args: argparse.Namespace) -> int:
    import random

    from .simfaults import parse_fault_counts, random_faults
    from .simrun import DEFAULT_START, pick_seed, simulate_cli
    from .simulate import Network

    seed = pick_seed() if args.seed is None else args.seed
    try:
        settings = SimulatedRunSettings(
            clients=args.clients, duration=args.duration, interval_ms=args.interval_ms,
            delay_ms=args.delay_ms, ignore=args.ignore, keepalive_s=args.keepalive_s,
            timeout_ms=args.timeout_ms, seed=seed,
        )  # fmt: skip
    except SettingsError as exc:
        print(f"pingpong simulate: error: --{exc.field.replace('_', '-')}: {exc.message}",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        network = Network(args.latency_ms, args.jitter_ms)
        counts = parse_fault_counts(args.faults)
    except SettingsError as exc:
        print(f"pingpong simulate: error: --{exc.field.replace('_', '-')}: {exc.message}",
              file=sys.stderr)  # fmt: skip
        return 2
    except ValueError as exc:
        print(f"pingpong simulate: error: --faults: {exc}", file=sys.stderr)
        return 2
    if args.start is not None and args.start.tzinfo is not None:
        print("pingpong simulate: error: --start: the simulated local time, without a zone",
              file=sys.stderr)  # fmt: skip
        return 2
    faults = random_faults(
        random.Random(f"faults {seed}"), settings.clients, settings.duration, **counts
    )
    return simulate_cli(
        settings, Path(args.runs_dir), args.log_dir, network=network, faults=faults,
        start=args.start or DEFAULT_START, check=not args.no_check,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
