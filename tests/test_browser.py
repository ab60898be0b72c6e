"""The dashboard page in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, sync_playwright

from .conftest import Dashboard, start_dashboard, stop_dashboard

CHROMIUM = os.environ.get("PINGPONG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
SHORT = {
    "clients": "2", "duration": "30", "interval_ms_min": "50", "interval_ms_max": "200",
    "delay_ms_min": "10", "delay_ms_max": "100", "timeout_ms": "300", "keepalive_s": "0.5",
}  # fmt: skip


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
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on("response", self.on_response)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in self.expected):
            self.problems.append(f"console: {message.text}")

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


def test_invalid_settings_show_their_messages(browser: Browser, dashboard: Dashboard) -> None:
    page = browser.new_page()
    watch = Watch(page)
    page.goto(dashboard.url)
    page.wait_for_selector("#connection[data-status=live]")
    # Client-side validation, in the server's words (from the schema in the snapshot).
    edit(page, {"clients": "0", "delay_ms_max": "3000"})
    # The delay maximum was changed last: the rule with the timeout is reported there.
    assert page.text_content("#error-delay_ms") == "max must be below the timeout"
    page.click("#start")
    assert page.text_content("#error-clients") == "must be a whole number from 1 to 100"
    assert page.text_content("#error-delay_ms") == "max must be below the timeout"
    assert page.text_content("#error-timeout_ms") == ""
    assert page.get_attribute("#settings [name=clients]", "aria-invalid") == "true"
    # Lowering the timeout instead: now the timeout is the field in the wrong.
    edit(page, {"delay_ms_max": "1000", "timeout_ms": "900"})
    assert page.text_content("#error-timeout_ms") == "must be above the server delay maximum"
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
        fill(page, SHORT)
        clicked = time.monotonic()
        page.click("#start")
        page.wait_for_selector("#exchanges tr.row-answered", timeout=15_000)
        first_exchange_s = time.monotonic() - clicked
        print(f"Start to first exchange on screen: {first_exchange_s * 1000:.0f} ms")
        assert first_exchange_s < 5
        page.wait_for_function(
            "Number(document.querySelector('[data-counter=requests]').textContent) > 20"
        )
        assert page.text_content("#state") == "running"
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
        clients = set(page.locator("#exchanges tr td:nth-child(2)").all_text_contents())
        assert clients == {"client2"}
        page.select_option("#filter-client", "")
        # Pause keeps the feed still while counters go on.
        page.click("#pause")
        frozen = page.inner_html("#exchanges")
        before = counter(page, "requests")
        page.wait_for_function(
            f"Number(document.querySelector('[data-counter=requests]').textContent) > {before}"
        )
        assert page.inner_html("#exchanges") == frozen
        page.click("#pause")
        # A second tab shows the same run.
        other = browser.new_page()
        other_watch = Watch(other)
        other.goto(dashboard.url)
        assert other.text_content("#state") == "running"  # server-rendered, before any message
        run_id = page.text_content("#run-id")
        other.wait_for_selector("#connection[data-status=live]")
        assert other.text_content("#run-id") == run_id
        # Both tabs show the run's settings, read-only, not the defaults.
        for tab in (page, other):
            assert tab.input_value("#settings [name=interval_ms_min]") == "50"
            assert tab.input_value("#settings [name=duration]") == "30"
            assert tab.get_attribute("#settings [name=clients]", "readonly") is not None
        # Stop: both tabs see it finish, with the checker's verdict in the history.
        page.click("#stop")
        for tab in (page, other):
            tab.wait_for_function("document.querySelector('#state').textContent === 'finished'",
                                  timeout=15_000)  # fmt: skip
        assert "stopped by stop" in (page.text_content("#stopped-by") or "")
        for tab in (page, other):  # the last settings stay, editable, for the next Start
            assert tab.get_attribute("#settings [name=clients]", "readonly") is None
            assert tab.input_value("#settings [name=timeout_ms]") == "300"
        row = page.locator(f'#history tr[data-run="{run_id}"]')
        # The verdict is shown; pass or fail depends on how loaded this machine is (the
        # checker allows 20 ms of scheduling lateness), not on the page.
        row.locator(".verdict-pass, .verdict-fail").wait_for(timeout=10_000)
        # Download a log.
        with page.expect_download() as download_info:
            row.locator("a", has_text="server.log").click()
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
