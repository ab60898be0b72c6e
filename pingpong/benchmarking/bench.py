"""``pingpong bench``: how fast the server is, and how well it keeps time at scale.

Two scenarios, each printing a table; standard library only.

**throughput** — the server as a plain responder (``--delay-ms 0-0 --ignore 0``) under
many connections that each keep a window of requests in flight, against two
baselines started here in the same way: a bare asyncio line responder, and the same
responder writing and flushing one log line per request. Every target runs in its
own process while the load generator runs in this one; rounds alternate the targets
and the table shows medians, so a noisy machine hurts all three alike.

**scale** — K simulated clients at the default timings (300–3000 ms intervals,
100–1000 ms delays, 2000 ms timeout, keepalive every 5 s; ``--ignore 0`` so that every
timeout is a false one) against one server, K from ``--clients-list``. The server
measures its own scheduling lateness (actual minus intended send time of each answer
and keepalive round) and reports it when it stops; we add its CPU share and memory
(Linux /proc) and the clients' false timeouts.

Run ``python -m pingpong.benchmarking.bench responder [--log FILE]`` to start a baseline by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..core.runfolder import RunFolder
from ..net.lifecycle import SUPERVISED_ENV, Stop
from ..running.process import child_environment
from .loadgen import measure_answers, run_fleet

__all__ = ["bench_cli", "cpu_seconds", "main", "memory_mib"]


# -- baselines ------------------------------------------------------------------------


async def _responder(port: int, log: str | None) -> None:
    """A bare asyncio line responder; with ``log``, one written and flushed line per request."""
    log_file = open(log, "a", encoding="utf-8") if log else None  # noqa: SIM115
    count = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        while line := await reader.readline():
            count += 1
            writer.write(b"[%d/0] PONG (1)\n" % count)
            if log_file is not None:
                log_file.write(f"{time.time():.3f};{line.decode('ascii', 'replace').strip()}\n")
                log_file.flush()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stop = Stop()
    stop.install()  # the benchmark closes our stdin to stop us
    await stop.requested.wait()
    stop.uninstall()
    server.close()
    if log_file is not None:
        log_file.close()


# -- targets in child processes ----------------------------------------------------------


def _raise_fd_limit() -> None:
    try:
        import resource
    except ImportError:  # Windows has no such limit to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 16
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used, or ``None`` without Linux's /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int) -> tuple[float, float] | None:
    """(resident now, peak resident) in MiB, or ``None`` without Linux's /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    now = re.search(r"VmRSS:\s+(\d+)", status)
    peak = re.search(r"VmHWM:\s+(\d+)", status)
    if now is None or peak is None:
        return None
    return int(now[1]) / 1024, int(peak[1]) / 1024


class _Target:
    """A server or baseline in its own process, its output drained all along.

    A child writing to a pipe nobody reads blocks once the pipe is full (the server
    says a line per connection), so threads drain stdout and keep stderr.
    """

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self._stderr: list[str] = []
        assert process.stdout is not None and process.stderr is not None  # noqa: PT018
        self._drains = [
            threading.Thread(target=lambda s=process.stdout: s.read(), daemon=True),
            threading.Thread(target=self._stderr.extend, args=(process.stderr,), daemon=True),
        ]
        for thread in self._drains:
            thread.start()

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.process.pid)

    def memory_mib(self) -> tuple[float, float] | None:
        return memory_mib(self.process.pid)

    def stop(self) -> str:
        """Stop gracefully (close its stdin); its stderr."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for thread in self._drains:
            thread.join(timeout=5)
        return "".join(self._stderr)


# The server on uvloop, for comparison when it is installed. The package itself never
# imports it: this runs in the child, which picks the loop before pingpong starts.
_UVLOOP = (
    "import asyncio, sys, uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy()); "
    "from pingpong.__main__ import main; sys.exit(main(sys.argv[1:]))"
)


def _has_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def _start(argv: list[str]) -> _Target:
    """Start ``python -m ARGV`` (or ``python -c CODE ARGS`` for ``["-c", …]``)."""
    env = child_environment()
    env[SUPERVISED_ENV] = "1"
    command = [sys.executable, *argv] if argv[0] == "-c" else [sys.executable, "-m", *argv]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"listening on .*:(\d+)", line)
    if match is None:
        process.kill()
        raise RuntimeError(f"{argv[0]} did not start: {line!r} {process.communicate()[1]!r}")
    return _Target(process, int(match[1]))


def _server(folder: Path, *options: str, uvloop: bool = False) -> _Target:
    args = ["server", "--port", "0", "--log-file", str(RunFolder(folder).server_log), *options]
    return _start(["-c", _UVLOOP, *args] if uvloop else ["pingpong", *args])


# -- throughput ----------------------------------------------------------------------------


_RESPONDER = ("--delay-ms", "0-0", "--ignore", "0", "--keepalive-s", "3600")


def throughput(connections: int, window: int, seconds: float, rounds: int) -> str:
    targets: dict[str, Callable[[Path], _Target]] = {
        "asyncio responder": lambda folder: _start(["pingpong.benchmarking.bench", "responder"]),
        "responder + log line": lambda folder: _start(
            ["pingpong.benchmarking.bench", "responder", "--log", str(folder / "baseline.log")]
        ),
        "pingpong server": lambda folder: _server(folder, *_RESPONDER),
    }
    if _has_uvloop():
        targets["pingpong on uvloop"] = lambda folder: _server(folder, *_RESPONDER, uvloop=True)
    rates: dict[str, list[float]] = {name: [] for name in targets}
    cpu: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, start in targets.items():
            with tempfile.TemporaryDirectory() as tmp:
                target = start(Path(tmp))
                before, wall = target.cpu_seconds(), time.perf_counter()
                rates[name].append(
                    asyncio.run(measure_answers(target.port, connections, window, seconds))
                )
                after = target.cpu_seconds()
                if before is not None and after is not None:
                    cpu[name].append(100 * (after - before) / (time.perf_counter() - wall))
                target.stop()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    ours = medians["pingpong server"]
    lines = [
        f"throughput: {connections} connections x {window} requests in flight, "
        f"{seconds:g} s x {rounds} rounds (medians), {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}",
        f"{'target':<22} {'requests/s':>11} {'CPU':>6} {'pingpong / this':>16}",
    ]
    for name, rate in medians.items():
        share = f"{statistics.median(cpu[name]):5.0f}%" if cpu[name] else "   n/a"
        lines.append(f"{name:<22} {rate:>11,.0f} {share} {ours / rate:>16.2f}")
    return "\n".join(lines)


# -- scale and timing fidelity --------------------------------------------------------------


_LATENESS = re.compile(r"(answer|keepalive) lateness p50 ([\d.]+) p99 ([\d.]+) max ([\d.]+) ms")


def scale(clients_list: Sequence[int], seconds: float) -> Iterator[str]:
    """The table's lines, each as soon as its row is measured."""
    _raise_fd_limit()
    yield from [
        f"scale: default timings, --ignore 0, {seconds:g} s per row, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}",
        f"{'clients':>7} {'req/s':>7} {'answer late ms p50/p99/max':>27} "
        f"{'keepalive late p99/max':>23} {'false t/o':>9} {'CPU':>5} {'RSS/peak MiB':>13} "
        f"{'gen late p99':>12}",
    ]
    for clients in clients_list:
        with tempfile.TemporaryDirectory() as tmp:
            target = _server(Path(tmp), "--ignore", "0")
            before, wall = target.cpu_seconds(), time.perf_counter()
            fleet = asyncio.run(run_fleet(target.port, clients, seconds))
            after, elapsed = target.cpu_seconds(), time.perf_counter() - wall
            memory = target.memory_mib()
            err = target.stop()
        found = {m[1]: m.groups()[1:] for m in _LATENESS.finditer(err)}
        answer = found.get("answer", ("?", "?", "?"))
        keepalive = found.get("keepalive", ("?", "?", "?"))
        cpu = f"{100 * (after - before) / elapsed:4.0f}%" if before and after else "  n/a"
        rss = f"{memory[0]:5.1f}/{memory[1]:<6.1f}" if memory else "n/a"
        yield (
            f"{clients:>7} {fleet.sent / seconds:>7.0f} "
            f"{'/'.join(answer):>27} {'/'.join(keepalive[1:]):>23} {fleet.timeouts:>9} "
            f"{cpu:>5} {rss:>13} {fleet.send_lateness.percentile(0.99) * 1000:>10.1f}ms"
        )


