"""The dashboard page in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Response,
    sync_playwright,
)

from app.live import time_zone
from pingpong.checking.check import check_run
from pingpong.core.settings import DEFAULTS, RunSettings

from .conftest import Dashboard, child_env, pingpong_argv, start_dashboard, stop_dashboard

CHROMIUM = os.environ.get("PINGPONG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
SHORT = {
    "clients": "2", "duration": "30", "interval_ms_min": "50", "interval_ms_max": "200",
    "delay_ms_min": "10", "delay_ms_max": "100", "timeout_ms": "300", "keepalive_s": "0.5",
}  # fmt: skip


def keep_in_view(page: Page, row_id: str) -> None:
    """Keep the feed's row ``row_id`` in view, as a reader following it would: only the
    rows in view are in the page, and at the top of the feed newer rows push this one
    down (scrolled down during a run, the feed holds its rows until it is back at the
    top)."""
    page.evaluate(
        """id => {
            clearInterval(window.keepInView);
            window.keepInView = setInterval(() => {
                const row = document.querySelector(`#exchanges tr[data-id='${id}']`);
                if (row) row.scrollIntoView({ block: "center" });
                else window.keepInViewLost = id;
            }, 20);
        }""",
        row_id,
    )


def wait_attributed(page: Page, row_id: str) -> None:
    """Until the feed's row ``row_id``, kept in view, names its client; then back to the
    top of the feed, which follows the newest rows again."""
    keep_in_view(page, row_id)
    page.wait_for_function(
        """id => {
            if (window.keepInViewLost === id) throw new Error(`row ${id} left the feed`);
            const row = document.querySelector(`#exchanges tr[data-id='${id}']`);
            return row && /^client[0-9]+$/.test(row.querySelector(".c-client").textContent);
        }""",
        arg=row_id,
        polling=50,  # not on animation frames: a tab in the background gets none
        timeout=15_000,
    )
    page.evaluate(
        """() => {
            clearInterval(window.keepInView);
            document.querySelector(".feed .scroll").scrollTop = 0;
        }"""
    )
    page.wait_for_function("document.querySelector('#pause').textContent === 'Pause'")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


class Watch:
    """Every console error, page error and failed request of a page."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        self.expected: list[re.Pattern[str]] = []
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self.on_failed)
        page.on("response", self.on_response)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in self.expected):
            self.problems.append(f"console: {message.text}")

    def on_failed(self, request: Request) -> None:
        problem = f"failed: {request.url} {request.failure}"
        if not any(p.search(problem) for p in self.expected):
            self.problems.append(problem)

    def on_response(self, response: Response) -> None:
        if response.status >= 400 and not any(p.search(f"{response.status} {response.url}")
                                              for p in self.expected):  # fmt: skip
            self.problems.append(f"HTTP {response.status}: {response.url}")


def fill(page: Page, values: dict[str, str]) -> None:
    for name, value in values.items():
        page.fill(f"#settings [name={name}]", value)


def edit(page: Page, values: dict[str, str]) -> None:
    """Fill and leave each field, as a person does: the page checks a field when it changes."""
    for name, value in values.items():
        page.fill(f"#settings [name={name}]", value)
        page.locator(f"#settings [name={name}]").blur()


def counter(page: Page, name: str) -> int:
    return int(page.text_content(f'[data-counter="{name}"]') or "0")


def assert_no_sideways_scroll(page: Page, *selectors: str) -> None:
    widths = page.evaluate(
        """selectors => [document.documentElement].concat(
            selectors.map(s => document.querySelector(s))).map(
            el => [el.scrollWidth, el.clientWidth])""",
        list(selectors),
    )
    for name, (scroll, client) in zip(["page", *selectors], widths, strict=True):
        assert scroll <= client, f"{name} scrolls sideways: {scroll} > {client}"


