"""Write a synthetic but valid run folder: the logs a real run of these settings would write.

    python benchmarks/genrun.py OUT_DIR --clients 28 --duration 3600 --interval-ms 45-65

Every rule of ``pingpong check`` holds for the result (request numbers, response
numbers in send order, ignored requests and the timeouts they cause, delays,
intervals, the keepalive grid); ``--start`` can put it across midnight. It simulates
in windows of a minute, so memory stays flat however long the run. Used by the run
page's benchmark (``benchmarks/runpage.py``) and its tests.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's pingpong, installed or not

from pingpong.core.logformat import (  # noqa: E402
    Answered,
    Ignored,
    Record,
    TimedOut,
    Unpaired,
    format_record,
)
from pingpong.core.protocol import Keepalive, Ping, Pong  # noqa: E402
from pingpong.core.settings import MsRange, RunSettings  # noqa: E402

_WINDOW_MS = 60_000


def generate(
    folder: Path,
    settings: RunSettings,
    start: datetime,
    *,
    seed: int = 1,
    write_run_json: bool = True,
) -> int:
    """Write the run's logs (and ``run.json``) into ``folder``; the number of log lines."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    duration_ms = int(settings.duration * 1000)
    period_ms = round(settings.keepalive_s * 1000)
    interval, delay = settings.interval_ms, settings.delay_ms
    clients = range(1, settings.clients + 1)
    base = start.replace(microsecond=start.microsecond - start.microsecond % 1000)
    # Events as (time ms, order, kind, data): heaps per log, in the order lines are written.
    server_heap: list[tuple[int, int, int, Any]] = []  # lines; a PONG's number is set at send
    client_heaps: dict[int, list[tuple[int, int, Any]]] = {c: [] for c in clients}
    next_send = {c: 10 * c + rng.randint(0, interval.low) for c in clients}
    request_number = dict.fromkeys(clients, 0)
    counter = 0  # tie-breaker keeping heap order stable
    response = 0
    keepalive_round = 0
    lines = 0
    files = {0: open(folder / "server.log", "w", encoding="utf-8", newline="\n")}  # noqa: SIM115
    for c in clients:
        files[c] = open(folder / f"client{c}.log", "w", encoding="utf-8", newline="\n")  # noqa: SIM115

    def when(ms: int) -> datetime:
        return base + timedelta(milliseconds=ms)

    def write(number: int, record: Record) -> None:
        nonlocal lines
        files[number].write(format_record(record))
        lines += 1

    window_end = 0
    try:
        while window_end < duration_ms + settings.timeout_ms + 2000:
            window_end += _WINDOW_MS
            # Requests sent in this window, and what they cause.
            for c in clients:
                while next_send[c] < min(window_end, duration_ms):
                    sent = next_send[c]
                    number = request_number[c]
                    request_number[c] += 1
                    next_send[c] = sent + rng.randint(interval.low, interval.high)
                    received = sent + rng.randint(0, 1)
                    counter += 1
                    if rng.random() < settings.ignore:
                        heapq.heappush(server_heap, (received, counter, 1, (sent, c, number)))
                        heapq.heappush(
                            client_heaps[c],
                            (sent + settings.timeout_ms, counter, ("timeout", sent, number)),
                        )
                    else:
                        answer = received + rng.randint(delay.low, delay.high)
                        heapq.heappush(
                            server_heap, (answer, counter, 0, (sent, received, c, number))
                        )
            # Keepalive rounds due in this window.
            while keepalive_round * period_ms < min(window_end, duration_ms):
                counter += 1
                heapq.heappush(server_heap, (keepalive_round * period_ms, counter, 2, None))
                keepalive_round += 1
            # Everything due before the window's end is final: write it in order.
            # (A request sent later cannot cause anything earlier than its own send.)
            horizon = window_end
            while server_heap and server_heap[0][0] < horizon:
                ms, _order, kind, data = heapq.heappop(server_heap)
                if kind == 0:
                    sent, received, c, number = data
                    pong = Pong(response, number, c)
                    response += 1
                    write(0, Answered(when(received), Ping(number), when(ms), pong))
                    counter += 1
                    heapq.heappush(
                        client_heaps[c], (ms + rng.randint(0, 1), counter, ("pong", sent, pong))
                    )
                elif kind == 1:
                    _sent, c, number = data
                    write(0, Ignored(when(ms), Ping(number)))
                else:
                    for c in clients:
                        keepalive = Keepalive(response)
                        response += 1
                        write(0, Unpaired(when(ms), keepalive))
                        counter += 1
                        heapq.heappush(client_heaps[c], (ms + 1, counter, ("keepalive", keepalive)))
            for c in clients:
                heap = client_heaps[c]
                while heap and heap[0][0] < horizon:
                    ms, _order, event = heapq.heappop(heap)
                    if event[0] == "pong":
                        _kind, sent, pong = event
                        write(c, Answered(when(sent), Ping(pong.request), when(ms), pong))
                    elif event[0] == "timeout":
                        _kind, sent, number = event
                        write(c, TimedOut(when(sent), Ping(number), when(ms)))
                    else:
                        write(c, Unpaired(when(ms), event[1]))
    finally:
        for handle in files.values():
            handle.close()
    for name in ["server", *(f"client{c}" for c in clients)]:
        (folder / f"{name}.out").write_text("", encoding="utf-8")
        (folder / f"{name}.err").write_text("", encoding="utf-8")
    if write_run_json:
        ended = when(duration_ms)
        meta = {
            "id": folder.name,
            "state": "finished",
            "stopped_by": "deadline",
            "error": None,
            "settings": settings.to_json(),
            "started_at": base.isoformat(timespec="milliseconds"),
            "listening_at": base.isoformat(timespec="milliseconds"),
            "ended_at": ended.isoformat(timespec="milliseconds"),
            "elapsed": duration_ms / 1000,
            "address": "127.0.0.1:0",
            "processes": [
                {"role": name, "pid": None, "state": "exited", "exit_code": 0, "killed": False}
                for name in ["server", *(f"client{c}" for c in clients)]
            ],
            "summary": None,
            "check": None,
            "check_not_run": None,
        }
        (folder / "run.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the run folder to write (its name is the run id)")
    parser.add_argument("--clients", type=int, default=28)
    parser.add_argument("--duration", type=float, default=3600)
    parser.add_argument("--interval-ms", default="45-65")
    parser.add_argument("--delay-ms", default="100-1000")
    parser.add_argument("--timeout-ms", type=int, default=2000)
    parser.add_argument("--ignore", type=float, default=0.1)
    parser.add_argument("--keepalive-s", type=float, default=5)
    parser.add_argument("--start", default=None, help="start time, ISO (default: now)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    low, high = (int(x) for x in args.interval_ms.split("-"))
    dlow, dhigh = (int(x) for x in args.delay_ms.split("-"))
    settings = RunSettings(
        clients=args.clients, duration=args.duration, interval_ms=MsRange(low, high),
        delay_ms=MsRange(dlow, dhigh), timeout_ms=args.timeout_ms, ignore=args.ignore,
        keepalive_s=args.keepalive_s,
    )  # fmt: skip
    start = datetime.fromisoformat(args.start) if args.start else datetime.now()
    lines = generate(args.out, settings, start, seed=args.seed)
    print(f"{args.out}: {lines} log lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
