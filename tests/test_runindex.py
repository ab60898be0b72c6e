"""The run index against the checker's own reading of the same logs: same counts, same pairs."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import random
import shutil
import sqlite3
import subprocess
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from app import lanecounts, runindex
from app.runindex import (
    OUTCOMES,
    Filter,
    RunIndex,
    exchange_json,
    index_path,
    update,
)
from pingpong.checking.check import DEFAULT_SLACK_MS, check_run
from pingpong.checking.runlogs import RunLogs, load_run
from pingpong.checking.stats import summarize_logs
from pingpong.core.logformat import Answered, Ignored, TimedOut, Unpaired
from pingpong.core.settings import MsRange, RunSettings

from .conftest import ROOT, child_env, pingpong_argv


def _genrun() -> ModuleType:
    spec = importlib.util.spec_from_file_location("genrun", ROOT / "benchmarks" / "genrun.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


genrun = _genrun()

SHORT = RunSettings(
    clients=3, duration=40, interval_ms=MsRange(50, 200), delay_ms=MsRange(10, 100),
    timeout_ms=300, keepalive_s=0.5, ignore=0.3,
)  # fmt: skip


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 3-second run of the system, with plenty of ignored requests."""
    runs = tmp_path_factory.mktemp("runs")
    subprocess.run(
        pingpong_argv("run", "--duration", "3", "--clients", "2", "--interval-ms", "50-200",
                      "--delay-ms", "10-100", "--timeout-ms", "300", "--keepalive-s", "0.5",
                      "--ignore", "0.3", "--runs-dir", str(runs)),
        env=child_env(), capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    (folder,) = runs.iterdir()
    return folder


@pytest.fixture(scope="module")
def midnight_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 40-second run of 3 clients across midnight; request numbers of the
    clients run side by side, so timeouts compete for the same ignored request number."""
    folder = tmp_path_factory.mktemp("runs") / "2026-12-31_23-59-40"
    genrun.generate(folder, SHORT, datetime(2026, 12, 31, 23, 59, 40), seed=7)
    return folder


def checker_pairs(logs: RunLogs, timeout_ms: int) -> dict[tuple[int, int], int]:
    """(client log, line) of each timeout → the server line of the ignored request it pairs
    with, exactly as the checker's "timeouts ignored" rule pairs them."""
    ignored: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for line in logs.server:
        if isinstance(line.record, Ignored):
            ignored[line.record.request.request].append((line.record.request_time, line.number))
    timeouts = sorted(
        (record.request_time, log_number, client_line.number, record.request.request)
        for log_number, lines in logs.clients.items()
        for client_line in lines
        if isinstance(record := client_line.record, TimedOut)
    )
    used: set[int] = set()
    pairs = {}
    for sent, log_number, line_number, request in timeouts:
        candidates = [
            (received, server_line)
            for received, server_line in ignored.get(request, [])
            if server_line not in used
            and -DEFAULT_SLACK_MS
            <= (received - sent).total_seconds() * 1000
            <= timeout_ms + DEFAULT_SLACK_MS
        ]
        if candidates:
            chosen = min(candidates)[1]
            used.add(chosen)
            pairs[log_number, line_number] = chosen
    return pairs


def rows(folder: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(index_path(folder)) as db:
        return db.execute(sql).fetchall()


def assert_matches_checker(folder: Path, timeout_ms: int) -> None:
    logs = load_run(folder)
    with RunIndex(folder) as index:
        counters = index.counters()
    summary = summarize_logs(logs)
    server = dict(counters["server"])
    assert server.pop("bad_lines") == len(logs.bad_lines)
    assert server == summary["server"]
    assert counters["clients"] == summary["clients"]
    # Answered requests, late PONGs and keepalives: client line ↔ server line by response number.
    server_line = {
        line.record.response.response: line.number
        for line in logs.server
        if not isinstance(line.record, Ignored)
    }
    expected = {
        (number, line.number): server_line.get(line.record.response.response)
        for number, lines in logs.clients.items()
        for line in lines
        if isinstance(line.record, Answered | Unpaired)
    }
    indexed = rows(folder, "SELECT client, c_line, s_line FROM exchanges WHERE outcome != 1 "
                          "AND c_line IS NOT NULL")  # fmt: skip
    assert {(c, line): s for c, line, s in indexed} == expected
    # Timeouts ↔ ignored requests, as the checker pairs them.
    pairs = rows(folder, "SELECT client, c_line, s_line FROM exchanges WHERE outcome = 1")
    assert {(c, line): s for c, line, s in pairs if s is not None} == checker_pairs(
        logs, timeout_ms
    )
    # Every line of every log is in exactly one exchange (or is a bad line).
    sides = rows(folder, "SELECT count(c_line), count(s_line) FROM exchanges")[0]
    assert sides[0] == sum(map(len, logs.clients.values()))
    assert sides[1] == len(logs.server)


def test_a_real_run_reads_as_the_checker_reads_it(real_run: Path) -> None:
    status = update(real_run, final=True)
    assert status.complete
    assert status.rebuilt
    assert status.bad_lines == 0
    assert_matches_checker(real_run, 300)
    assert rows(real_run, "SELECT count(*) FROM exchanges WHERE outcome = 1")[0][0] > 0


def test_midnight_and_competing_timeouts(midnight_run: Path) -> None:
    assert check_run(midnight_run).ok
    update(midnight_run, final=True)
    assert_matches_checker(midnight_run, SHORT.timeout_ms)
    logs = load_run(midnight_run)
    pairs = checker_pairs(logs, SHORT.timeout_ms)
    # The checker's choice matters here: some request number was ignored for two clients
    # within one timeout, and the pairing had to pick.
    ignored_numbers: dict[int, list[datetime]] = defaultdict(list)
    for line in logs.server:
        if isinstance(line.record, Ignored):
            ignored_numbers[line.record.request.request].append(line.record.request_time)
    contested = [
        times
        for times in ignored_numbers.values()
        if any(b - a < timedelta(milliseconds=300) for a, b in itertools.pairwise(times))
    ]
    assert contested
    assert len(pairs) == sum(len(t) for t in ignored_numbers.values())
    with RunIndex(midnight_run) as index:
        status = index.status()
        first, last = status["first"], status["last"]
        assert datetime.fromtimestamp(first).date() != datetime.fromtimestamp(last).date()
        everything = index.exchanges(Filter(), limit=10**6)
        times = [(row[1], row[0]) for row in everything]
        assert times == sorted(times)


def test_damaged_logs_are_read_as_far_as_they_can_be(tmp_path: Path) -> None:
    folder = tmp_path / "2026-11-26_13-01-00"
    folder.mkdir()
    (folder / "server.log").write_bytes(
        b"2026-11-26;13:01:02.345;[0] PING;13:01:02.977;[0/0] PONG (1)\n"
        b"garbage\n"
        b"2026-11-26;13:01:03.100;[1] PING;(\xd0\xbf\xd1\x80);(x)\n"
        b"2026-11-26;13:01:03.100;[1] PING;\xff\n"
        b"2026-11-26;;;13:01:05.000;[1] keepalive\r\n"
        b"2026-11-26;;;13:01:05.000;[2] keepalive\n"
    )
    (folder / "client1.log").write_bytes(
        b"2026-11-26;13:01:02.344;[0] PING;13:01:02.979;[0/0] PONG (1)\n"
        b"2026-11-26;;;13:01:05.001;[2] keepalive\n"
        b"2026-11-26;13:01:05.100;[1] PI"
    )
    update(folder, final=False)  # while live, a half-written line waits for its end
    with RunIndex(folder) as index:
        assert {(b["file"], b["line"]) for b in index.status()["bad_lines"]} == {
            ("server.log", 2), ("server.log", 3), ("server.log", 4), ("server.log", 5)
        }  # fmt: skip
    update(folder, final=True)
    logs = load_run(folder)
    with RunIndex(folder) as index:
        status = index.status()
        assert [(b["file"], b["line"], b["reason"]) for b in status["bad_lines"]] == sorted(
            (bad.file, bad.number, bad.reason) for bad in logs.bad_lines
        )
        assert status["problems"] == []
        assert index.counters()["server"]["bad_lines"] == 5
    assert_matches_checker(folder, 2000)


def test_missing_logs_are_problems_not_errors(tmp_path: Path) -> None:
    folder = tmp_path / "2026-11-26_13-01-00"
    folder.mkdir()
    update(folder, final=True)
    with RunIndex(folder) as index:
        assert index.status()["problems"] == [
            "server.log is missing",
            "no client log (clientN.log)",
        ]
        assert index.counters()["clients"] == []
        assert index.exchanges(Filter()) == []


def copy_growing(source: Path, target: Path, share: float) -> None:
    """The logs of ``source`` as they stood when ``share`` of each had been written: cut
    anywhere, even inside a line."""
    target.mkdir(exist_ok=True)
    for path in source.iterdir():
        if path.suffix == ".log" or path.name == "run.json":
            data = path.read_bytes()
            (target / path.name).write_bytes(data[: int(len(data) * share)])


def contents(folder: Path) -> tuple[Any, ...]:
    exchanges = sorted(
        rows(folder, "SELECT t, client, outcome, request, response, peer, client_sent, "
                     "server_received, server_sent, client_done, c_line, c_off, s_line, s_off "
                     "FROM exchanges"),
        key=repr,
    )  # fmt: skip
    with RunIndex(folder) as index:
        lanes = rows(folder, "SELECT * FROM lane_seconds ORDER BY second, client")
        return exchanges, index.counters(), index.status()["bad_lines"], lanes


def test_a_live_run_indexed_bit_by_bit_equals_one_built_at_the_end(
    midnight_run: Path, tmp_path: Path
) -> None:
    growing = tmp_path / "2026-12-31_23-59-40"
    for share in (0.2, 0.21, 0.5, 0.75):
        copy_growing(midnight_run, growing, share)
        status = update(growing, final=False)
        assert not status.complete
        assert status.rebuilt == (share == 0.2)
    copy_growing(midnight_run, growing, 1.0)
    assert update(growing, final=True).complete
    whole = tmp_path / "whole"
    shutil.copytree(midnight_run, whole, ignore=shutil.ignore_patterns("index.sqlite*"))
    update(whole, final=True)
    assert contents(growing) == contents(whole)


def test_a_log_that_shrank_is_indexed_afresh(midnight_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "2026-12-31_23-59-40"
    copy_growing(midnight_run, folder, 1.0)
    update(folder, final=True)
    copy_growing(midnight_run, folder, 0.5)
    status = update(folder, final=True)
    assert status.rebuilt
    again = tmp_path / "again"
    copy_growing(midnight_run, again, 0.5)
    update(again, final=True)
    assert contents(folder) == contents(again)


def test_an_unreadable_index_is_rebuilt(real_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / real_run.name
    shutil.copytree(real_run, folder, ignore=shutil.ignore_patterns("index.sqlite*"))
    (folder / "index.sqlite").write_bytes(b"this is not a database" * 100)
    assert update(folder, final=True).rebuilt
    assert_matches_checker(folder, 300)


def test_paging_visits_every_exchange_once(midnight_run: Path) -> None:
    update(midnight_run, final=True)
    with RunIndex(midnight_run) as index:
        everything = index.exchanges(Filter(), limit=10**6)
        seen: list[tuple[Any, ...]] = []
        after = None
        while page := index.exchanges(Filter(), after=after, limit=97):
            seen += page
            after = (page[-1][1], page[-1][0])
        assert seen == everything
        back: list[tuple[Any, ...]] = []
        before = (everything[-1][1], everything[-1][0] + 1)
        while page := index.exchanges(Filter(), before=before, limit=97):
            back = page + back
            before = (page[0][1], page[0][0])
        assert back == everything
        # Filters: one client's timeouts in a window.
        start, end = everything[len(everything) // 10][1], everything[len(everything) // 2][1]
        where = Filter(start, end, (2,), (OUTCOMES.index("timed out"),))
        chosen = index.exchanges(where, limit=10**6)
        assert chosen == [
            row for row in everything
            if start <= row[1] < end and row[2] == 2 and row[3] == OUTCOMES.index("timed out")
        ]  # fmt: skip
        assert index.count(where) == len(chosen) > 0
        request = Filter(clients=(2,), request=17)
        (row,) = index.exchanges(request)
        assert exchange_json(row)["wire"]["request"] == "[17] PING"


def test_counts_match_the_rows_they_count(midnight_run: Path) -> None:
    update(midnight_run, final=True)
    with RunIndex(midnight_run) as index:
        everything = index.exchanges(Filter(), limit=10**6)
        first = everything[0][1]
        timed_out, ignored = OUTCOMES.index("timed out"), OUTCOMES.index("ignored")
        for where in (
            Filter(),
            Filter(first + 0.25, first + 12.5),
            Filter(first + 3.0, first + 4.0, (1, 3)),
            Filter(first + 2.2, None, (2,), (timed_out,)),
            Filter(None, first + 7.9, (None,), (ignored, timed_out)),
            Filter(first + 5.5, first + 5.7),
            Filter(clients=(2,), request=3),
        ):
            assert index.count(where) == len(index.exchanges(where, limit=10**6)), where


def test_an_exchange_shows_its_wire_lines_and_log_lines(real_run: Path) -> None:
    update(real_run, final=True)
    with RunIndex(real_run) as index:
        everything = index.exchanges(Filter(), limit=10**6)
        lines = index.log_lines(everything)
        logs = load_run(real_run)
        texts = {
            path.name: path.read_text(encoding="utf-8").splitlines()
            for path in real_run.glob("*.log")
        }
        outcomes = set()
        for row, line in zip(everything, lines, strict=True):
            item = exchange_json(row)
            outcomes.add(item["outcome"])
            for side in ("client", "server"):
                where = item["log"][side]
                if where is None:
                    assert line[side] is None
                    continue
                assert line[side] == texts[where["file"]][where["line"] - 1]
                # The wire lines are the request and response fields of the log lines.
                fields = texts[where["file"]][where["line"] - 1].split(";")
                if item["wire"]["request"] is not None:
                    assert fields[2] == item["wire"]["request"]
                if item["outcome"] in ("answered", "keepalive"):
                    assert fields[4] == item["wire"]["response"]
        assert {"answered", "timed out", "keepalive"} <= outcomes
        assert len(logs.server) > 0
        # Any line of a log, with its neighbours, and the exchange it records.
        around = index.read_lines("server.log", 5, 2, 2)
        assert [a["line"] for a in around] == [3, 4, 5, 6, 7]
        assert [a["text"] for a in around] == texts["server.log"][2:7]
        recorded = index.exchange_at_line("client1.log", 1)
        assert recorded is not None
        assert exchange_json(recorded)["log"]["client"] == {"file": "client1.log", "line": 1}


def test_far_lines_are_found_from_the_marks(midnight_run: Path) -> None:
    update(midnight_run, final=True)
    text = (midnight_run / "server.log").read_text(encoding="utf-8").splitlines()
    with RunIndex(midnight_run) as index:
        for line in (1, 2, 1024, 1025, 1026, len(text)):
            (found,) = index.read_lines("server.log", line)
            assert found == {"line": line, "text": text[line - 1]}
            row = index.exchange_at_line("server.log", line)
            assert row is not None
            assert exchange_json(row)["log"]["server"]["line"] == line


def test_timeline_bars_then_counts_per_pixel(
    midnight_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    update(midnight_run, final=True)
    with RunIndex(midnight_run) as index:
        status = index.status()
        start, end = status["first"] + 10.3, status["first"] + 15.3
        bars = index.timeline(start, end, 800)
        assert bars["mode"] == "bars"
        everything = index.exchanges(Filter(), limit=10**6)
        # Every exchange that overlaps the window, including those that began before it.
        expected = {
            row[0] for row in everything
            if row[1] < end and max(t for t in row[7:11] if t is not None) >= start
        }  # fmt: skip
        assert set(bars["bars"]["id"]) == expected
        # Times as whole milliseconds after a whole second.
        by_id = {row[0]: row for row in everything}
        for i, row_id in enumerate(bars["bars"]["id"]):
            sent = bars["bars"]["client_sent"][i]
            if sent is not None:
                assert bars["base"] + sent / 1000 == pytest.approx(by_id[row_id][7], abs=1e-6)
        monkeypatch.setattr(runindex, "_MAX_BARS", 10)
        # A mid-sized window: counted from the rows, in buckets of 3 pixels.
        counted = index.timeline(start, end, 300)
        assert counted["mode"] == "counts"
        assert counted["width"] == 100
        assert counted["count"] == sum(1 for row in everything if start <= row[1] < end)
        monkeypatch.setattr(runindex, "_MAX_ROWS_COUNTED", 10)
        # Buckets of whole seconds, at least 3 pixels wide: by the second, or by tens of
        # seconds (counted from the ten-second totals).
        for width, step in ((800, 1), (2, 10), (1, 20)):
            counts = index.timeline(start, end, width)
            assert counts["mode"] == "counts"
            assert counts["bucket"] == step
            assert counts["from"] == math.floor(start / step) * step
            # Counted by whole seconds: those the window touches.
            stop = counts["from"] + counts["width"] * step
            inside = [row for row in everything if counts["from"] <= row[1] < stop]
            assert counts["count"] == len(inside)
            answered = OUTCOMES.index("answered")
            for b, n in enumerate(counts["counts"]["2"]["answered"]):
                low = counts["from"] + b * step
                assert n == sum(
                    1 for row in inside
                    if row[2] == 2 and row[3] == answered and low <= row[1] < low + step
                )  # fmt: skip


def test_a_live_index_counts_its_unsettled_seconds_from_the_rows(
    midnight_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runindex, "_MAX_BARS", 10)
    monkeypatch.setattr(runindex, "_MAX_ROWS_COUNTED", 10)
    live = tmp_path / "2026-12-31_23-59-40"
    copy_growing(midnight_run, live, 0.6)
    update(live, final=False)
    update(midnight_run, final=True)
    with RunIndex(live) as growing, RunIndex(midnight_run) as whole:
        status = growing.status()
        assert not status["complete"]
        settled = runindex._meta(growing.db)["settled"]
        assert status["first"] < settled < status["last"]
        # A window across the settled boundary counts as the finished index does, up to
        # what the live one has read.
        start, end = settled - 8, settled + 2
        ours = growing.timeline(start, end, 800)["counts"]
        theirs = whole.timeline(start, end, 800)["counts"]
        assert ours["1"]["answered"][:8] == theirs["1"]["answered"][:8]
        assert sum(ours["1"]["answered"]) > 0


def test_charts_add_up_to_the_totals(midnight_run: Path) -> None:
    update(midnight_run, final=True)
    with RunIndex(midnight_run) as index:
        status = index.status()
        counters = index.counters()
        for width in (10, 3000):  # a bucket of seconds, and of milliseconds
            charts = index.charts(status["first"], status["last"] + 1, width)
            assert sum(r["requests"] for r in charts["rates"]) == counters["server"]["requests"]
            assert sum(r["timed_out"] for r in charts["rates"]) == sum(
                c["timed_out"] for c in counters["clients"]
            )
            assert sum(charts["delays"]["counts"]) == counters["server"]["answered"]
            assert set(charts["round_trips"]) == {"1", "2", "3"}
            for client, points in charts["round_trips"].items():
                assert len(points) <= width
                (stats,) = [c["round_trip_ms"] for c in counters["clients"]
                            if str(c["client"]) == client]  # fmt: skip
                for _t, avg in points:
                    assert stats["min"] <= avg <= stats["max"]
        assert index.round_trip_stats() is not None
        cdf = index.cdf()
        assert cdf[-1][1] == 1.0
        assert [p[0] for p in cdf] == sorted(p[0] for p in cdf)


def test_windowed_delays_count_the_seconds_the_window_touches(midnight_run: Path) -> None:
    update(midnight_run, final=True)
    with RunIndex(midnight_run) as index:
        status = index.status()
        low, width = runindex._delay_bins(SHORT)
        sent = [
            (row[9], round((row[9] - row[8]) * 1000))
            for row in index.exchanges(Filter(), limit=10**6)
            if row[9] is not None and row[8] is not None and row[3] in (0, 1)
        ]
        for offset, span in ((0.5, 3.2), (3.7, 25.0), (10.0, 20.0), (0, 60)):
            start = status["first"] + offset
            end = start + span
            expected = [0] * runindex.DELAY_BINS
            for when, delay in sent:
                if math.floor(start) <= when < math.ceil(end):
                    expected[min(max((delay - low) // width, 0), runindex.DELAY_BINS - 1)] += 1
            assert index.delays(start, end)["counts"] == expected, (offset, span)
        assert sum(index.delays()["counts"]) == index.counters()["server"]["answered"]


def test_an_unwritable_run_folder_gets_its_index_elsewhere(
    real_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: False if Path(path) == real_run else
        real_access(path, mode)
    )  # fmt: skip
    path = index_path(real_run)
    assert path.parent != real_run
    update(real_run, final=True)
    assert path.exists()
    assert_matches_checker(real_run, 300)
    path.unlink()


@pytest.fixture
def child_index(real_run: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index_path(real_run)}{suffix}").unlink(missing_ok=True)
    return real_run


def test_the_command_line_builds_an_index(child_index: Path) -> None:
    result = subprocess.run(
        [*pingpong_argv()[:2], "app.runindex", str(child_index), "--final"],
        env=child_env(), capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"complete": true' in result.stdout
    assert_matches_checker(child_index, 300)


def test_a_simulated_run_reads_as_the_checker_reads_it(tmp_path: Path) -> None:
    """A simulated run (``pingpong simulate``): its own settings in run.json, a timeout
    other than the default, across midnight."""
    folder = tmp_path / "2026-11-26_23-59-50"
    result = subprocess.run(
        pingpong_argv("simulate", "--clients", "3", "--duration", "20", "--interval-ms",
                      "50-200", "--delay-ms", "10-100", "--timeout-ms", "300", "--ignore",
                      "0.3", "--keepalive-s", "0.5", "--seed", "3", "--start",
                      "2026-11-26T23:59:50", "--log-dir", str(folder)),
        env=child_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (folder / "server.log").exists(), result.stderr
    assert json.loads((folder / "run.json").read_text(encoding="utf-8"))["simulated"] is True
    update(folder, final=True)
    assert_matches_checker(folder, 300)
    assert rows(folder, "SELECT count(*) FROM exchanges WHERE outcome = 1")[0][0] > 0


def test_a_finished_runs_wide_windows_are_put_together_from_kept_tiles(
    midnight_run: Path, tmp_path: Path
) -> None:
    """Every window, inside the run or over its edges and its tiles, counts as a scan of
    the index for that window would; a rebuilt index is read again, and a live one is
    never kept."""
    folder = tmp_path / midnight_run.name
    shutil.copytree(midnight_run, folder)
    update(folder, final=True)
    path = index_path(folder)
    rng = random.Random(3)
    with RunIndex(folder) as index:
        meta = runindex._meta(index.db)
        assert meta["complete"]
        lanecounts._kept.clear()
        for _ in range(60):
            step = rng.choice([1, 2, 5, 10, 20, 30])
            first = math.floor((meta["first"] + rng.uniform(-30, 50)) / step) * step
            buckets = rng.randint(1, 600)
            sliced = lanecounts.window_counts(index.db, path, meta, first, step, buckets, OUTCOMES)
            scanned = lanecounts.lane_counts(
                index.db, first, step, buckets, meta["settled"], OUTCOMES
            )
            assert sliced == scanned, (first, step, buckets)
        assert {key[4] for key in lanecounts._kept} == {1, 2, 5, 10, 20, 30}
    # The same run indexed anew: another file, counted again.
    path.unlink()
    update(folder, final=True)
    stat = path.stat()
    with RunIndex(folder) as index:
        meta = runindex._meta(index.db)
        lanecounts.window_counts(index.db, path, meta, meta["settled"] - 20, 10, 2, OUTCOMES)
    assert (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size, 10) in {
        key[:5] for key in lanecounts._kept
    }
    # A live index changes as it grows: counted each time, never kept.
    live = tmp_path / "2026-12-31_23-59-41"
    copy_growing(midnight_run, live, 0.6)
    update(live, final=False)
    lanecounts._kept.clear()
    with RunIndex(live) as index:
        meta = runindex._meta(index.db)
        assert not meta["complete"]
        counts = lanecounts.window_counts(
            index.db, index_path(live), meta, meta["settled"] - 20, 1, 30, OUTCOMES
        )
        assert sum(counts["1"]["answered"]) > 0
    assert not lanecounts._kept
