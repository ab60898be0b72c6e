"""The run API: every route, its filters and its bad input; damaged runs; a live run."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from app import models, runindex, runs_api, runs_models
from app.main import create_app
from app.runindex import index_path
from pingpong.checking.runlogs import load_run
from pingpong.checking.stats import summarize_logs

from .conftest import child_env, pingpong_argv
from .test_runindex import SHORT, genrun

CLI_RUN = "2026-11-26_10-00-00"
GENERATED = "2026-12-31_23-59-40"
DAMAGED = "2026-11-26_11-00-00"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs folder: a real CLI run, a generated one across midnight, a damaged one."""
    runs = tmp_path_factory.mktemp("runs")
    cli = tmp_path_factory.mktemp("cli")
    subprocess.run(
        pingpong_argv("run", "--duration", "3", "--clients", "2", "--interval-ms", "50-200",
                      "--delay-ms", "10-100", "--timeout-ms", "300", "--keepalive-s", "0.5",
                      "--ignore", "0.3", "--runs-dir", str(cli)),
        env=child_env(), capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    (made,) = cli.iterdir()
    shutil.move(made, runs / CLI_RUN)
    genrun.generate(runs / GENERATED, SHORT, datetime(2026, 12, 31, 23, 59, 40), seed=7)
    damaged = runs / DAMAGED
    damaged.mkdir()
    (damaged / "server.log").write_bytes(
        b"2026-11-26;13:01:02.345;[0] PING;13:01:02.977;[0/0] PONG (1)\n"
        b"not a log line\n"
        b"2026-11-26;;;13:01:05.000;[1] keepalive\n"
    )
    (damaged / "client1.log").write_bytes(
        b"2026-11-26;13:01:02.344;[0] PING;13:01:02.979;[0/0] PONG (1)\n\xff\xfe\n"
    )
    (damaged / "run.json").write_text("{not json", encoding="utf-8")
    return runs


@pytest.fixture
def client(runs: Path) -> Iterator[TestClient]:
    with TestClient(create_app(runs), base_url="http://localhost") as test_client:
        yield test_client


def get(client: TestClient, path: str, status: int = 200) -> Any:
    response = client.get(path)
    assert response.status_code == status, response.text
    return response.json()


def every_page(client: TestClient, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = get(client, path)
    while True:
        items += page["exchanges"]
        if page["next"] is None:
            return items
        separator = "&" if "?" in path else "?"
        page = get(client, f"{path}{separator}cursor={page['next']}")


def test_the_run_page_and_its_overview(client: TestClient, runs: Path) -> None:
    page = client.get(f"/runs/{CLI_RUN}")
    assert page.status_code == 200
    assert f'data-run="{CLI_RUN}"' in page.text
    assert '<script id="run-data" type="application/json">' in page.text
    assert client.get("/runs/2026-01-01_00-00-00").status_code == 404
    assert client.get("/runs/..%2F..%2Fetc").status_code == 404
    overview = get(client, f"/api/runs/{CLI_RUN}/overview")
    assert overview["run"]["id"] == CLI_RUN
    assert overview["run"]["state"] == "finished"
    assert overview["live"] is False
    assert overview["index"]["complete"] is True
    assert overview["clients"] == [1, 2]
    summary = summarize_logs(load_run(runs / CLI_RUN))
    counters = overview["counters"]
    assert counters["clients"] == summary["clients"]
    assert {k: v for k, v in counters["server"].items() if k != "bad_lines"} == summary["server"]
    get(client, "/api/runs/2026-01-01_00-00-00/overview", 404)


def test_exchanges_page_through_the_whole_run(client: TestClient, runs: Path) -> None:
    first = get(client, f"/api/runs/{GENERATED}/exchanges?limit=50")
    assert len(first["exchanges"]) == 50
    assert first["prev"] is None
    assert first["next"] is not None
    everything = every_page(client, f"/api/runs/{GENERATED}/exchanges?limit=500")
    assert len(everything) == first["total"]
    assert len({e["id"] for e in everything}) == len(everything)
    times = [(e["t"], e["id"]) for e in everything]
    assert times == sorted(times)
    # Back from the second page.
    second = get(client, f"/api/runs/{GENERATED}/exchanges?limit=50&cursor={first['next']}")
    back = get(client, f"/api/runs/{GENERATED}/exchanges?limit=50&cursor={second['prev']}")
    assert back["exchanges"] == first["exchanges"]
    assert back["prev"] is None
    # Each exchange: numbers, outcome, four times, wire lines, the log lines that record it.
    lines = {
        p.name: p.read_text(encoding="utf-8").splitlines() for p in runs.glob(f"{GENERATED}/*.log")
    }
    item = next(e for e in everything if e["outcome"] == "answered")
    assert set(item["times"]) == {"client_sent", "server_received", "server_sent", "client_done"}
    assert item["wire"] == {
        "request": f"[{item['request']}] PING",
        "response": f"[{item['response']}/{item['request']}] PONG ({item['client']})",
    }
    for side in ("client", "server"):
        where = item["log"][side]
        assert where["text"] == lines[where["file"]][where["line"] - 1]
    timed_out = next(e for e in everything if e["outcome"] == "timed out")
    assert timed_out["log"]["server"]["text"].endswith(";(проигнорировано);(проигнорировано)")
    assert timed_out["log"]["client"]["text"].endswith(";(таймаут)")


def test_exchange_filters(client: TestClient) -> None:
    path = f"/api/runs/{GENERATED}/exchanges"
    everything = every_page(client, f"{path}?limit=1000")
    start, end = everything[300]["t"], everything[900]["t"]
    chosen = every_page(client, f"{path}?client=2&outcome=timed%20out&from={start}&to={end}")
    expected = [
        e for e in everything
        if e["client"] == 2 and e["outcome"] == "timed out" and start <= e["t"] < end
    ]  # fmt: skip
    assert chosen == expected
    assert chosen
    page = get(client, f"{path}?client=2&outcome=timed_out&from={start}&to={end}&limit=1")
    assert page["total"] == len(expected)
    several = every_page(client, f"{path}?client=1,3&outcome=answered,keepalive&limit=1000")
    assert several == [
        e for e in everything
        if e["client"] in (1, 3) and e["outcome"] in ("answered", "keepalive")
    ]  # fmt: skip
    (request_17,) = get(client, f"{path}?client=2&request=17")["exchanges"]
    assert request_17["request"] == 17
    assert request_17["client"] == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=yesterday", "from"),
        ("from=-5", "from"),
        ("to=nan", "to"),
        ("from=100&to=50", "to"),
        ("client=two", "client"),
        ("client=0", "client"),
        ("outcome=lost", "outcome"),
        ("cursor=abc", "cursor"),
        ("cursor=after:x:1", "cursor"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("limit=ten", "limit"),
        ("request=-1", "request"),
    ],
)
def test_bad_exchange_queries_name_their_field(client: TestClient, query: str, field: str) -> None:
    for route in ("exchanges", "exchanges.csv"):
        if route.endswith("csv") and field in ("limit", "cursor"):
            continue
        detail = get(client, f"/api/runs/{GENERATED}/{route}?{query}", 422)["detail"]
        assert [d["loc"] for d in detail] == [["query", field]], detail
        assert detail[0]["msg"]


def test_every_route_says_404_for_an_unknown_run(client: TestClient) -> None:
    for route in ("overview", "exchanges", "exchanges.csv", "timeline", "charts",
                  "lines/server.log?line=1", "export.zip"):  # fmt: skip
        response = client.get(f"/api/runs/2026-01-01_00-00-00/{route}")
        assert response.status_code == 404, route
        assert "no run" in response.json()["detail"]
    assert client.get("/api/runs/not-a-run/timeline").status_code == 404


def test_timeline_windows(client: TestClient) -> None:
    whole = get(client, f"/api/runs/{GENERATED}/timeline?width=1200")
    assert whole["mode"] in ("bars", "counts")
    start = whole["from"]
    window = get(client, f"/api/runs/{GENERATED}/timeline?from={start}&to={start + 2}&width=800")
    assert window["mode"] == "bars"
    bars = window["bars"]
    assert set(bars) >= {"id", "client", "outcome", "client_sent", "server_received",
                         "server_sent", "client_done", "request", "response", "peer"}  # fmt: skip
    assert len(bars["id"]) == window["count"] > 0
    assert {window["outcomes"][o] for o in bars["outcome"]} <= {
        "answered",
        "timed out",
        "ignored",
        "late",
        "keepalive",
    }
    for bad, field in (("width=0", "width"), ("width=abc", "width"), ("from=1&to=1", "to")):
        for route in ("timeline", "charts"):
            detail = get(client, f"/api/runs/{GENERATED}/{route}?{bad}", 422)["detail"]
            assert detail[0]["loc"] == ["query", field]


def test_charts_cover_the_window(client: TestClient) -> None:
    overview = get(client, f"/api/runs/{GENERATED}/overview")
    charts = get(client, f"/api/runs/{GENERATED}/charts?width=300")
    assert sum(r["requests"] for r in charts["rates"]) == overview["counters"]["server"]["requests"]
    assert set(charts["round_trips"]) == {"1", "2", "3"}
    assert sum(charts["delays"]["counts"]) == overview["counters"]["server"]["answered"]


def test_lines_around_a_cited_line(client: TestClient, runs: Path) -> None:
    text = (runs / GENERATED / "client2.log").read_text(encoding="utf-8").splitlines()
    found = get(client, f"/api/runs/{GENERATED}/lines/client2.log?line=20&context=2")
    assert found["lines"] == [{"line": n, "text": text[n - 1]} for n in range(18, 23)]
    assert found["exchange"]["log"]["client"] == {"file": "client2.log", "line": 20}
    get(client, f"/api/runs/{GENERATED}/lines/client2.log", 422)
    get(client, f"/api/runs/{GENERATED}/lines/client2.log?line=0", 422)
    get(client, f"/api/runs/{GENERATED}/lines/client9.log?line=1", 404)
    get(client, f"/api/runs/{GENERATED}/lines/run.json?line=1", 404)
    get(client, f"/api/runs/{GENERATED}/lines/server.out?line=1", 404)


def test_export_zip_holds_the_whole_run(client: TestClient, runs: Path) -> None:
    response = client.get(f"/api/runs/{CLI_RUN}/export.zip")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert f'filename="{CLI_RUN}.zip"' in response.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = sorted(archive.namelist())
        folder = runs / CLI_RUN
        expected = sorted(
            f"{CLI_RUN}/{p.name}" for p in folder.iterdir()
            if p.suffix in (".log", ".out", ".err") or p.name == "run.json"
        )  # fmt: skip
        assert names == expected
        assert not any("index.sqlite" in name for name in names)
        for name in names:
            assert archive.read(name) == (folder / name.split("/", 1)[1]).read_bytes()


def test_csv_of_the_filter(client: TestClient) -> None:
    path = f"/api/runs/{GENERATED}/exchanges"
    expected = every_page(client, f"{path}?client=3&outcome=timed%20out,answered&limit=1000")
    response = client.get(f"{path}.csv?client=3&outcome=timed%20out,answered")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["id"]) for r in rows] == [e["id"] for e in expected]
    first = rows[0]
    assert first["client"] == "3"
    assert first["request_line"] == expected[0]["wire"]["request"]
    assert first["client_log"] == f"client3.log:{expected[0]['log']['client']['line']}"
    assert first["client_sent"].startswith("2026-12-31 23:59:")


