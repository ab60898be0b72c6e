"""The run page and the compare page in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from .conftest import Dashboard, child_env, start_dashboard, stop_dashboard
from .test_browser import ARGS, CHROMIUM, Watch
from .test_runindex import SHORT, genrun

GENERATED = "2026-12-31_23-59-40"
OTHER = "2026-11-26_10-00-00"
FAILED = "2026-11-26_11-00-00"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three past runs: one across midnight, a shorter one, one whose check failed."""
    runs = tmp_path_factory.mktemp("runs")
    genrun.generate(runs / GENERATED, SHORT, datetime(2026, 12, 31, 23, 59, 40), seed=7)
    other = dataclasses.replace(SHORT, clients=2, duration=10)
    genrun.generate(runs / OTHER, other, datetime(2026, 11, 26, 10, 0, 0), seed=3)
    failed = runs / FAILED
    genrun.generate(failed, other, datetime(2026, 11, 26, 11, 0, 0), seed=4)
    lines = (failed / "client2.log").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[4] = "this line is damaged\n"
    (failed / "client2.log").write_text("".join(lines), encoding="utf-8")
    report = subprocess.run(
        [sys.executable, "-m", "pingpong.running.report", str(failed)],
        env=child_env(), capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    meta = json.loads((failed / "run.json").read_text(encoding="utf-8"))
    meta.update(json.loads(report.stdout))
    (failed / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    return runs


@pytest.fixture(scope="module")
def dashboard(runs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    running = start_dashboard(runs, tmp_path_factory.mktemp("log") / "uvicorn.log")
    try:
        yield running
    finally:
        stop_dashboard(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def open_run(browser: Browser, dashboard: Dashboard, run_id: str) -> tuple[Page, Watch]:
    page = browser.new_page(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
    watch = Watch(page)
    page.goto(f"{dashboard.url}/runs/{run_id}")
    page.wait_for_selector("#live-status[data-status=past]")
    page.wait_for_function("Number(document.body.dataset.windowLoaded || 0) >= 1")
    return page, watch


def real(problems: list[str]) -> list[str]:
    """The problems, without requests the page itself aborted because a newer one replaced them."""
    return [
        p for p in problems if not (p.startswith("failed: ") and p.endswith("net::ERR_ABORTED"))
    ]


def loads(page: Page) -> int:
    return int(page.evaluate("Number(document.body.dataset.windowLoaded || 0)"))


def hover_a_bar(page: Page) -> str:
    """Move the mouse along the first lane until a tooltip shows; its text."""
    box = page.locator("#timeline canvas").bounding_box()
    assert box is not None
    for dy in (6, 12, 18):
        for x in range(80, int(box["width"]) - 10, 3):
            page.mouse.move(box["x"] + x, box["y"] + 22 + dy)
            if page.locator(".timeline-tooltip").is_visible():
                return page.locator(".timeline-tooltip").inner_text()
    raise AssertionError("no bar found to hover")


def test_a_past_run_zoom_hover_and_page(browser: Browser, dashboard: Dashboard, runs: Path) -> None:
    page, watch = open_run(browser, dashboard, GENERATED)
    assert page.text_content("#state") == "finished"
    overview = dashboard.request("GET", f"/api/runs/{GENERATED}/overview")[1]
    assert page.text_content("[data-counter=requests]") == str(
        overview["counters"]["server"]["requests"]
    )
    assert page.locator("#clients tr").count() == 3
    for chart in ("#chart-rtt", "#chart-rates", "#chart-delays"):
        assert page.locator(f"{chart} canvas").count() == 1, chart
    # Zoom in with the wheel: the window narrows and new data comes for it.
    before = page.text_content("#window-label")
    loaded = loads(page)
    box = page.locator("#timeline canvas").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 3, box["y"] + 40)
    for _ in range(8):
        page.mouse.wheel(0, -400)
    page.wait_for_function(f"Number(document.body.dataset.windowLoaded) > {loaded}")
    label = page.text_content("#window-label") or ""
    assert label != before
    assert re.search(r"\((\d+(\.\d+)? s|\d+ ms)\)", label), label
    # Hover a bar: the exact wire lines, the four times, the round trip.
    tip = hover_a_bar(page)
    assert re.search(r"client → server\s+\[\d+\] PING", tip), tip
    assert re.search(
        r"server → client\s+(\[\d+/\d+\] PONG \(\d\)|nothing: the server ignored it)", tip
    )
    assert "client sent" in tip
    assert "server received" in tip
    # Keyboard: 0 shows the whole run again.
    page.locator("#timeline").focus()
    page.keyboard.press("0")
    page.wait_for_function(f"document.querySelector('#window-label').textContent === {before!r}")
    # The table: next page, previous page, the filter of one client's request 17.
    page.uncheck("#table-window")
    # The rows of the whole run, not those of a window asked for before.
    page.wait_for_function(
        "(t => t.dataset.filters !== undefined && !t.dataset.filters.includes('from='))"
        "(document.querySelector('#table-rows'))"
    )
    page.wait_for_selector("#table-rows tr[data-id]")
    first_page = page.locator("#table-rows tr[data-id]").first.get_attribute("data-id")
    page.click("#page-next")
    page.wait_for_function(
        f"document.querySelector('#table-rows tr[data-id]').dataset.id !== {first_page!r}"
    )
    page.click("#page-prev")
    page.wait_for_function(
        f"document.querySelector('#table-rows tr[data-id]').dataset.id === {first_page!r}"
    )
    page.select_option("#table-client", "2")
    page.fill("#table-request", "17")
    page.wait_for_function("document.querySelectorAll('#table-rows tr[data-id]').length === 1")
    row = page.locator("#table-rows tr[data-id]")
    assert row.locator("td").nth(1).text_content() == "client2"
    assert row.locator("td").nth(2).text_content() == "17"
    page.check("#table-wire")
    details = page.locator("#table-rows tr.details").inner_text()
    assert "[17] PING" in details
    client_lines = (runs / GENERATED / "client2.log").read_text(encoding="utf-8").splitlines()
    (client_line,) = [line for line in client_lines if ";[17] PING;" in line]
    assert client_line in details
    # Clicking the row centres the timeline on it.
    page.locator("#table-rows tr[data-id]").click()
    page.wait_for_function(f"document.querySelector('#window-label').textContent !== {before!r}")
    assert real(watch.problems) == []
    page.close()


def test_a_bar_clicked_is_found_in_the_table(browser: Browser, dashboard: Dashboard) -> None:
    page, watch = open_run(browser, dashboard, OTHER)
    box = page.locator("#timeline canvas").bounding_box()
    assert box is not None
    loaded = loads(page)
    page.mouse.move(box["x"] + 200, box["y"] + 40)
    for _ in range(4):
        page.mouse.wheel(0, -400)
    page.wait_for_function(f"Number(document.body.dataset.windowLoaded) > {loaded}")
    tip = hover_a_bar(page)
    request = re.search(r"request (\d+)", tip)
    page.mouse.down()
    page.mouse.up()
    page.wait_for_selector("#table-rows tr.selected")
    selected = page.locator("#table-rows tr.selected td")
    if request:
        assert selected.nth(2).text_content() == request[1]
    assert real(watch.problems) == []
    page.close()


def test_a_bar_that_began_before_the_window_moves_the_window_to_it(
    browser: Browser, dashboard: Dashboard
) -> None:
    page, watch = open_run(browser, dashboard, OTHER)
    box = page.locator("#timeline canvas").bounding_box()
    assert box is not None
    loaded = loads(page)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 40)
    for _ in range(12):  # a window shorter than a round trip
        page.mouse.wheel(0, -400)
    page.wait_for_function(f"Number(document.body.dataset.windowLoaded) > {loaded}")
    before = page.text_content("#window-label") or ""
    start = before.split(" – ")[0]
    # A bar at the window's left edge: it was sent before the window begins.
    tip = ""
    for dy in range(4, 60, 3):
        page.mouse.move(box["x"] + 76, box["y"] + 22 + dy)
        if page.locator(".timeline-tooltip").is_visible():
            tip = page.locator(".timeline-tooltip").inner_text()
            if (sent := re.search(r"client sent\s+(\S+)", tip)) and sent[1] < start:
                break
    else:
        pytest.skip(f"no bar sent before the window at its edge ({before!r})")
    request = re.search(r"request (\d+)", tip)
    loaded = loads(page)
    page.mouse.down()
    page.mouse.up()
    page.wait_for_function(f"Number(document.body.dataset.windowLoaded) > {loaded}")
    page.wait_for_selector("#table-rows tr.selected")
    # The table still follows the window, which moved to take the bar in.
    assert page.is_checked("#table-window")
    assert page.text_content("#window-label") != before
    if request:
        assert page.locator("#table-rows tr.selected td").nth(2).text_content() == request[1]
    assert real(watch.problems) == []
    page.close()


def test_of_overlapping_bars_the_one_on_top_is_hit(browser: Browser, dashboard: Dashboard) -> None:
    """Seven requests of one client in flight at once: the seventh shares a row with the
    first, drawn over it; a point on both hits the seventh, the one seen there."""
    page, watch = open_run(browser, dashboard, OTHER)
    hit = page.evaluate(
        """() => {
            const T = window.pingpongTimeline;
            const el = document.createElement("div");
            el.style.width = "700px";
            document.body.append(el);
            const timeline = new T.Timeline(el);
            timeline.setView(0, 10);
            const n = 7;
            const column = (f) => Array.from({ length: n }, (_, i) => f(i));
            timeline.setData({
                mode: "bars", base: 0, outcomes: T.OUTCOMES, count: n,
                bars: {
                    id: column((i) => 100 + i), t: column((i) => i * 500),
                    client: column(() => 1), request: column((i) => i), response: column((i) => i),
                    peer: column(() => 1), outcome: column(() => 0),
                    client_sent: column((i) => i * 500), server_received: column(() => null),
                    server_sent: column(() => null), client_done: column(() => 6000),
                },
            });
            const box = timeline._barBox(6);
            const index = timeline.hit(timeline.x(4), box.y + box.h / 2);
            el.remove();
            const { row, id } = timeline.bars;
            return { row0: row[0], row6: row[6], id: id[index] };
        }"""
    )
    assert hit["row0"] == hit["row6"] == 0
    assert hit["id"] == 106
    assert real(watch.problems) == []
    page.close()


def test_a_finding_links_to_the_line_it_cites(browser: Browser, dashboard: Dashboard) -> None:
    page, watch = open_run(browser, dashboard, FAILED)
    assert "fail" in (page.text_content("#verdict") or "")
    link = page.locator("#rules a.cite", has_text="client2.log:5").first
    link.click()
    page.wait_for_selector("#line-viewer:not([hidden]) .cited")
    assert "this line is damaged" in (page.text_content("#line-viewer .cited") or "")
    assert "client2.log:5" in (page.text_content("#problems") or "")
    assert real(watch.problems) == []
    page.close()


def test_downloads_hold_the_run_and_the_filter(
    browser: Browser, dashboard: Dashboard, runs: Path, tmp_path: Path
) -> None:
    page, watch = open_run(browser, dashboard, OTHER)
    with page.expect_download() as info:
        page.click("#export-zip")
    saved = tmp_path / "run.zip"
    info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        names = set(archive.namelist())
        assert f"{OTHER}/server.log" in names
        assert f"{OTHER}/run.json" in names
        assert archive.read(f"{OTHER}/client1.log") == (runs / OTHER / "client1.log").read_bytes()
    page.uncheck("#table-window")
    page.select_option("#table-client", "1")
    page.uncheck('input[name="table-outcome"][value="keepalive"]')
    page.wait_for_function("!document.querySelector('#export-csv').href.endsWith('#')")
    page.wait_for_function("document.querySelector('#export-csv').href.includes('outcome=')")
    with page.expect_download() as info:
        page.click("#export-csv")
    saved = tmp_path / "exchanges.csv"
    info.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert rows
    assert {r["client"] for r in rows} == {"1"}
    assert "keepalive" not in {r["outcome"] for r in rows}
    total = int((page.text_content("#table-total") or "0").split()[0].replace(",", ""))
    assert len(rows) == total
    assert real(watch.problems) == []
    page.close()


def test_compare_two_runs_from_the_history(browser: Browser, dashboard: Dashboard) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch = Watch(page)
    page.goto(dashboard.url)
    page.wait_for_selector(f'#history tr[data-run="{GENERATED}"]')
    page.check(f'#history tr[data-run="{GENERATED}"] .compare-pick')
    page.check(f'#history tr[data-run="{OTHER}"] .compare-pick')
    page.click("#compare-runs")
    page.wait_for_selector("#compare-status[data-status=past]")
    assert page.locator("#compare-head a").all_text_contents() == [GENERATED, OTHER]
    differs = page.locator("#compare-body tr.diff").evaluate_all(
        "rows => rows.map(r => r.dataset.key)"
    )
    assert "clients" in differs
    assert "requests" in differs
    assert "timeout_ms" not in differs
    for chart in ("#chart-cdf", "#chart-compare-rates"):
        assert page.locator(f"{chart} canvas").count() == 1
    # Each run's id links to its page.
    page.click(f'#compare-head a:text("{OTHER}")')
    page.wait_for_selector("#live-status[data-status=past]")
    assert real(watch.problems) == []
    page.close()


def test_a_live_run_page_follows_the_run_then_stays(
    browser: Browser, dashboard: Dashboard, no_stray_processes: None
) -> None:
    short = {"clients": 2, "duration": 6, "interval_ms": [50, 200], "delay_ms": [10, 100],
             "timeout_ms": 300, "keepalive_s": 0.5}  # fmt: skip
    status, run = dashboard.request("POST", "/api/start", short)
    assert status == 202
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch = Watch(page)
    page.goto(f"{dashboard.url}/runs/{run['id']}")
    page.wait_for_selector("#live-status[data-status=live]")
    assert page.get_attribute("#follow", "aria-pressed") == "true"
    page.wait_for_function(
        "Number(document.querySelector('[data-counter=requests]').textContent) > 0"
    )
    before = int(page.text_content("[data-counter=requests]") or "0")
    page.wait_for_function(
        f"Number(document.querySelector('[data-counter=requests]').textContent) > {before}"
    )
    # Its processes are running, not "all exited 0".
    assert page.text_content("#processes-summary") == "Processes (3, 3 running)"
    # Pausing the follow: a pan stops it; End follows the head again.
    page.locator("#timeline").focus()
    page.keyboard.press("ArrowLeft")
    assert page.get_attribute("#follow", "aria-pressed") == "false"
    page.keyboard.press("End")
    assert page.get_attribute("#follow", "aria-pressed") == "true"
    # The run ends: the page says so, shows the verdict, and stays.
    page.wait_for_selector("#live-status[data-status=past]", timeout=30_000)
    page.wait_for_function(
        "['pass', 'fail'].some(w => document.querySelector('#verdict').textContent.startsWith(w))"
    )
    assert page.text_content("#state") in ("finished", "failed")
    page.wait_for_function(
        "document.querySelector('#processes-summary').textContent === 'Processes (3, all exited 0)'"
    )
    assert page.is_hidden("#follow")
    final = page.text_content("[data-counter=requests]")
    overview = dashboard.request("GET", f"/api/runs/{run['id']}/overview")[1]
    assert final == str(overview["counters"]["server"]["requests"])
    assert real(watch.problems) == []
    page.close()


def test_the_live_page_has_a_timeline_of_the_latest_exchanges(
    browser: Browser, dashboard: Dashboard, no_stray_processes: None
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch = Watch(page)
    page.goto(dashboard.url)
    page.wait_for_selector("#connection[data-status=live]")
    short = {"clients": 2, "duration": 8, "interval_ms": [50, 200], "delay_ms": [10, 100],
             "timeout_ms": 300, "keepalive_s": 0.5}  # fmt: skip
    status, run = dashboard.request("POST", "/api/start", short)
    assert status == 202
    # This run's counters, not the previous run's.
    page.wait_for_function(
        f"document.querySelector('#run-id').textContent === {run['id']!r}"
        " && Number(document.querySelector('[data-counter=requests]').textContent) > 10"
    )
    page.locator("#live-timeline").scroll_into_view_if_needed()
    box = page.locator("#live-timeline canvas").bounding_box()
    assert box is not None
    tip = ""
    for dy in (6, 12, 18):
        for x in range(80, int(box["width"]) - 10, 4):
            page.mouse.move(box["x"] + x, box["y"] + 22 + dy)
            if page.locator("#live-timeline .timeline-tooltip").is_visible():
                tip = page.locator("#live-timeline .timeline-tooltip").inner_text()
                break
        if tip:
            break
    assert re.search(r"client1|client2", tip), tip
    # Pause stops following; End follows again.
    page.click("#live-follow")
    assert page.get_attribute("#live-follow", "aria-pressed") == "true"
    page.locator("#live-timeline").focus()
    page.keyboard.press("End")
    assert page.get_attribute("#live-follow", "aria-pressed") == "false"
    dashboard.wait_for_state("finished", "failed")
    assert real(watch.problems) == []
    page.close()
