"""The HTTP API: every route and status code, validation, 409s, Host/Origin, path tricks."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from app.main import create_app

from .conftest import assert_checked, wait_until

SHORT = {"clients": 2, "duration": 30, "interval_ms": [50, 200], "delay_ms": [10, 100],
         "timeout_ms": 300, "keepalive_s": 0.5}  # fmt: skip
RUN_ID = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}_[0-9]{2}-[0-9]{2}-[0-9]{2}(-[0-9]+)?")


@pytest.fixture
def client(tmp_path: Path, no_stray_processes: None) -> Iterator[TestClient]:
    with TestClient(create_app(tmp_path / "runs"), base_url="http://localhost") as test_client:
        yield test_client


def status_when(
    client: TestClient, condition: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """The status once ``condition`` holds of it."""

    def reached() -> dict[str, Any] | None:
        status: dict[str, Any] = client.get("/api/status").json()
        return status if condition(status) else None

    return wait_until(reached, what)


def wait_for_state(client: TestClient, *states: str) -> dict[str, Any]:
    return status_when(client, lambda s: s["state"] in states, f"the state to become {states}")


def test_fresh_app_is_idle(client: TestClient) -> None:
    assert client.get("/api/status").json() == {"state": "idle", "run": None, "counters": None}
    assert client.get("/api/runs").json() == []
    page = client.get("/")
    assert page.status_code == 200
    assert "idle" in page.text
    assert '<script id="snapshot" type="application/json">' in page.text


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"clients": 0}, ["body", "clients"], "between 1 and 100"),
        ({"clients": 101}, ["body", "clients"], "between 1 and 100"),
        ({"duration": 0}, ["body", "duration"], "between 1 and 86400"),
        ({"interval_ms": [5, 100]}, ["body", "interval_ms"], "10 <= min"),
        ({"delay_ms": [900, 100]}, ["body", "delay_ms"], "min <= max"),
        ({"ignore": 1.5}, ["body", "ignore"], "between 0 and 1"),
        ({"keepalive_s": 0}, ["body", "keepalive_s"], "between 0.1 and 3600"),
        ({"timeout_ms": 500}, ["body", "timeout_ms"], "greater than the delay maximum"),
        ({"seed": "abc"}, ["body", "seed"], "integer or null"),
        ({"colour": "red"}, ["body", "colour"], "unknown setting"),
    ],
)
def test_start_validates_every_field(
    client: TestClient, body: dict[str, Any], loc: list[str], words: str
) -> None:
    response = client.post("/api/start", json=body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == loc
    assert words in error["msg"]
    assert client.get("/api/status").json()["state"] == "idle"


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"'])
def test_start_refuses_a_body_that_is_not_an_object(client: TestClient, raw: bytes) -> None:
    response = client.post("/api/start", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


def test_stop_without_a_run_is_409(client: TestClient) -> None:
    assert client.post("/api/stop").status_code == 409


def test_run_life_cycle(client: TestClient, tmp_path: Path) -> None:
    started = client.post("/api/start", json=SHORT)
    assert started.status_code == 202
    run = started.json()
    assert RUN_ID.fullmatch(run["id"])
    assert run["state"] == "starting"
    assert client.post("/api/start", json={}).status_code == 409
    status = wait_for_state(client, "running")
    assert status["run"]["address"].startswith("127.0.0.1:")
    status_when(client, lambda s: s["counters"]["server"]["requests"] > 5, "6 requests")
    assert client.post("/api/start", json=SHORT).status_code == 409
    assert client.post("/api/stop").status_code == 202
    status = wait_for_state(client, "finished", "failed")
    assert status["state"] == "finished"
    assert status["run"]["stopped_by"] == "stop"
    assert_checked(status["run"]["check"], tmp_path / "runs" / run["id"])
    assert status["counters"]["server"]["requests"] > 5
    assert client.post("/api/stop").status_code == 409  # nothing active any more

    runs = client.get("/api/runs").json()
    assert [r["id"] for r in runs] == [run["id"]]
    detail = client.get(f"/api/runs/{run['id']}").json()
    assert detail["check"] == status["run"]["check"]
    assert detail["logs"][:3] == ["server.log", "client1.log", "client2.log"]
    log = client.get(f"/api/runs/{run['id']}/logs/server.log")
    assert log.status_code == 200
    assert log.headers["content-type"] == "text/plain; charset=utf-8"
    assert "PONG (1)" in log.text
    # Path tricks and unknown names find nothing.
    for name in ["run.json", "%2e%2e", "%2e%2e%2frun.json", "server.log%2f..%2frun.json",
                 "client0.log", "server.LOG", "..%2f..%2fetc%2fpasswd"]:  # fmt: skip
        assert client.get(f"/api/runs/{run['id']}/logs/{name}").status_code == 404, name
    assert client.get("/api/runs/nope").status_code == 404
    assert client.get("/api/runs/..%2f..").status_code == 404
    assert client.get("/api/runs/2020-01-01_00-00-00/logs/server.log").status_code == 404


def test_runs_of_the_cli_are_listed_newest_first(client: TestClient, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for name in ("2026-01-01_00-00-00", "2026-01-01_00-00-00-2", "2026-01-01_00-00-00-10",
                 "2025-12-31_23-59-59", "not-a-run"):  # fmt: skip
        (runs / name).mkdir(parents=True)
    shutil.copy(Path(__file__), runs / "2026-01-01_00-00-00" / "server.log")
    listed = client.get("/api/runs").json()
    assert [r["id"] for r in listed] == [
        "2026-01-01_00-00-00-10", "2026-01-01_00-00-00-2", "2026-01-01_00-00-00",
        "2025-12-31_23-59-59",
    ]  # fmt: skip
    assert listed[2]["logs"] == ["server.log"]
    assert listed[2]["state"] == "unknown"  # no run.json (yet)


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "127.0.0.2", ""])
def test_foreign_host_is_400(client: TestClient, host: str) -> None:
    assert client.get("/api/status", headers={"host": host}).status_code == 400


def test_local_names_with_any_port_pass(client: TestClient) -> None:
    for host in ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"]:
        assert client.get("/api/status", headers={"host": host}).status_code == 200, host


def test_extra_allowed_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGPONG_ALLOWED_HOSTS", "pingpong.local, other.test")
    with TestClient(create_app(tmp_path), base_url="http://pingpong.local") as test_client:
        assert test_client.get("/api/status").status_code == 200
        assert test_client.get("/api/status", headers={"host": "evil.test"}).status_code == 400


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", "http://localhost:8001", "http://localhost.evil.example",
     "file://", "https://127.0.0.1:8000"],
)  # fmt: skip
def test_foreign_origin_is_403_on_state_changes(client: TestClient, origin: str) -> None:
    assert client.post("/api/stop", headers={"origin": origin}).status_code == 403
    assert client.post("/api/start", json={}, headers={"origin": origin}).status_code == 403
    assert client.get("/api/status", headers={"origin": origin}).status_code == 200  # reads pass
    assert client.get("/api/status").json()["state"] == "idle"


def test_own_origin_and_no_origin_pass(client: TestClient) -> None:
    # TestClient's server is localhost:80, so that is the dashboard's own origin.
    assert client.post("/api/stop", headers={"origin": "http://localhost"}).status_code == 409
    assert client.post("/api/stop", headers={"origin": "http://127.0.0.1:80"}).status_code == 409
    assert client.post("/api/stop").status_code == 409


def test_websocket_snapshot_and_origin(client: TestClient) -> None:
    with client.websocket_connect("ws://localhost/ws") as ws:
        message = ws.receive_json()
        assert message["type"] == "snapshot"
        assert message["seq"] >= 1
        assert message["state"] == "idle"
        assert message["defaults"]["clients"] == 2
        # The zone of the log times, which the logs themselves do not say.
        offset = datetime.now().astimezone().utcoffset()
        assert offset is not None
        assert message["time_zone"]["utc_offset_s"] == round(offset.total_seconds())
        assert message["time_zone"]["label"].startswith("UTC")
    with client.websocket_connect(
        "ws://localhost/ws", headers={"origin": "http://localhost"}
    ) as ws:
        assert ws.receive_json()["type"] == "snapshot"
    with (
        pytest.raises(WebSocketDenialResponse),
        client.websocket_connect("ws://localhost/ws", headers={"origin": "http://evil.example"}),
    ):
        pass
    with (
        pytest.raises(WebSocketDenialResponse),
        client.websocket_connect("ws://localhost/ws", headers={"host": "evil.example"}),
    ):
        pass


def test_favicon(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header: one image follows
    assert icon.content[22:30] == b"\x89PNG\r\n\x1a\n"
    page = client.get("/").text
    linked = re.findall(r'<link rel="icon" href="([^"]+)"', page)
    assert linked
    for href in linked:
        assert client.get(href).status_code == 200, href
