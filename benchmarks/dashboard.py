"""Dashboard benchmark: log-to-viewer lag, the app's CPU share and memory, per viewer count.

Starts a real ``uvicorn app.main:app`` on a free loopback port, connects V WebSocket
viewers, starts a run through the API and, for every exchange that reaches a viewer,
measures the lag from the instant its log line was written (the time on the line,
which the process takes just before the write) to its arrival. Meanwhile it samples
the app process's CPU time and resident memory from /proc (Linux).

    python benchmarks/dashboard.py                       # a default run, 60 s, 1 viewer
    python benchmarks/dashboard.py --clients 50 --interval-ms 40-60 --viewers 1,20
    python benchmarks/dashboard.py --clients 28 --interval-ms 40-60 --browser

With ``--browser`` the page is also open in Debian's Chromium during the run, and the
share of its main thread the page keeps busy is measured (CDP Performance.getMetrics),
at the top of the page and then scrolled to the live timeline.

Each viewer count is one run (the first is the baseline the others are compared
with); the table shows lag p50/p95/max, lines per second, the app's CPU share and
its memory at the start and end of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's pingpong, installed or not

from pingpong.benchmarking.bench import cpu_seconds, memory_mib  # noqa: E402
from pingpong.checking.stats import percentile  # noqa: E402
from pingpong.core.runfolder import RunFolder  # noqa: E402
from pingpong.running.process import child_environment  # noqa: E402


def rss_mib(pid: int) -> float:
    memory = memory_mib(pid)
    return memory[0] if memory else float("nan")


def cpu(pid: int) -> float:
    seconds = cpu_seconds(pid)
    if seconds is None:
        raise SystemExit("this benchmark reads the app's CPU time from /proc (Linux)")
    return seconds


def start_app(runs: Path) -> tuple[subprocess.Popen[bytes], int]:
    env = child_environment()
    env["PINGPONG_RUNS_DIR"] = str(runs)
    log = runs / "uvicorn.log"
    runs.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--port", "0", "--log-level",
             "warning"],
            stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=ROOT,
        )  # fmt: skip
    # --log-level warning hides the port line; ask the OS instead.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        port = _listening_port(process.pid)
        if port:
            return process, port
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise SystemExit(f"uvicorn did not start: {log.read_text()}")


def _listening_port(pid: int) -> int | None:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[3] == "0A" and parts[9] in inodes:  # LISTEN
            return int(parts[1].split(":")[1], 16)
    return None


def post(port: int, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body or {}).encode(), method="POST",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


async def viewer(port: int, lags: list[float], ready: asyncio.Event, done: asyncio.Event) -> None:
    async with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        await ws.recv()  # the snapshot
        ready.set()
        while not done.is_set():
            try:
                text = await asyncio.wait_for(ws.recv(), 1)
            except asyncio.TimeoutError:
                continue
            now = datetime.now()
            message = json.loads(text)
            live = message.get("live")
            for exchange in (live or {}).get("exchanges", []):
                when = datetime.combine(now.date(), datetime.strptime(
                    exchange["time"], "%H:%M:%S.%f").time())  # fmt: skip
                lags.append((now - when).total_seconds() * 1000)
            if message["state"] in ("finished", "failed"):
                done.set()


CHROMIUM = os.environ.get("PINGPONG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def browser_busy(
    port: int, started: threading.Event, seconds: float, result: dict[str, float]
) -> None:
    """The share of Chromium's main thread the live page keeps busy during a run: the
    renderer's TaskDuration (CDP Performance.getMetrics) over wall time, from 3 s after
    the run starts, for ``seconds`` in each of two places: the top of the page (status,
    counters, the charts' top, the exchanges), then scrolled to the live timeline (the
    charts, the exchanges and the timeline all in view and drawn)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#connection[data-status=live]")
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")

        def task_seconds() -> float:
            metrics = cdp.send("Performance.getMetrics")["metrics"]
            return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))

        def busy(where: str) -> None:
            busy0, wall0 = task_seconds(), time.monotonic()
            time.sleep(seconds)
            busy1, wall1 = task_seconds(), time.monotonic()
            result[where] = 100 * (busy1 - busy0) / (wall1 - wall0)
            # How often the page chose to redraw, from what a redraw cost it (static/app.js).
            result[f"{where}_interval"] = float(page.evaluate("window.pingpongLive.interval"))

        started.wait()
        time.sleep(3)  # the run's first exchanges, the charts made
        busy("top")
        page.evaluate("document.querySelector('.live-timeline').scrollIntoView({block: 'center'})")
        time.sleep(1)  # the canvases that came into view drawn once
        busy("timeline")
        browser.close()