def check_charts(page: Page) -> None:
    """Time axes read 24-hour times whose labels keep apart; the last delay bar is inside."""
    page.wait_for_function("window.pingpongCharts.rates && window.pingpongCharts.delays")
    for chart in ("rtt", "rates"):
        labels = page.evaluate(
            """chart => {
                const u = window.pingpongCharts[chart];
                const axis = u.axes[0];
                u.ctx.font = axis.font[0];
                return axis._splits.map((t, i) => [axis._values[i], u.valToPos(t, "x")])
                    .filter(([label]) => label !== null)
                    .map(([label, x]) => [label, x, u.ctx.measureText(label).width]);
            }""",
            chart,
        )
        assert labels, chart
        for label, _x, _width in labels:
            assert re.fullmatch(r"[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?", label), (chart, label)
        for (_a, x1, w1), (_b, x2, w2) in itertools.pairwise(labels):
            assert x2 - x1 >= (w1 + w2) / 2 + 4, (chart, labels)
    edges = page.evaluate(
        """() => {
            const u = window.pingpongCharts.delays;
            const lows = u.data[0];
            return [u.scales.x.max, lows[lows.length - 1] + (lows[1] - lows[0])];
        }"""
    )
    assert edges[0] >= edges[1] - 1e-9, edges
    assert page.is_hidden("#chart-rtt-empty")