def test_compare_two_runs(client: TestClient) -> None:
    compared = get(client, f"/api/compare?ids={CLI_RUN},{GENERATED}")
    assert [r["id"] for r in compared["runs"]] == [CLI_RUN, GENERATED]
    assert "clients" in compared["differences"]["settings"]
    assert "requests" in compared["differences"]["totals"]
    for run in compared["runs"]:
        assert run["cdf"][-1][1] == 1.0
        assert run["rates"]
        assert run["totals"]["requests"] > 0
        assert run["round_trip_ms"]["p95"] >= run["round_trip_ms"]["p50"]
    for bad in ("", f"ids={CLI_RUN}", f"ids={CLI_RUN},{CLI_RUN}",
                "ids=" + ",".join(["2026-11-26_10-00-00"] * 9)):  # fmt: skip
        detail = get(client, f"/api/compare?{bad}", 422)["detail"]
        assert detail[0]["loc"] == ["query", "ids"]
    get(client, f"/api/compare?ids={CLI_RUN},2026-01-01_00-00-00", 404)
    assert client.get(f"/compare?ids={CLI_RUN},{GENERATED}").status_code == 200


def test_a_damaged_run_opens_with_what_can_be_read(client: TestClient) -> None:
    overview = get(client, f"/api/runs/{DAMAGED}/overview")
    index = overview["index"]
    assert [(b["file"], b["line"]) for b in index["bad_lines"]] == [
        ("client1.log", 2), ("server.log", 2)
    ]  # fmt: skip
    assert index["bad_lines"][0]["reason"] == "not UTF-8"
    assert overview["counters"]["server"]["requests"] == 1
    page = get(client, f"/api/runs/{DAMAGED}/exchanges")
    assert [e["outcome"] for e in page["exchanges"]] == ["answered", "keepalive"]
    assert client.get(f"/runs/{DAMAGED}").status_code == 200
    for route in ("timeline", "charts", "exchanges.csv", "export.zip"):
        assert client.get(f"/api/runs/{DAMAGED}/{route}").status_code == 200, route


