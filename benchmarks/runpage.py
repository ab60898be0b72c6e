"""Run page benchmark: a long, busy run opened, zoomed, panned and paged, with its index built.

    python benchmarks/runpage.py                      # generates a 3.6M-line run first
    python benchmarks/runpage.py --runs-dir DIR       # reuses DIR/2026-11-26_12-00-00 if there

A synthetic but valid run (``benchmarks/genrun.py``: 28 clients, an hour, 45-65 ms
between requests, about 1,000 log lines a second) is served by a real ``uvicorn
app.main:app``. Measured (Linux: /proc for memory):

* building the run's index, as the app does on first open (a child process), with the
  app's resident memory sampled while it builds, and the builder's peak;
* opening the run page in Debian's Chromium: navigation to the first complete paint
  (counters, timeline, charts and the table all drawn), index already built;
* zoom and pan on the timeline in the browser: from the input to the new window's data
  drawn, as the page itself times it, plus the timeline requests alone over HTTP;
* a page of exchanges under a random filter (client, outcomes, window, request number),
  first page and the next two by cursor, over HTTP.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dashboard import rss_mib, start_app  # noqa: E402
from genrun import generate  # noqa: E402

from pingpong.benchmarking.bench import memory_mib  # noqa: E402
from pingpong.checking.stats import percentile  # noqa: E402
from pingpong.core.settings import MsRange, RunSettings  # noqa: E402

RUN_ID = "2026-11-26_12-00-00"
CHROMIUM = os.environ.get("PINGPONG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


class Http:
    """One keep-alive connection to the app."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def get(self, path: str) -> tuple[float, Any]:
        started = time.perf_counter()
        try:
            self.connection.request("GET", path)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            # The server closes a connection left idle for a few seconds: open another.
            self.connection.close()
            started = time.perf_counter()
            self.connection.request("GET", path)
            response = self.connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise SystemExit(f"GET {path}: {response.status} {body[:300]!r}")
        return elapsed, json.loads(body)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return found


def build(port: int, pid: int, folder: Path) -> dict[str, Any]:
    for path in folder.glob("index.sqlite*"):
        path.unlink()
    app_rss: list[float] = []
    builder_peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            app_rss.append(rss_mib(pid))
            for child in children(pid):
                memory = memory_mib(child)
                if memory is not None:
                    builder_peak[0] = max(builder_peak[0], memory[1])
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    elapsed, overview = Http(port).get(f"/api/runs/{RUN_ID}/overview")
    done.set()
    sampler.join()
    return {
        "seconds": elapsed / 1000,
        "lines": overview["index"]["lines"],
        "app_rss": (min(app_rss), max(app_rss)),
        "builder_peak": builder_peak[0],
    }


def first_paints(port: int, rounds: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        for _ in range(rounds):
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}/runs/{RUN_ID}")
            page.wait_for_function(
                "Number(document.body.dataset.windowLoaded || 0) >= 1"
                " && document.querySelectorAll('#table-rows tr[data-id]').length > 0"
                " && document.querySelectorAll('#chart-rtt canvas, #chart-rates canvas')"
                ".length == 2",
                polling="raf", timeout=60_000,
            )  # fmt: skip
            times.append(float(page.evaluate("performance.now()")))
            page.close()
        browser.close()
    return times