async def measure(
    port: int, pid: int, runs: Path, viewers: int, settings: dict[str, Any], browser: bool
) -> dict[str, Any]:
    lags: list[list[float]] = [[] for _ in range(viewers)]
    started = threading.Event()
    busy: dict[str, float] = {}
    watcher = None
    if browser:
        seconds = max(1.0, min(20.0, (settings["duration"] - 7) / 2))
        watcher = threading.Thread(target=browser_busy, args=(port, started, seconds, busy))
        watcher.start()
        await asyncio.sleep(8)  # Chromium up, the page loaded and live
    done = asyncio.Event()
    ready = [asyncio.Event() for _ in range(viewers)]
    tasks = [asyncio.create_task(viewer(port, lags[i], ready[i], done)) for i in range(viewers)]
    # Every viewer has its snapshot before the run starts, so none misses its first lines.
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), 30)
    run = post(port, "/api/start", settings)
    started.set()
    cpu0, wall0, rss0 = cpu(pid), time.monotonic(), rss_mib(pid)
    samples: list[tuple[float, float]] = []  # (seconds into the run, RSS MiB)

    async def sample_memory() -> None:
        while True:
            await asyncio.sleep(30)
            samples.append((time.monotonic() - wall0, rss_mib(pid)))

    sampler = asyncio.create_task(sample_memory())
    await asyncio.wait_for(done.wait(), settings["duration"] + 60)
    cpu1, wall1, rss1 = cpu(pid), time.monotonic(), rss_mib(pid)
    sampler.cancel()
    await asyncio.gather(*tasks)
    if watcher is not None:
        await asyncio.to_thread(watcher.join)
    all_lags = sorted(lag for per_viewer in lags for lag in per_viewer)
    files = RunFolder(runs / run["id"])
    logs = [files.server_log, *files.client_logs().values()]
    folder_lines = sum(len(p.read_bytes().splitlines()) for p in logs)
    return {
        "viewers": viewers,
        "lines_per_s": folder_lines / (wall1 - wall0),
        "samples": len(all_lags),
        "lag_p50": percentile(all_lags, 0.5) if all_lags else float("nan"),
        "lag_p95": percentile(all_lags, 0.95) if all_lags else float("nan"),
        "lag_max": all_lags[-1] if all_lags else float("nan"),
        "cpu_pct": 100 * (cpu1 - cpu0) / (wall1 - wall0),
        "rss_start": rss0,
        "rss_end": rss1,
        "rss_samples": samples,
        "browser_pct": busy or None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/dashboard.py",
        description="Measure the dashboard: start a real uvicorn app.main:app on a free "
        "loopback port, connect WebSocket viewers, start a run through the API, and measure "
        "the lag from each log line's time to its arrival at a viewer, with the app's CPU "
        "share and memory (Linux /proc). One run, one table row, per viewer count.",
    )
    parser.add_argument(
        "--clients", type=int, default=2, metavar="N",
        help="clients in each run (default: 2)",
    )  # fmt: skip
    parser.add_argument(
        "--interval-ms", default="300-3000", metavar="MIN-MAX",
        help="the clients' send interval in milliseconds, as pingpong run takes it "
        "(default: 300-3000)",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=float, default=60.0, metavar="S",
        help="length of each run in seconds (default: 60)",
    )  # fmt: skip
    parser.add_argument(
        "--viewers", default="1", metavar="V,V,...",
        help="viewer counts, one run each; the first is the baseline the others are "
        "compared with (default: 1)",
    )  # fmt: skip
    parser.add_argument(
        "--browser", action="store_true",
        help="also open the page in Debian's Chromium and measure its main thread (CDP) "
        "(default: off)",
    )  # fmt: skip
    args = parser.parse_args()
    try:
        low, high = map(int, args.interval_ms.split("-"))
        viewer_counts = [int(v) for v in args.viewers.split(",")]
    except ValueError:
        parser.error("--interval-ms must be MIN-MAX and --viewers counts like 1,20")
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        process, port = start_app(runs)
        try:
            rows = []
            for count in viewer_counts:
                settings = {"clients": args.clients, "duration": args.duration,
                            "interval_ms": [low, high]}  # fmt: skip
                rows.append(
                    asyncio.run(measure(port, process.pid, runs, count, settings, args.browser))
                )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    print(f"dashboard: {args.clients} clients, interval {args.interval_ms} ms, "
          f"{args.duration:g} s per row, {os.cpu_count()} cores")  # fmt: skip
    print(f"{'viewers':>7} {'lines/s':>8} {'lag p50':>8} {'lag p95':>8} {'lag max':>8} "
          f"{'app CPU':>8} {'RSS MiB':>13} {'vs first':>9}")  # fmt: skip
    for row in rows:
        ratio = row["cpu_pct"] / rows[0]["cpu_pct"] if rows[0]["cpu_pct"] else float("nan")
        print(f"{row['viewers']:>7} {row['lines_per_s']:>8.0f} {row['lag_p50']:>6.0f}ms "
              f"{row['lag_p95']:>6.0f}ms {row['lag_max']:>6.0f}ms {row['cpu_pct']:>7.1f}% "
              f"{row['rss_start']:>6.1f}→{row['rss_end']:<6.1f} {ratio:>8.2f}x")  # fmt: skip
    for row in rows:
        if row["browser_pct"] is not None:
            busy = row["browser_pct"]
            print(f"Chromium main thread busy with the live page, {row['viewers']} viewers "
                  f"(+ the page): {busy['top']:.1f} % at the top of the page (redrawn every "
                  f"{busy['top_interval']:.0f} ms), {busy['timeline']:.1f} % scrolled to the "
                  f"timeline (every {busy['timeline_interval']:.0f} ms)")  # fmt: skip
    for row in rows:
        if row["rss_samples"]:
            print(f"RSS MiB every 30 s, {row['viewers']} viewers: "
                  + " ".join(f"{rss:.1f}" for _t, rss in row["rss_samples"]))  # fmt: skip


if __name__ == "__main__":
    main()