def failed_run(runs: Path) -> Path:
    """A real failed run, made by the command line: its server cannot listen."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        subprocess.run(
            pingpong_argv("run", "--port", str(port), "--duration", "5", "--clients", "1",
                          "--runs-dir", str(runs)),
            env=child_env(), capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    (folder,) = runs.iterdir()
    return folder


def timing_only_run(runs: Path) -> Path:
    """A run folder whose check failed on a timing rule only: one answer 35 ms late."""
    folder = runs / "2020-01-01_00-00-00"
    folder.mkdir(parents=True)
    (folder / "server.log").write_text(
        "2020-01-01;00:00:01.000;[0] PING;00:00:02.035;[0/0] PONG (1)\n", encoding="utf-8"
    )
    (folder / "client1.log").write_text(
        "2020-01-01;00:00:00.999;[0] PING;00:00:02.036;[0/0] PONG (1)\n", encoding="utf-8"
    )
    settings = RunSettings(clients=1)
    (folder / "run.json").write_text(json.dumps({"settings": settings.to_json()}))
    report = check_run(folder)
    assert report.timing_only
    run: dict[str, Any] = {
        "id": folder.name, "state": "finished", "stopped_by": "deadline", "error": None,
        "settings": settings.to_json(), "started_at": "2020-01-01T00:00:00.000",
        "listening_at": None, "ended_at": None, "elapsed": 2.0, "address": None,
        "processes": [], "summary": None, "check": report.to_json(), "check_not_run": None,
    }  # fmt: skip
    (folder / "run.json").write_text(json.dumps(run))
    return folder


def test_fresh_page_and_history_wide_and_narrow(browser: Browser, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run_id = failed_run(runs).name
    late = timing_only_run(runs)
    dashboard = start_dashboard(runs, tmp_path / "uvicorn.log")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        watch = Watch(page)
        page.goto(dashboard.url)
        page.wait_for_selector("#connection[data-status=live]")
        # A fresh app with past runs on disk: every empty place says where they are.
        since = "no run since the app started; past runs are in History"
        page.wait_for_function(f"document.querySelector('#clients').textContent === '{since}'")
        assert page.text_content("#exchanges") == since
        assert page.text_content("#processes") == since
        for chart in ("rtt", "rates", "delays"):
            assert page.is_visible(f"#chart-{chart}-empty")
            assert page.text_content(f"#chart-{chart}-empty") == since
        # The logs' time zone, said once; units on the round-trip columns.
        zone = time_zone(datetime.now().astimezone())
        assert zone["label"] in (page.text_content("#time-zone") or "")
        assert "round trip, ms" in (page.text_content(".counters thead") or "")
        # The failed run: its error under the row, shortened, whole on demand.
        row = page.locator(f'#history tr[data-run="{run_id}"]')
        row.wait_for()
        error = page.locator(f'#history tr[data-error-of="{run_id}"]')
        summary = error.locator("summary").text_content() or ""
        full = error.locator("pre").text_content() or ""
        assert "cannot listen" in full
        check = row.locator('td[data-label="check"]').text_content() or ""
        assert check == "not run: the server never started"
        assert len(summary) <= 141
        assert full.startswith(summary.rstrip("…"))
        assert not error.locator("pre").is_visible()
        error.locator("summary").click()
        assert error.locator("pre").is_visible()
        for width in (1280, 420):
            page.set_viewport_size({"width": width, "height": 900})
            assert_no_sideways_scroll(page, ".history .scroll", ".status", ".counters")
            box = row.locator(".logs").bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= width
            page.screenshot(path=str(tmp_path / f"fresh-{width}.png"), full_page=True)
        # Each log link says which run it belongs to.
        links = row.locator(".logs a:not(.download)")
        assert links.count() >= 1
        for link in links.all():
            assert link.get_attribute("aria-label") == f"{link.text_content()} of run {run_id}"
        # How the run ended and who stopped it, beside its id, in the colour of a failure.
        ended = row.locator(".run-ended")
        assert ended.text_content() == "failed · stopped by failure"
        settings = row.locator('td[data-label="settings"]').text_content() or ""
        assert settings.startswith("1 client · 5 s · "), settings
        assert "ended-failed" in (ended.get_attribute("class") or "")
        # A check that failed on timing only says so; its findings and notes on demand.
        late_row = page.locator(f'#history tr[data-run="{late.name}"]')
        verdict = late_row.locator('td[data-label="check"] summary')
        assert verdict.text_content() == "fail (timing): 1 finding"
        assert "timers fired late" in (verdict.get_attribute("title") or "")
        assert late_row.locator(".run-ended").text_content() == "finished · stopped by deadline"
        # A log's name shows it in a new tab, as text; the arrow beside it saves it.
        with page.expect_popup() as popup_info:
            late_row.locator(".logs a", has_text="server.log").click()
        shown = popup_info.value
        shown.wait_for_load_state()
        assert shown.url.endswith(f"/api/runs/{late.name}/logs/server.log")
        assert shown.text_content("body") == (late / "server.log").read_text(encoding="utf-8")
        shown.close()
        assert late_row.locator("a.download").first.get_attribute("download") == (
            f"{late.name}_server.log"
        )
        assert watch.problems == []
        page.close()
    finally:
        stop_dashboard(dashboard)


def test_invalid_settings_show_their_messages(browser: Browser, dashboard: Dashboard) -> None:
    page = browser.new_page()
    watch = Watch(page)
    page.goto(dashboard.url)
    page.wait_for_selector("#connection[data-status=live]")
    # Client-side validation, in the server's words (from the schema in the snapshot).
    edit(page, {"clients": "0", "delay_ms_max": "3000"})
    # The delay maximum was changed last: the rule with the timeout is reported there.
    assert page.text_content("#error-delay_ms") == "max must be below the timeout (2000 ms)"
    page.click("#start")
    assert page.text_content("#error-clients") == "must be a whole number from 1 to 100"
    assert page.text_content("#error-delay_ms") == "max must be below the timeout (2000 ms)"
    assert page.text_content("#error-timeout_ms") == ""
    assert page.get_attribute("#settings [name=clients]", "aria-invalid") == "true"
    # Lowering the timeout instead: now the timeout is the field in the wrong.
    edit(page, {"delay_ms_max": "1000", "timeout_ms": "900"})
    assert page.text_content("#error-timeout_ms") == (
        "must be above the server delay maximum (1000 ms)"
    )
    assert page.text_content("#error-delay_ms") == ""
    # A seed past what a page's numbers hold exactly is refused, in words.
    edit(page, {"timeout_ms": "2000", "seed": "100000000000000000000000"})
    assert page.text_content("#error-seed") == (
        "must be a whole number from 0 to 9007199254740991, or nothing for a random seed"
    )
    edit(page, {"seed": ""})
    # The server's own 422 message lands next to its field too.
    edit(page, {"clients": "2"})
    watch.expected.append(re.compile(r"422|status of 422"))
    page.route("**/api/start", lambda route: route.continue_(post_data='{"ignore": 5}'))
    page.click("#start")
    page.wait_for_function("document.querySelector('#error-ignore').textContent !== ''")
    assert page.text_content("#error-ignore") == "must be a number from 0 to 1"
    assert page.text_content("#error-clients") == ""
    assert page.text_content("#state") == "idle"
    # Reset to defaults: every field back, every message gone.
    edit(page, {"clients": "0", "timeout_ms": "900", "seed": "7"})
    assert page.text_content("#error-clients") != ""
    page.click("#reset")
    assert page.input_value("#settings [name=clients]") == str(DEFAULTS["clients"])
    assert page.input_value("#settings [name=timeout_ms]") == str(DEFAULTS["timeout_ms"])
    assert page.input_value("#settings [name=interval_ms_min]") == str(DEFAULTS["interval_ms"][0])
    assert page.input_value("#settings [name=seed]") == ""
    assert page.text_content("#error-clients") == ""
    assert page.text_content("#form-error") == ""
    assert page.get_attribute("#settings [name=clients]", "aria-invalid") == "false"
    assert watch.problems == []
    page.close()


def test_watch_a_run_live_in_two_tabs(browser: Browser, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    dashboard = start_dashboard(runs, tmp_path / "uvicorn.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        watch = Watch(page)
        page.goto(dashboard.url)
        page.wait_for_selector("#connection[data-status=live]")
        assert page.text_content("#state") == "idle"
        assert page.is_disabled("#stop")
        fill(page, {**SHORT, "duration": "120"})  # stopped by the test long before
        clicked = time.monotonic()
        page.focus("#start")
        page.keyboard.press("Enter")
        # Until the clients log something, the tables say what is coming.
        page.wait_for_function(
            "document.querySelector('#clients').textContent.includes('waiting for clients')"
        )
        # Focus moves on to Stop, the control that now makes sense (never to <body>).
        page.wait_for_function("document.activeElement === document.querySelector('#stop')")
        page.wait_for_selector("#exchanges tr.row-answered", timeout=15_000)
        first_exchange_s = time.monotonic() - clicked
        print(f"Start to first exchange on screen: {first_exchange_s * 1000:.0f} ms")
        assert first_exchange_s < 5
        page.wait_for_function(
            "Number(document.querySelector('[data-counter=requests]').textContent) > 20"
        )
        assert page.text_content("#state") == "running"
        # The active run's duration in the history keeps time with the clock.
        run_id = page.text_content("#run-id")
        page.wait_for_function(
            """id => {
                const cell = document.querySelector(`#history tr[data-run="${id}"] .duration`);
                const now = document.querySelector("#elapsed").textContent;
                return cell && cell.textContent === now && !["0:00", "0:01"].includes(now);
            }""",
            arg=run_id,
        )
        # Newest first, in the order of the times shown.
        times = page.locator("#exchanges td.c-time").all_text_contents()
        if not (any(t < "00:01" for t in times) and any(t > "23:59" for t in times)):
            assert times == sorted(times, reverse=True)
        check_charts(page)
        assert page.is_disabled("#start")
        assert page.is_enabled("#stop")
        assert counter(page, "connected") == 2
        assert page.locator("#clients tr").count() == 2
        assert page.locator("#exchanges tr").count() > 5
        for chart in ("#chart-rtt", "#chart-rates", "#chart-delays"):
            assert page.locator(f"{chart} canvas").count() == 1, chart
        assert page.locator("#processes tr").count() == 3
        # Filters: only timed-out rows, then one client's rows.
        page.uncheck('input[name=outcome][value="answered"]')
        page.uncheck('input[name=outcome][value="keepalive"]')
        outcomes = set(page.locator("#exchanges td.outcome").all_text_contents())
        assert "answered" not in outcomes
        assert "keepalive" not in outcomes
        page.check('input[name=outcome][value="answered"]')
        page.select_option("#filter-client", "2")
        page.wait_for_selector("#exchanges tr.row-ignored")
        clients = set(page.locator("#exchanges tr td:nth-child(2)").all_text_contents())
        # An ignored request not yet attributed may be client2's: it stays in view.
        assert clients <= {"client2", "client?"}
        assert "client2" in clients
        page.select_option("#filter-client", "")
        # Pause keeps the feed still while counters go on.
        page.click("#pause")
        frozen = page.inner_html("#exchanges")
        before = counter(page, "requests")
        page.wait_for_function(
            f"Number(document.querySelector('[data-counter=requests]').textContent) > {before}"
        )
        assert page.inner_html("#exchanges") == frozen
        page.wait_for_function(
            "/^[0-9]+\\+? new rows? held back$/"  # a floor (+) once more came than are kept
            ".test(document.querySelector('#held-back').textContent)"
        )
        page.click("#pause")
        assert page.text_content("#held-back") == ""
        # A second tab, on a narrow screen, shows the same run.
        other = browser.new_page(viewport={"width": 420, "height": 900})
        other_watch = Watch(other)
        other.goto(dashboard.url)
        assert other.text_content("#state") == "running"  # server-rendered, before any message
        other.wait_for_selector("#connection[data-status=live]")
        assert other.text_content("#run-id") == run_id
        # Both tabs show the run's settings, read-only, not the defaults.
        for tab in (page, other):
            assert tab.input_value("#settings [name=interval_ms_min]") == "50"
            assert tab.input_value("#settings [name=duration]") == "120"
            assert tab.get_attribute("#settings [name=clients]", "readonly") is not None
        assert_no_sideways_scroll(other, ".feed .scroll", ".history .scroll")
        # An ignored request's row gets its client when the client's timeout is read,
        # in every tab, through the WebSocket.
        for tab in (page, other):
            row = tab.wait_for_function(
                """() => {
                    const mark = document.querySelector("#exchanges tr.row-ignored .unattributed");
                    return mark && mark.closest("tr").dataset.id;
                }""",
                polling=50,  # not on animation frames: a tab in the background gets none
                timeout=15_000,
            ).json_value()
            wait_attributed(tab, row)
        print(
            f"Ignored rows attributed in both tabs {time.monotonic() - clicked:.1f} s after Start"
        )
        # Scrolled down during a run, the feed holds its rows for reading (it says how many
        # it holds back); back at the top it follows the newest again.
        page.eval_on_selector(".feed .scroll", "box => { box.scrollTop = 200; }")
        page.wait_for_function("document.querySelector('#pause').textContent === 'Resume'")
        assert page.get_attribute("#pause", "aria-pressed") == "true"
        held = page.locator("#exchanges tr").evaluate_all("rs => rs.map(r => r.dataset.id)")
        page.wait_for_function(
            "/^[0-9]+\\+? new rows? held back$/"
            ".test(document.querySelector('#held-back').textContent)"
        )
        assert page.locator("#exchanges tr").evaluate_all("rs => rs.map(r => r.dataset.id)") == held
        newest = max(int(i) for i in held)
        page.eval_on_selector(".feed .scroll", "box => { box.scrollTop = 0; }")
        page.wait_for_function("document.querySelector('#pause').textContent === 'Pause'")
        page.wait_for_function(
            "n => Number(document.querySelector('#exchanges tr').dataset.id) > n", arg=newest
        )
        assert page.text_content("#held-back") == ""
        page.wait_for_function(
            "Number(document.querySelector('#exchanges-table').getAttribute('aria-rowcount')) > 100"
        )
        # Stop by keyboard: focus stays on Stop while it stops, then moves to Start.
        page.focus("#stop")
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "stop"
        for tab in (page, other):
            tab.wait_for_function("document.querySelector('#state').textContent === 'finished'",
                                  timeout=15_000)  # fmt: skip
        # The feed keeps its latest rows but puts in the page only those in view: few rows
        # in all, and scrolled to its end, the oldest, still newest first.
        feed_rows = int(page.get_attribute("#exchanges-table", "aria-rowcount") or "0") - 1
        assert page.locator("#exchanges tr").count() < 60 < feed_rows
        page.eval_on_selector(".feed .scroll", "box => { box.scrollTop = box.scrollHeight; }")
        page.wait_for_function(
            "n => document.querySelector('#exchanges tr:last-child').ariaRowIndex === String(n)",
            arg=feed_rows + 1,
        )
        assert page.locator("#exchanges tr").count() < 60
        # Every row exactly as high as the others: the spacers are counted in rows.
        heights = page.locator("#exchanges tr").evaluate_all(
            "rows => rows.map(r => r.getBoundingClientRect().height)"
        )
        assert len(set(heights)) == 1, heights
        # Scrolled somewhere, it stays there: the rows drawn in as it scrolls must not move
        # it further (the browser's scroll anchoring did, to the end of the feed).
        for top in (300, 1000, 300):
            settled = page.evaluate(
                """async top => {
                    const box = document.querySelector(".feed .scroll");
                    box.scrollTop = top;
                    for (let i = 0; i < 5; i++) await new Promise(requestAnimationFrame);
                    return box.scrollTop;
                }""",
                top,
            )
            assert settled == top
        page.eval_on_selector(".feed .scroll", "box => { box.scrollTop = box.scrollHeight; }")
        page.wait_for_function(
            "n => document.querySelector('#exchanges tr:last-child').ariaRowIndex === String(n)",
            arg=feed_rows + 1,
        )
        times = page.locator("#exchanges td.c-time").all_text_contents()
        if not (any(t < "00:01" for t in times) and any(t > "23:59" for t in times)):
            assert times == sorted(times, reverse=True)
        page.wait_for_function("document.activeElement === document.querySelector('#start')")
        assert "stopped on request" in (page.text_content("#stopped-by") or "")
        for tab in (page, other):  # the last settings stay, editable, for the next Start
            assert tab.get_attribute("#settings [name=clients]", "readonly") is None
            assert tab.input_value("#settings [name=timeout_ms]") == "300"
        row = page.locator(f'#history tr[data-run="{run_id}"]')
        # The verdict is shown; pass or fail depends on how loaded this machine is (the
        # checker allows 20 ms of scheduling lateness), not on the page.
        row.locator(".verdict-pass, .verdict-fail").wait_for(timeout=10_000)
        # Download a log.
        with page.expect_download() as download_info:
            row.locator("a.download[download$='_server.log']").click()
        download = download_info.value
        saved = tmp_path / "downloaded.log"
        download.save_as(saved)
        assert saved.read_text(encoding="utf-8") == (runs / str(run_id) / "server.log").read_text(
            encoding="utf-8"
        )
        # Restart the app while the tab is open: it reconnects by itself.
        watch.expected.append(re.compile(r"WebSocket connection to .* failed"))
        other_watch.expected.append(re.compile(r"WebSocket connection to .* failed"))
        port = dashboard.port
        stop_dashboard(dashboard)
        page.wait_for_selector("#connection[data-status=reconnecting]")
        dashboard = start_dashboard(runs, tmp_path / "uvicorn2.log", port=port)
        page.wait_for_selector("#connection[data-status=live]", timeout=15_000)
        assert page.text_content("#state") == "idle"  # a fresh app: no run yet
        page.locator(f'#history tr[data-run="{run_id}"] .logs a').first.wait_for()
        assert page.is_enabled("#start")
        assert watch.problems == []
        assert other_watch.problems == []
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        page.close()
        other.close()
    finally:
        stop_dashboard(dashboard)


def test_pause_filters_columns_stopping_and_a_restart(browser: Browser, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    dashboard = start_dashboard(runs, tmp_path / "uvicorn.log")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        watch = Watch(page)
        page.goto(dashboard.url)
        page.wait_for_selector("#connection[data-status=live]")
        assert page.text_content("#clients") == "no run yet"  # nothing on disk either
        # Half the requests ignored, each attributed only when its client's 3 s timeout
        # fires: rows "not yet attributed" are always there.
        fill(page, {**SHORT, "duration": "120", "ignore": "0.5", "timeout_ms": "3000"})
        page.click("#start")
        page.wait_for_function("document.querySelector('#state').textContent === 'running'")
        assert page.get_attribute("#reset", "aria-disabled") == "true"  # the run's settings
        mark = page.wait_for_selector("#exchanges tr.row-ignored .unattributed", timeout=15_000)
        assert mark is not None
        keep_in_view(page, mark.evaluate("el => el.closest('tr').dataset.id"))
        assert mark.text_content() == "client?"
        assert "not yet attributed" in (mark.get_attribute("title") or "")
        # At 1280 px the outcome stays inside the panel, and the client column keeps its
        # width when the row gets its client.
        assert_no_sideways_scroll(page, ".feed .scroll")
        width = page.evaluate("document.querySelector('.feed thead th:nth-child(2)').offsetWidth")
        row_id = mark.evaluate("el => el.closest('tr').dataset.id")
        wait_attributed(page, row_id)
        assert width == page.evaluate(
            "document.querySelector('.feed thead th:nth-child(2)').offsetWidth"
        )
        inside = page.evaluate(
            """() => {
                const panel = document.querySelector(".feed .scroll").getBoundingClientRect();
                return Array.from(document.querySelectorAll("#exchanges td.outcome")).map(
                    (cell) => cell.getBoundingClientRect().right <= panel.right);
            }"""
        )
        assert inside
        assert all(inside), inside
        # Paused, the feed holds back new rows, yet the rows shown follow the filters. (At
        # its top: only the rows in view are in the page, and a filter that leaves fewer
        # rows moves a feed scrolled down back up.)
        page.eval_on_selector(".feed .scroll", "box => { box.scrollTop = 0; }")
        page.wait_for_selector("#exchanges tr.row-answered")
        page.click("#pause")
        frozen_ids = set(
            page.locator("#exchanges tr").evaluate_all("rs => rs.map(r => r.dataset.id)")
        )
        page.uncheck('input[name=outcome][value="answered"]')
        assert page.locator("#exchanges tr.row-answered").count() == 0
        assert page.locator("#exchanges tr.row-ignored").count() > 0
        page.wait_for_function(
            "/^[0-9]+\\+? new rows? held back$/"  # a floor (+) once more came than are kept
            ".test(document.querySelector('#held-back').textContent)"
        )
        page.check('input[name=outcome][value="answered"]')
        assert page.locator("#exchanges tr.row-answered").count() > 0
        shown = set(page.locator("#exchanges tr").evaluate_all("rs => rs.map(r => r.dataset.id)"))
        assert shown == frozen_ids  # the same rows as when paused: nothing new let in
        page.click("#pause")
        # Stopping: the clients wait up to 3 s for their requests in flight.
        page.click("#stop")
        page.wait_for_function(
            """() => document.querySelector('#state').textContent === 'stopping'
                     && document.querySelector('#remaining').textContent === 'stopping…'""",
            polling=50,
        )
        page.wait_for_function(
            "document.querySelector('#state').textContent === 'finished'", timeout=20_000
        )
        first = page.text_content("#run-id")
        page.locator(f'#history tr[data-run="{first}"] .run-ended',
                     has_text="finished · stopped on request").wait_for()  # fmt: skip
        assert page.get_attribute("#reset", "aria-disabled") == "false"
        # A second run, and the app goes away under it: the page says what it last knew.
        page.click("#start")
        page.wait_for_function("document.querySelector('#state').textContent === 'running'")
        second = page.text_content("#run-id")
        watch.expected.append(re.compile(r"WebSocket connection to .* failed"))
        # A History refresh already on its way when the app goes away is refused; the page
        # shrugs it off (the snapshot after reconnecting refreshes History).
        watch.expected.append(re.compile(r"^failed: http://127\.0\.0\.1:\d+/api/runs net::"))
        watch.expected.append(re.compile(r"^Failed to load resource: net::ERR_CONNECTION_REFUSED$"))
        port = dashboard.port
        stop_dashboard(dashboard)
        page.wait_for_selector("#connection[data-status=reconnecting]")
        state = page.locator("#state")
        assert state.text_content() in ("last known: running", "last known: stopping")
        assert state.get_attribute("class") == "badge stale"
        assert page.text_content("#remaining") in ("—", "stopping…")  # no time counts down
        assert page.is_disabled("#start")
        assert page.is_disabled("#stop")
        page.screenshot(path=str(tmp_path / "disconnected.png"), full_page=True)
        # Back again: the app has no run of its own, and says where the others are.
        dashboard = start_dashboard(runs, tmp_path / "uvicorn2.log", port=port)
        page.wait_for_selector("#connection[data-status=live]", timeout=15_000)
        assert page.text_content("#state") == "idle"
        assert state.get_attribute("class") == "badge state-idle"
        since = "no run since the app started; past runs are in History"
        page.wait_for_function(f"document.querySelector('#clients').textContent === '{since}'")
        assert page.text_content("#exchanges") == since
        # The run the app's shutdown cut short says so, in a colour of its own.
        ended = page.locator(f'#history tr[data-run="{second}"] .run-ended')
        ended.filter(has_text="finished · stopped by app shutdown").wait_for()
        assert "ended-cut-short" in (ended.get_attribute("class") or "")
        assert watch.problems == []
        page.close()
    finally:
        stop_dashboard(dashboard)