def zoom_and_pan(port: int, actions: int, seed: int) -> list[float]:
    """Input-to-data times of wheel zooms, drags and keys on the timeline, in the browser."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    rng = random.Random(seed)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(f"http://127.0.0.1:{port}/runs/{RUN_ID}")
        page.wait_for_function("Number(document.body.dataset.windowLoaded || 0) >= 1")
        page.locator("#timeline").scroll_into_view_if_needed()
        box = page.locator("#timeline canvas").bounding_box()
        assert box is not None
        for _ in range(actions):
            measured = int(page.evaluate("window.pingpongRunPage.latencies.length"))
            x = box["x"] + 80 + rng.random() * (box["width"] - 100)
            y = box["y"] + 40
            kind = rng.choice(["in", "in", "out", "pan", "key"])
            if kind in ("in", "out"):
                page.mouse.move(x, y)
                for _ in range(rng.randint(1, 4)):
                    page.mouse.wheel(0, -300 if kind == "in" else 300)
            elif kind == "pan":
                page.mouse.move(x, y)
                page.mouse.down()
                page.mouse.move(x + rng.choice([-1, 1]) * rng.randint(50, 400), y, steps=5)
                page.mouse.up()
            else:
                page.locator("#timeline").focus()
                page.keyboard.press(rng.choice(["0", "ArrowLeft", "ArrowRight", "+", "-"]))
            # Each action's own time: its view loaded and drawn. A key at the edge of the
            # run may not move the view: nothing to load then.
            with contextlib.suppress(PlaywrightTimeout):
                page.wait_for_function(
                    f"window.pingpongRunPage.latencies.length > {measured}"
                    " && !window.pingpongRunPage.busy",
                    polling="raf", timeout=5_000,
                )  # fmt: skip
        latencies = [float(v) for v in page.evaluate("window.pingpongRunPage.latencies")]
        browser.close()
    return latencies


def http_timeline(http: Http, first: float, last: float, count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    times = []
    for _ in range(count):
        span = (last - first) * 10 ** (-rng.random() * 3.5)  # the whole run down to ~1 s
        start = first + rng.random() * (last - first - span)
        query = urlencode({"from": f"{start:.3f}", "to": f"{start + span:.3f}", "width": 1400})
        times.append(http.get(f"/api/runs/{RUN_ID}/timeline?{query}")[0])
    return times


def filtered_pages(
    http: Http, first: float, last: float, clients: int, count: int, seed: int
) -> list[float]:
    rng = random.Random(seed)
    outcomes = ["answered", "timed out", "ignored", "late", "keepalive"]
    times = []
    for _ in range(count):
        query: dict[str, Any] = {"limit": 100}
        if rng.random() < 0.7:
            query["client"] = rng.randint(1, clients)
        if rng.random() < 0.6:
            query["outcome"] = ",".join(rng.sample(outcomes, rng.randint(1, 3)))
        if rng.random() < 0.6:
            span = (last - first) * 10 ** (-rng.random() * 3)
            start = first + rng.random() * (last - first - span)
            query["from"], query["to"] = f"{start:.3f}", f"{start + span:.3f}"
        if rng.random() < 0.15:
            query["request"] = rng.randint(0, 60_000)
        path = f"/api/runs/{RUN_ID}/exchanges?{urlencode(query)}"
        elapsed, page = http.get(path)
        times.append(elapsed)
        for _ in range(2):
            if not page["next"]:
                break
            elapsed, page = http.get(f"{path}&{urlencode({'cursor': page['next']})}")
            times.append(elapsed)
    return times


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"p50 {percentile(ordered, 0.5):.0f} / p95 {percentile(ordered, 0.95):.0f} / "
        f"max {ordered[-1]:.0f} ms (n = {len(ordered)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--clients", type=int, default=28)
    parser.add_argument("--duration", type=float, default=3600)
    parser.add_argument("--interval-ms", default="45-65")
    parser.add_argument("--paints", type=int, default=5)
    parser.add_argument("--actions", type=int, default=40)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    temporary = None
    if args.runs_dir is None:
        temporary = tempfile.TemporaryDirectory()
        args.runs_dir = Path(temporary.name)
    folder = args.runs_dir / RUN_ID
    if not (folder / "server.log").exists():
        low, high = map(int, args.interval_ms.split("-"))
        settings = RunSettings(clients=args.clients, duration=args.duration,
                               interval_ms=MsRange(low, high))  # fmt: skip
        started = time.monotonic()
        lines = generate(folder, settings, datetime(2026, 11, 26, 12, 0, 0), seed=args.seed)
        print(f"generated {lines:,} log lines in {time.monotonic() - started:.0f} s")
    process, port = start_app(args.runs_dir)
    try:
        built = build(port, process.pid, folder)
        http = Http(port)
        _ms, overview = http.get(f"/api/runs/{RUN_ID}/overview")
        first, last = overview["index"]["first"], overview["index"]["last"]
        clients = len(overview["clients"])
        paints = first_paints(port, args.paints)
        browser_zoom = zoom_and_pan(port, args.actions, args.seed)
        timeline = http_timeline(http, first, last, args.requests, args.seed)
        pages = filtered_pages(http, first, last, clients, args.requests, args.seed)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        if temporary is not None:
            temporary.cleanup()
    print(f"run page: {built['lines']:,} log lines, {clients} clients, "
          f"{(last - first) / 60:.0f} min, {os.cpu_count()} cores")  # fmt: skip
    print(f"index build (child process): {built['seconds']:.1f} s; app RSS while building "
          f"{built['app_rss'][0]:.1f}-{built['app_rss'][1]:.1f} MiB; builder peak RSS "
          f"{built['builder_peak']:.0f} MiB")  # fmt: skip
    print(f"first complete paint: median {statistics.median(paints):.0f} ms, "
          f"max {max(paints):.0f} ms ({len(paints)} loads)")  # fmt: skip
    print(f"zoom/pan in the browser, input to data drawn: {summary(browser_zoom)}")
    print(f"timeline requests (HTTP), whole run to 1 s windows: {summary(timeline)}")
    print(f"a page of exchanges under a filter (HTTP): {summary(pages)}")


if __name__ == "__main__":
    main()
