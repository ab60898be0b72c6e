"""The dashboard end to end: a real uvicorn, real runs, a real WebSocket client."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedError
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


BUSY = {**FAST, "clients": 20, "interval_ms": [20, 60], "duration": 120}


def stuck_viewer(port: int) -> socket.socket:
    """A viewer that completes the WebSocket handshake and then never reads a byte.

    Small segments (TCP_MAXSEG) keep the app's kernel send buffer for it small (Linux
    sizes it from the segment size), so it fills in a second or two rather than twenty.
    """
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    stuck.connect(("127.0.0.1", port))
    stuck.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return stuck


def held_by_app(port: int, peers: set[int]) -> dict[int, tuple[str, int]]:
    """The app's side of its connections to ``peers``: peer port → (TCP state, bytes unsent)."""
    held = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
            if local == port and remote in peers:
                held[remote] = (fields[3], int(fields[4].split(":")[0], 16))
    return held


def wait_until_stuck(dashboard: Dashboard, viewers: list[socket.socket]) -> None:
    """Until the app's kernel buffers towards the viewers are full (unsent bytes stop growing)."""
    peers = {viewer.getsockname()[1] for viewer in viewers}
    deadline = time.monotonic() + 30
    history: list[dict[int, tuple[str, int]]] = []
    while time.monotonic() < deadline:
        history = [*history[-9:], held_by_app(dashboard.port, peers)]
        last = history[-1]
        steady = len(history) == 10 and all(h == last for h in history)
        if steady and len(last) == len(peers) and all(n > 0 for _state, n in last.values()):
            return
        time.sleep(0.1)
    raise AssertionError(f"the viewers never filled their buffers: {history[-1:]}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_a_viewer_that_stops_reading_is_cut_off(dashboard: Dashboard) -> None:
    assert dashboard.request("POST", "/api/start", BUSY)[0] == 202
    dashboard.wait_for_state("running")
    viewers = [stuck_viewer(dashboard.port) for _ in range(2)]
    try:
        peers = {viewer.getsockname()[1] for viewer in viewers}
        wait_until_stuck(dashboard, viewers)
        deadline = time.monotonic() + 30  # SEND_TIMEOUT_S after the buffers filled
        while time.monotonic() < deadline and held_by_app(dashboard.port, peers):
            time.sleep(0.1)
        # Cut off: reset, not a close that would sit behind what they never read.
        assert held_by_app(dashboard.port, peers) == {}
        assert dashboard.log.read_text().count("a viewer stopped reading; cutting it off") == 2
        assert dashboard.request("GET", "/api/status")[1]["state"] == "running"
    finally:
        for viewer in viewers:
            viewer.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_sigterm_with_stuck_viewers_stops_the_run_and_exits(
    tmp_path: Path, no_stray_processes: None
) -> None:
    dashboard = start_dashboard(tmp_path / "runs", tmp_path / "uvicorn.log")
    viewers: list[socket.socket] = []
    try:
        _code, run = dashboard.request("POST", "/api/start", BUSY)
        dashboard.wait_for_state("running")
        viewers = [stuck_viewer(dashboard.port) for _ in range(2)]
        wait_until_stuck(dashboard, viewers)
        asked = time.monotonic()
        dashboard.process.send_signal(signal.SIGTERM)
        dashboard.process.wait(timeout=15)
        assert time.monotonic() - asked < 10
    finally:
        if dashboard.process.poll() is None:
            dashboard.process.kill()
            dashboard.process.wait()
        for viewer in viewers:
            viewer.close()
    meta = json.loads((tmp_path / "runs" / run["id"] / "run.json").read_text())
    assert (meta["state"], meta["stopped_by"]) == ("finished", "app shutdown")


def test_a_binary_message_closes_that_viewer_with_1003(dashboard: Dashboard) -> None:
    with connect(ws_url(dashboard)) as ws:
        assert receive(ws)["type"] == "snapshot"
        ws.send("hello")  # text is ignored: the viewer stays
        assert ws.ping().wait(5)
        ws.send(b"\x00\x01")
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1003
    with connect(ws_url(dashboard)) as ws:  # the app still serves others
        assert receive(ws)["type"] == "snapshot"
    log = dashboard.log.read_text()
    assert log.count("a viewer sent a binary message; closing it (1003)") == 1
    assert "Traceback" not in log
