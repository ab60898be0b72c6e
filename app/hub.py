"""WebSocket fan-out: one snapshot per new viewer, then batched updates to every viewer.

Rules:

* Every message is a JSON object with ``type`` and ``seq``; ``seq`` rises by one with
  every message the hub makes, so a viewer sees it increase (with gaps only when it
  was resynced).
* The first message a viewer gets is ``{"type": "snapshot", …}`` holding everything
  the page shows. After that, ``{"type": "update", …}`` with what changed, at most
  :data:`MAX_RATE` a second: changes are coalesced, never queued one per log line.
* Each viewer has its own bounded queue and its own sender task, so a slow or stuck
  browser never slows the service or the other viewers. When a viewer's queue is
  full, what it holds is dropped and replaced by one fresh snapshot (a resync);
  a viewer whose single send takes longer than :data:`SEND_TIMEOUT_S` is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["MAX_RATE", "Hub"]

logger = logging.getLogger(__name__)

MAX_RATE = 10  # updates per second, at most
QUEUE_SIZE = 32  # about three seconds of updates
SEND_TIMEOUT_S = 10.0
HEARTBEAT_S = 1.0  # while a run is active, an update at least this often (elapsed time)

Message = dict[str, Any]


class _Viewer:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self.resyncs = 0


class Hub:
    """Owns the viewers; ``changed()`` tells it that the state moved on."""

    def __init__(
        self,
        snapshot: Callable[[], Message],
        update: Callable[[], Message | None],
    ) -> None:
        """``update()`` returns what changed (``None``: nothing worth sending)."""
        self._snapshot = snapshot
        self._update = update
        self._viewers: set[_Viewer] = set()
        self._seq = 0
        self._changed = asyncio.Event()

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def changed(self) -> None:
        self._changed.set()

    def _message(self, kind: str, body: Message) -> str:
        self._seq += 1
        return json.dumps({"type": kind, "seq": self._seq, **body}, separators=(",", ":"))

    def _offer(self, viewer: _Viewer, text: str) -> None:
        try:
            viewer.queue.put_nowait(text)
        except asyncio.QueueFull:
            # Too far behind: forget the backlog, start again from the present.
            while not viewer.queue.empty():
                viewer.queue.get_nowait()
            viewer.resyncs += 1
            viewer.queue.put_nowait(self._message("snapshot", self._snapshot()))

    async def broadcast_forever(self) -> None:
        """Coalesce changes into at most MAX_RATE updates a second, for every viewer."""
        interval = 1 / MAX_RATE
        last = 0.0
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), HEARTBEAT_S)
            wait = last + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._changed.clear()
            last = time.monotonic()
            if not self._viewers:
                self._update()  # keep the change log short when nobody is watching
                continue
            body = self._update()
            if body is None:
                continue
            text = self._message("update", body)
            for viewer in list(self._viewers):
                self._offer(viewer, text)

    async def serve(self, websocket: WebSocket) -> None:
        """Serve one viewer until it leaves."""
        await websocket.accept()
        viewer = _Viewer(websocket)
        viewer.queue.put_nowait(self._message("snapshot", self._snapshot()))
        self._viewers.add(viewer)
        sender = asyncio.create_task(self._send(viewer))
        try:
            while True:  # viewers say nothing we need; reading notices when they leave
                await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError):  # RuntimeError: closed by _send
            pass
        finally:
            self._viewers.discard(viewer)
            sender.cancel()
            # A send into a connection that is going away may not end on cancellation
            # at once (it waits for the transport); never let that hold the viewer's
            # handler, which the server waits for when it shuts down.
            await asyncio.wait({sender}, timeout=1)

    async def _send(self, viewer: _Viewer) -> None:
        try:
            while True:
                text = await viewer.queue.get()
                await asyncio.wait_for(viewer.websocket.send_text(text), SEND_TIMEOUT_S)
        except asyncio.TimeoutError:
            logger.warning("a viewer stopped reading; closing it")
            with contextlib.suppress(Exception):
                await viewer.websocket.close(code=1013)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # gone; serve() cleans up
