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
  full, what it holds is dropped and replaced by one fresh snapshot (a resync).
* A viewer whose single send takes longer than :data:`SEND_TIMEOUT_S` has stopped
  reading: it is cut off — its connection aborted (a reset, its unsent bytes dropped),
  not closed politely, since a close frame would wait behind the bytes it does not read.
* Viewers have nothing to say: a text message is ignored, a binary one is a protocol
  error and closes that viewer with 1003, with one line in the app's log.
* When a viewer goes away (it left, or the server is shutting down) with bytes that
  even the kernel could not take, it is cut off too: no viewer can hold up the
  server's shutdown, nor the stop of the run that comes after it.

ASGI has no message that aborts a connection, so :class:`KeepTransport` finds it:
uvicorn hands the app the bound ``send`` of its protocol object, which holds the
``transport``. Under a server that does not, a cut-off falls back to a close with
a deadline, and the server's own timeouts apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, cast

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["MAX_RATE", "Hub", "KeepTransport"]

logger = logging.getLogger(__name__)

MAX_RATE = 10  # updates per second, at most
QUEUE_SIZE = 32  # about three seconds of updates
SEND_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 1.0  # for a close frame to go out before the connection is aborted
#: The scope key under which :class:`KeepTransport` leaves a WebSocket's transport.
TRANSPORT = "pingpong.transport"
HEARTBEAT_S = 1.0  # while a run is active, an update at least this often (elapsed time)

Message = dict[str, Any]


def _is_transport(candidate: object) -> bool:
    """Duck-typed: uvloop's transports are not asyncio's classes."""
    return all(
        callable(getattr(candidate, name, None))
        for name in ("abort", "get_write_buffer_size", "get_extra_info")
    )


class KeepTransport:
    """ASGI middleware: put each WebSocket's transport, when the server exposes it, in its scope.

    It must sit outside any middleware that wraps ``send`` (Starlette's exception
    middleware does): only the server's own ``send`` leads to the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if _is_transport(transport):
                scope[TRANSPORT] = transport
        await self.app(scope, receive, send)


class _Viewer:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self.resyncs = 0

    @property
    def transport(self) -> asyncio.WriteTransport | None:
        transport = self.websocket.scope.get(TRANSPORT)
        return cast(asyncio.WriteTransport, transport) if _is_transport(transport) else None

    def abort(self) -> bool:
        """Reset the connection, dropping what is unsent; ``False`` if we cannot reach it."""
        transport = self.transport
        if transport is None:
            return False
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: the close is a reset, and the kernel drops the unsent bytes
            # instead of trying to deliver them to a peer that does not read.
            linger = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        transport.abort()
        return True

    async def close(self, code: int) -> None:
        """A close frame if it can go out soon, else the connection is aborted."""
        try:
            await asyncio.wait_for(self.websocket.close(code=code), CLOSE_TIMEOUT_S)
        except asyncio.TimeoutError:
            self.abort()
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # gone already

    def release(self) -> None:
        """The viewer is going: drop what it left unread rather than wait for it to read."""
        transport = self.transport
        if transport is not None and transport.get_write_buffer_size():
            self.abort()


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
        """Serve one viewer until it leaves, is cut off, or the server shuts down."""
        await websocket.accept()
        viewer = _Viewer(websocket)
        viewer.queue.put_nowait(self._message("snapshot", self._snapshot()))
        self._viewers.add(viewer)
        # Whichever ends first ends the viewer: the receiver when it leaves (or the
        # server says it is shutting down), the sender when it stops reading.
        tasks = {
            asyncio.create_task(self._send(viewer)),
            asyncio.create_task(self._receive(viewer)),
        }
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._viewers.discard(viewer)
            for task in tasks:
                task.cancel()
            # A send into a connection that is going away may not end on cancellation
            # at once (it waits for the transport); never let that hold the viewer's
            # handler, which the server waits for when it shuts down.
            await asyncio.wait(tasks, timeout=1)
            viewer.release()

    async def _receive(self, viewer: _Viewer) -> None:
        try:
            while True:
                message = await viewer.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    logger.warning("a viewer sent a binary message; closing it (1003)")
                    await viewer.close(1003)
                    return
                # A text message: viewers say nothing we need.
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # gone

    async def _send(self, viewer: _Viewer) -> None:
        try:
            while True:
                text = await viewer.queue.get()
                await asyncio.wait_for(viewer.websocket.send_text(text), SEND_TIMEOUT_S)
        except asyncio.TimeoutError:
            logger.warning("a viewer stopped reading; cutting it off")
            if not viewer.abort():
                await viewer.close(1013)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # gone
