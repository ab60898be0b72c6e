"""The HTTP API: every route and status code, validation, 409s, Host/Origin, path tricks."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Callable, Iterator, MutableMapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from app.main import MAX_BODY_BYTES, create_app
from pingpong.running.runner import Run

from .conftest import assert_checked, pingpong_processes, wait_until

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
    ("body", "field", "message"),
    [
        ({"clients": 0}, "clients", "must be a whole number from 1 to 100"),
        ({"clients": 101}, "clients", "must be a whole number from 1 to 100"),
        ({"duration": 0}, "duration", "must be a number of seconds from 1 to 86400"),
        ({"interval_ms": [5, 100]}, "interval_ms",
         "min and max must be whole numbers of milliseconds from 10 to 60000"),
        ({"delay_ms": [900, 100]}, "delay_ms", "min must not be above max"),
        ({"ignore": 1.5}, "ignore", "must be a number from 0 to 1"),
        ({"keepalive_s": 0}, "keepalive_s", "must be a number of seconds from 0.1 to 3600"),
        ({"timeout_ms": 500}, "timeout_ms", "must be above the server delay maximum (1000 ms)"),
        ({"delay_ms": [0, 2500]}, "delay_ms", "max must be below the timeout (2000 ms)"),
        ({"seed": "abc"}, "seed",
         "must be a whole number from 0 to 9007199254740991, or nothing for a random seed"),
        ({"seed": 10**23}, "seed",
         "must be a whole number from 0 to 9007199254740991, or nothing for a random seed"),
        ({"port": 65536}, "port", "must be a whole number from 0 to 65535"),
        ({"port": -1}, "port", "must be a whole number from 0 to 65535"),
        ({"host": ""}, "host", "must not be empty"),
        ({"host": "999.1.1.1"}, "host", "is not an address or a name this machine can resolve"),
        ({"colour": "red"}, "colour", "is not a setting; the settings are clients, duration, "
         "interval_ms, delay_ms, ignore, keepalive_s, timeout_ms, seed, host, port"),
    ],
)  # fmt: skip
def test_start_validates_every_field(
    client: TestClient, body: dict[str, Any], field: str, message: str
) -> None:
    response = client.post("/api/start", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body", field], "msg": message, "type": "value_error"}
    ]
    assert client.get("/api/status").json()["state"] == "idle"


def test_a_rule_broken_by_two_fields_names_both(client: TestClient) -> None:
    response = client.post("/api/start", json={"delay_ms": [0, 2500], "timeout_ms": 2000})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [
        ["body", "delay_ms"], ["body", "timeout_ms"]
    ]  # fmt: skip


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "8.8.8.8"])
def test_runs_listen_on_loopback_only(client: TestClient, host: str) -> None:
    response = client.post("/api/start", json={"host": host})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "host"]
    assert error["msg"].startswith("must be a loopback address")
    assert "PINGPONG_ALLOW_REMOTE_BIND=1" in error["msg"]
    # Loopback names pass (the invalid clients keep the run from starting).
    for local in ["localhost", "127.0.0.1", "::1"]:
        response = client.post("/api/start", json={"host": local, "clients": 0})
        assert [e["loc"] for e in response.json()["detail"]] == [["body", "clients"]], local


def test_remote_bind_is_an_explicit_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGPONG_ALLOW_REMOTE_BIND", "1")
    with TestClient(create_app(tmp_path), base_url="http://localhost") as test_client:
        response = test_client.post("/api/start", json={"host": "0.0.0.0", "clients": 0})
        assert [e["loc"] for e in response.json()["detail"]] == [["body", "clients"]]
        response = test_client.post("/api/start", json={"host": "999.1.1.1"})
        assert [e["loc"] for e in response.json()["detail"]] == [["body", "host"]]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"duration": 1' + b"0" * 400 + b"}", "duration"),  # was OverflowError, a 500
        (b'{"ignore": 1' + b"0" * 400 + b"}", "ignore"),
        (b'{"duration": 1e400}', "duration"),
        (b'{"ignore": NaN}', "ignore"),
        (b'{"seed": 100000000000000000000000}', "seed"),
    ],
)
def test_huge_numbers_are_422_not_500(client: TestClient, raw: bytes, field: str) -> None:
    response = client.post("/api/start", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]


def test_deep_nesting_is_422_not_500(client: TestClient) -> None:
    raw = b"[" * 50_000  # under the size cap, far past the JSON parser's recursion limit
    response = client.post("/api/start", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "JSON nested too deeply"
    response = client.post("/api/start", content=b"[" * 100_000)  # the size cap comes first
    assert response.status_code == 413


def test_a_body_over_the_cap_is_413(client: TestClient) -> None:
    response = client.post("/api/start", content=b" " * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert response.json()["detail"].startswith("the body is over 65536 bytes")
    at_the_cap = b'{"clients": 0}'.ljust(MAX_BODY_BYTES)
    response = client.post("/api/start", content=at_the_cap)
    assert response.status_code == 422  # read and checked
    assert response.json()["detail"][0]["loc"] == ["body", "clients"]


def test_a_huge_body_is_not_read_past_the_cap(tmp_path: Path) -> None:
    """200 MB offered in 16 KiB chunks, without a length: the app stops reading at the cap."""
    app = create_app(tmp_path)
    chunk = b" " * (16 << 10)
    offered = 200_000_000 // len(chunk)
    taken = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal taken
        taken += 1
        return {"type": "http.request", "body": chunk, "more_body": taken < offered}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/start", "raw_path": b"/api/start", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"localhost"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 413
    assert taken == MAX_BODY_BYTES // len(chunk) + 1  # the first chunk past 64 KiB


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


def test_a_crash_of_run_control_fails_the_run_and_the_next_start_works(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(_run: Run) -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(Run, "_shutdown", broken)  # the stop itself fails, children alive
    run = client.post("/api/start", json=SHORT).json()
    status = wait_for_state(client, "running")
    pids = {p["pid"] for p in status["run"]["processes"]}
    assert len(pids) == 3
    assert pids <= set(pingpong_processes())
    assert client.post("/api/stop").status_code == 202
    status = wait_for_state(client, "finished", "failed")
    assert status["state"] == "failed"
    assert status["run"]["error"] == "run control failed: RuntimeError: injected fault"
    assert all(p["killed"] and p["state"] == "exited" for p in status["run"]["processes"])
    assert not pids & set(pingpong_processes())  # killed and reaped
    on_disk = client.get(f"/api/runs/{run['id']}").json()
    assert (on_disk["state"], on_disk["error"]) == ("failed", status["run"]["error"])
    saved = json.loads((tmp_path / "runs" / run["id"] / "run.json").read_text(encoding="utf-8"))
    assert saved["state"] == "failed"

    monkeypatch.undo()
    started = client.post("/api/start", json=SHORT)
    assert started.status_code == 202  # not 409: the crashed run is over
    wait_for_state(client, "running")
    assert client.post("/api/stop").status_code == 202
    status = wait_for_state(client, "finished", "failed")
    assert status["state"] == "finished"
    assert status["run"]["id"] == started.json()["id"] != run["id"]


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
        assert message["active_states"] == ["starting", "running", "stopping"]
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


def test_a_log_is_shown_as_plain_text_and_answers_head(client: TestClient, tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "2026-11-26_13-01-02"
    folder.mkdir(parents=True)
    # A process's stderr may quote what a client sent: it stays text in the browser.
    text = "server: client 1: bad line '<script>alert(1)</script>'; not answered\n"
    (folder / "server.err").write_text(text, encoding="utf-8")
    path = f"/api/runs/{folder.name}/logs/server.err"
    got = client.get(path)
    assert got.status_code == 200
    assert got.text == text
    assert got.headers["content-type"] == "text/plain; charset=utf-8"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "sandbox"
    assert "attachment" not in got.headers.get("content-disposition", "")  # shown, not saved
    head = client.head(path)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(text.encode()))
    assert client.head(f"/api/runs/{folder.name}/logs/run.json").status_code == 404
