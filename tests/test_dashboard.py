"""The dashboard end to end: a real uvicorn, real runs, a real WebSocket client."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from .conftest import (
    WAIT_S,
    Dashboard,
    assert_checked,
    pingpong_processes,
    start_dashboard,
    wait_until,
)

FAST = {"interval_ms": [50, 200], "delay_ms": [10, 100], "timeout_ms": 300, "keepalive_s": 0.5}


def ws_url(dashboard: Dashboard) -> str:
    return f"ws://127.0.0.1:{dashboard.port}/ws"


def receive(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return message


def test_a_run_streams_live_and_finishes_by_itself(dashboard: Dashboard) -> None:
    with connect(ws_url(dashboard)) as ws:
        snapshot = receive(ws)
        assert snapshot["type"] == "snapshot"
        assert snapshot["state"] == "idle"
        code, run = dashboard.request("POST", "/api/start", {"duration": 3, **FAST})
        assert code == 202
        deadline = time.monotonic() + WAIT_S
        seqs = [snapshot["seq"]]
        requests: list[int] = []
        exchanges = 0
        exchanges_while_running = 0
        states = []
        while time.monotonic() < deadline:
            message = receive(ws)
            assert message["type"] == "update"
            seqs.append(message["seq"])
            states.append(message["state"])
            live = message["live"]
            if live is not None:
                requests.append(live["server"]["requests"])
                exchanges += len(live["exchanges"])
                if message["state"] == "running":
                    exchanges_while_running += len(live["exchanges"])
            if message["state"] in ("finished", "failed"):
                break
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
        assert states[-1] == "finished"
        assert "running" in states
        assert requests == sorted(requests)
        assert requests[-1] > 20
        assert exchanges > 20
        assert exchanges_while_running > 0  # live, not only once the run is over
    _code, detail = dashboard.request("GET", f"/api/runs/{run['id']}")
    assert detail["stopped_by"] == "deadline"
    assert_checked(detail["check"], dashboard.runs_dir / run["id"])


def test_stop_mid_run(dashboard: Dashboard) -> None:
    code, run = dashboard.request("POST", "/api/start", {"duration": 120, **FAST})
    assert code == 202
    dashboard.wait_for_state("running")
    dashboard.wait_for_requests(10)
    asked = time.monotonic()
    assert dashboard.request("POST", "/api/stop")[0] == 202
    status = dashboard.wait_for_state("finished", "failed")
    # The clients' 300 ms timeout, the server's 100 ms delay, the checker: nowhere near the
    # 120 s duration. A process that overstayed its grace would be killed: "failed".
    assert time.monotonic() - asked < 20
    assert status["state"] == "finished"
    assert status["run"]["stopped_by"] == "stop"
    assert_checked(status["run"]["check"], dashboard.runs_dir / run["id"])


def test_a_killed_client_fails_the_run(dashboard: Dashboard) -> None:
    dashboard.request("POST", "/api/start", {"duration": 120, **FAST})
    status = dashboard.wait_for_state("running")
    client1 = next(p for p in status["run"]["processes"] if p["role"] == "client1")
    os.kill(client1["pid"], signal.SIGKILL)
    status = dashboard.wait_for_state("finished", "failed")
    assert status["state"] == "failed"
    assert "client1" in status["run"]["error"]
    assert "was killed by signal 9 (SIGKILL); last lines of its stderr: " in status["run"]["error"]
    codes = {p["role"]: p["exit_code"] for p in status["run"]["processes"]}
    assert codes == {"server": 0, "client1": -9, "client2": 0}


def test_app_shutdown_stops_the_run_gracefully(tmp_path: Path, no_stray_processes: None) -> None:
    dashboard = start_dashboard(tmp_path / "runs", tmp_path / "uvicorn.log")
    try:
        _code, run = dashboard.request("POST", "/api/start", {"duration": 120, **FAST})
        dashboard.wait_for_state("running")
        dashboard.wait_for_requests(10)
        dashboard.process.send_signal(signal.SIGTERM)
        dashboard.process.wait(timeout=20)
    finally:
        if dashboard.process.poll() is None:
            dashboard.process.kill()
    meta = json.loads((tmp_path / "runs" / run["id"] / "run.json").read_text())
    assert meta["state"] == "finished"
    assert meta["stopped_by"] == "app shutdown"
    assert_checked(meta["check"], tmp_path / "runs" / run["id"])


def test_app_killed_hard_leaves_no_process(tmp_path: Path, no_stray_processes: None) -> None:
    dashboard = start_dashboard(tmp_path / "runs", tmp_path / "uvicorn.log")
    try:
        _code, _run = dashboard.request("POST", "/api/start", {"duration": 120, **FAST})
        status = dashboard.wait_for_state("running")
        pids = {p["pid"] for p in status["run"]["processes"]}
        dashboard.process.kill()
        dashboard.process.wait(timeout=10)
    finally:
        if dashboard.process.poll() is None:
            dashboard.process.kill()
    # The children noticed and left.
    wait_until(lambda: not pids & set(pingpong_processes()), "the children to exit")


def test_a_stuck_viewer_does_not_delay_another(dashboard: Dashboard) -> None:
    # A viewer that completes the handshake and then never reads a byte.
    stuck = socket.create_connection(("127.0.0.1", dashboard.port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{dashboard.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    try:
        with connect(ws_url(dashboard)) as ws:
            receive(ws)
            busy = {**FAST, "clients": 20, "interval_ms": [10, 30], "duration": 6}
            assert dashboard.request("POST", "/api/start", busy)[0] == 202
            arrivals = []
            while True:
                message = receive(ws)
                arrivals.append(time.monotonic())
                if message["state"] in ("finished", "failed"):
                    break
            gaps = [b - a for a, b in itertools.pairwise(arrivals)]
            assert len(arrivals) > 30
            # Heartbeats at least every second; held up by the stuck viewer, this one would
            # wait out the 10 s send timeout.
            assert max(gaps) < 5, max(gaps)
    finally:
        stuck.close()
