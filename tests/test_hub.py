"""The WebSocket hub with fake sockets: snapshot first, coalesced updates, stuck viewers."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any, cast

import pytest
from starlette.websockets import WebSocket, WebSocketDisconnect

from app import hub as hub_module
from app.hub import MAX_RATE, Hub

from .conftest import WAIT_S, run, wait_until_async


class FakeSocket:
    """Records what it is sent; ``stuck`` ones never finish a send."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.closed: int | None = None
        self._gone = asyncio.Event()

    async def accept(self) -> None:
        pass

    async def send_text(self, text: str) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        self.sent.append((asyncio.get_running_loop().time(), json.loads(text)))

    async def receive_text(self) -> str:
        await self._gone.wait()
        raise WebSocketDisconnect(1000)

    async def close(self, code: int = 1000) -> None:
        self.closed = code
        self._gone.set()

    def leave(self) -> None:
        self._gone.set()


def as_websocket(socket: FakeSocket) -> WebSocket:
    """The fake where the hub expects a WebSocket: it has every method the hub calls."""
    return cast(WebSocket, socket)


def make_hub() -> tuple[Hub, dict[str, int]]:
    state = {"count": 0, "snapshots": 0}

    def snapshot() -> dict[str, Any]:
        state["snapshots"] += 1
        return {"count": state["count"]}

    def update() -> dict[str, Any] | None:
        return {"count": state["count"]}

    return Hub(snapshot, update), state


def test_snapshot_first_then_coalesced_updates() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        hub, state = make_hub()
        broadcaster = asyncio.create_task(hub.broadcast_forever())
        socket = FakeSocket()
        viewer = asyncio.create_task(hub.serve(as_websocket(socket)))
        await wait_until_async(lambda: socket.sent, "the snapshot")
        started = loop.time()
        for _ in range(200):  # 200 changes in about a second
            state["count"] += 1
            hub.changed()
            await asyncio.sleep(0.005)
        await wait_until_async(lambda: socket.sent[-1][1]["count"] == 200, "the last change")
        socket.leave()
        await viewer
        broadcaster.cancel()
        kinds = [message["type"] for _, message in socket.sent]
        assert kinds[0] == "snapshot"
        assert set(kinds[1:]) == {"update"}
        seqs = [message["seq"] for _, message in socket.sent]
        assert seqs == sorted(set(seqs))  # rising
        updates = len(kinds) - 1
        # Coalesced: about ten a second (however long a loaded machine took), not 200.
        span = socket.sent[-1][0] - started
        assert 5 <= updates <= span * MAX_RATE + 2, (updates, span)
        assert hub.viewers == 0

    run(scenario())


def test_a_stuck_viewer_never_slows_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "SEND_TIMEOUT_S", 3.0)
    monkeypatch.setattr(hub_module, "QUEUE_SIZE", 5)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        hub, state = make_hub()
        broadcaster = asyncio.create_task(hub.broadcast_forever())
        good, stuck = FakeSocket(), FakeSocket(stuck=True)
        viewers = [asyncio.create_task(hub.serve(as_websocket(s))) for s in (good, stuck)]
        started = loop.time()
        for _ in range(100):
            state["count"] += 1
            hub.changed()
            await asyncio.sleep(0.02)
        await wait_until_async(lambda: good.sent[-1][1]["count"] == 100, "the last change")
        # The good viewer got its updates throughout: held up by the stuck one, it would
        # wait out the 3 s send timeout.
        times = [started] + [t for t, _ in good.sent]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) < 1.0, gaps
        # The stuck one holds a bounded queue, was resynced, and is closed after the timeout.
        (stuck_viewer,) = [v for v in hub._viewers if v.websocket is as_websocket(stuck)]
        assert stuck_viewer.queue.qsize() <= 5
        assert stuck_viewer.resyncs >= 2  # its backlog was replaced by a fresh snapshot
        await asyncio.wait_for(viewers[1], WAIT_S)
        assert stuck.closed == 1013  # closed for not reading
        assert loop.time() - started >= 3.0  # once its send had waited out the timeout
        good.leave()
        await viewers[0]
        broadcaster.cancel()

    run(scenario())