def test_an_empty_run_folder_opens_too(client: TestClient, runs: Path) -> None:
    (runs / "2026-11-26_12-00-00").mkdir()
    overview = get(client, "/api/runs/2026-11-26_12-00-00/overview")
    assert overview["index"]["problems"] == ["server.log is missing", "no client log (clientN.log)"]
    assert get(client, "/api/runs/2026-11-26_12-00-00/exchanges")["total"] == 0
    assert get(client, "/api/runs/2026-11-26_12-00-00/timeline")["count"] == 0


def test_a_big_backlog_is_indexed_in_a_child_process(
    client: TestClient, runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = runs / "2026-12-31_23-59-41"
    shutil.copytree(runs / GENERATED, copy, ignore=shutil.ignore_patterns("index.sqlite*"))
    monkeypatch.setattr(runs_api, "_IN_PROCESS_BYTES", 0)
    started: list[tuple[Any, ...]] = []
    real = asyncio.create_subprocess_exec

    async def spy(*args: Any, **kwargs: Any) -> Any:
        started.append(args)
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    overview = get(client, "/api/runs/2026-12-31_23-59-41/overview")
    assert overview["index"]["complete"] is True
    assert [a[1:3] for a in started] == [("-m", "app.runindex")]
    assert index_path(copy).exists()


def test_a_live_run_is_followed_then_indexed_when_it_ends(
    tmp_path: Path, no_stray_processes: None
) -> None:
    short = {"clients": 2, "duration": 3, "interval_ms": [50, 200], "delay_ms": [10, 100],
             "timeout_ms": 300, "keepalive_s": 0.5}  # fmt: skip
    runs = tmp_path / "runs"
    with TestClient(create_app(runs), base_url="http://localhost") as client:
        run = client.post("/api/start", json=short).json()
        run_id = run["id"]
        totals = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            page = get(client, f"/api/runs/{run_id}/exchanges?limit=1")
            if page["live"]:
                totals.append(page["total"])
            if client.get("/api/status").json()["state"] in ("finished", "failed"):
                break
            time.sleep(0.3)
        assert len(totals) >= 2
        assert totals[-1] > totals[0]  # the page follows the run as it goes
        # When the run ends, the app indexes it by itself.
        folder = runs / run_id
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if index_path(folder).exists() and not (folder / "index.sqlite-wal").exists():
                overview = get(client, f"/api/runs/{run_id}/overview")
                if overview["index"]["complete"]:
                    break
            time.sleep(0.1)
        overview = get(client, f"/api/runs/{run_id}/overview")
        assert overview["live"] is False
        assert overview["index"]["complete"] is True
        summary = summarize_logs(load_run(folder))
        assert overview["counters"]["clients"] == summary["clients"]
        assert json.loads((folder / "run.json").read_text())["state"] in ("finished", "failed")


def _fits(model: Any, data: Any) -> None:
    """``data`` fits ``model`` exactly: every field documented, every type as declared."""
    TypeAdapter(model).validate_json(json.dumps(data), strict=True)


def test_responses_match_their_documented_models(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for run_id in (CLI_RUN, GENERATED, DAMAGED):
        _fits(runs_models.Overview, get(client, f"/api/runs/{run_id}/overview"))
        page = get(client, f"/api/runs/{run_id}/exchanges?limit=50")
        _fits(runs_models.ExchangePage, page)
        _fits(runs_models.Timeline, get(client, f"/api/runs/{run_id}/timeline?width=500"))
        _fits(runs_models.Charts, get(client, f"/api/runs/{run_id}/charts?width=500"))
    monkeypatch.setattr(runindex, "_MAX_BARS", 10)
    counts = get(client, f"/api/runs/{GENERATED}/timeline?width=500")
    assert counts["mode"] == "counts"
    _fits(runs_models.Timeline, counts)
    _fits(runs_models.CitedLines, get(client, f"/api/runs/{GENERATED}/lines/server.log?line=3"))
    _fits(runs_models.Comparison, get(client, f"/api/compare?ids={CLI_RUN},{GENERATED}"))
    _fits(models.ValidationErrors, get(client, f"/api/runs/{GENERATED}/exchanges?limit=0", 422))
    _fits(models.Error, get(client, "/api/runs/2026-01-01_00-00-00/timeline", 404))
    with pytest.raises(ValueError, match="Extra inputs"):  # the check can fail
        _fits(runs_models.ExchangePage, {**page, "extra": 1})
