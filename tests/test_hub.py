"""The WebSocket hub with fake sockets: snapshot first, coalesced updates, stuck viewers."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from app import hub as hub_module
from app.hub import MAX_RATE, Hub

from .conftest import run


class FakeSocket:
    """Records what it is sent; ``stuck`` ones never finish a send."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.scope: dict[str, Any] = {}  # no transport: the hub falls back to a close
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.closed: int | None = None
        self._gone = asyncio.Event()

    async def accept(self) -> None:
        pass

    async def send_text(self, text: str) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        self.sent.append((asyncio.get_running_loop().time(), json.loads(text)))

    async def receive(self) -> dict[str, Any]:
        await self._gone.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def close(self, code: int = 1000) -> None:
        self.closed = code
        self._gone.set()

    def leave(self) -> None:
        self._gone.set()


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
        hub, state = make_hub()
        broadcaster = asyncio.create_task(hub.broadcast_forever())
        socket = FakeSocket()
        viewer = asyncio.create_task(hub.serve(socket))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        for _ in range(200):  # 200 changes in one second
            state["count"] += 1
            hub.changed()
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)
        socket.leave()
        await viewer
        broadcaster.cancel()
        kinds = [message["type"] for _, message in socket.sent]
        assert kinds[0] == "snapshot"
        assert set(kinds[1:]) == {"update"}
        seqs = [message["seq"] for _, message in socket.sent]
        assert seqs == sorted(set(seqs))  # rising
        updates = len(kinds) - 1
        assert 5 <= updates <= MAX_RATE * 1.5 + 2  # coalesced: ~10 a second, not 200
        assert socket.sent[-1][1]["count"] == 200  # nothing lost in the coalescing
        assert hub.viewers == 0

    run(scenario())


def test_a_stuck_viewer_never_slows_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "SEND_TIMEOUT_S", 3.0)
    monkeypatch.setattr(hub_module, "QUEUE_SIZE", 5)

    async def scenario() -> None:
        hub, state = make_hub()
        broadcaster = asyncio.create_task(hub.broadcast_forever())
        good, stuck = FakeSocket(), FakeSocket(stuck=True)
        viewers = [asyncio.create_task(hub.serve(s)) for s in (good, stuck)]  # type: ignore[arg-type]
        for _ in range(100):
            state["count"] += 1
            hub.changed()
            await asyncio.sleep(0.02)
        # The good viewer got its updates on time throughout.
        times = [t for t, _ in good.sent]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) < 0.25, gaps
        assert good.sent[-1][1]["count"] >= 95
        # The stuck one holds a bounded queue, was resynced, and is closed after the timeout.
        (stuck_viewer,) = [v for v in hub._viewers if v.websocket is stuck]
        assert stuck_viewer.queue.qsize() <= 5
        assert stuck_viewer.resyncs >= 2  # its backlog was replaced by a fresh snapshot
        await asyncio.sleep(1.2)
        assert stuck.closed == 1013  # then it was closed for not reading
        await viewers[1]
        good.leave()
        await viewers[0]
        broadcaster.cancel()

    run(scenario())