# -- command line -------------------------------------------------------------------------


def bench_cli(args: argparse.Namespace) -> int:
    if args.scenario in ("throughput", "all"):
        print(throughput(args.connections, args.window, args.seconds, args.rounds), flush=True)
    if args.scenario in ("scale", "all"):
        if args.scenario == "all":
            print()
        for line in scale(args.clients_list, args.scale_seconds):
            print(line, flush=True)
    return 0


#: What ``pingpong bench --help`` says first.
DESCRIPTION = (
    "Measure the server. throughput: requests per second of the server as a plain responder "
    "(--delay-ms 0-0 --ignore 0) under many connections, each keeping a window of requests "
    "in flight, against two baselines (a bare asyncio responder, and one that also logs); "
    "medians of alternating rounds. scale: K simulated clients at the default timings "
    "against one server, for each K: how late the server's timers fire (its own "
    "measurement), false timeouts, the server's CPU share and memory. Each prints a table."
)


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    """An option's converter: a finite ``kind`` above 0, else a one-line error."""
    words = "whole number" if kind is int else "number"

    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a {words} above 0")
        return value

    return convert


def _counts(text: str) -> list[int]:
    try:
        counts = [int(k) for k in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("must be client counts above 0, like 10,100,1000")
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument(
        "--scenario", choices=["throughput", "scale", "all"], default="all",
        help="which benchmark to run: throughput, scale or both (default: all)",
    )  # fmt: skip
    throughput = parser.add_argument_group("throughput")
    throughput.add_argument(
        "--connections", type=_positive(int), default=50, metavar="N",
        help="connections to the server (default: 50)",
    )  # fmt: skip
    throughput.add_argument(
        "--window", type=_positive(int), default=20, metavar="N",
        help="requests each connection keeps in flight (default: 20)",
    )  # fmt: skip
    throughput.add_argument(
        "--seconds", type=_positive(float), default=3.0, metavar="S",
        help="length of a round against one target, in seconds (default: 3)",
    )  # fmt: skip
    throughput.add_argument(
        "--rounds", type=_positive(int), default=3, metavar="N",
        help="rounds per target; the table shows their median (default: 3)",
    )  # fmt: skip
    scale_options = parser.add_argument_group("scale")
    scale_options.add_argument(
        "--clients-list", type=_counts, default=[10, 100, 1000, 2000, 4000], metavar="K,K,...",
        help="client counts, one table row each (default: 10,100,1000,2000,4000)",
    )  # fmt: skip
    scale_options.add_argument(
        "--scale-seconds", type=_positive(float), default=20.0, metavar="S",
        help="length of each row, in seconds (default: 20)",
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m pingpong.benchmarking.bench responder [--port N] [--log FILE]``: a baseline."""
    parser = argparse.ArgumentParser(prog="python -m pingpong.benchmarking.bench")
    parser.add_argument("role", choices=["responder"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", default=None)
    args = parser.parse_args(argv)
    asyncio.run(_responder(args.port, args.log))


if __name__ == "__main__":
    main()
