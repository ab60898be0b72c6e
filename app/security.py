"""Host and Origin checks (docs/protocol.md §11.4), as one small ASGI middleware.

* **Host** must be a local name (``localhost``, ``127.0.0.1``, ``[::1]``, plus
  ``PINGPONG_ALLOWED_HOSTS``), whatever the port: a page on a foreign domain that
  re-binds its DNS to 127.0.0.1 still sends its own name, and gets 400.
* **Origin**, when present on a state-changing request (anything but GET, HEAD,
  OPTIONS) or a WebSocket handshake, must be the dashboard's own: an allowed name
  and the dashboard's port. Anything else — another port, another name, ``null``
  — gets 403 (a WebSocket is refused before it is accepted). A request with no
  Origin (curl, a script) is not cross-site and passes.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ALLOWED_HOSTS_ENV", "LocalOnly", "allowed_hosts"]

ALLOWED_HOSTS_ENV = "PINGPONG_ALLOWED_HOSTS"
_DEFAULT_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def allowed_hosts() -> frozenset[str]:
    extra = os.environ.get(ALLOWED_HOSTS_ENV, "")
    names = [*_DEFAULT_HOSTS, *(name.strip().lower() for name in extra.split(","))]
    return frozenset(name for name in names if name)


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``"localhost:8000"`` → ``("localhost", 8000)``; ``None`` if malformed."""
    try:
        parts = urlsplit(f"//{value}")
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not host:
        return None
    return (f"[{host}]" if ":" in host else host.lower()), port


class LocalOnly:
    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None = None) -> None:
        self.app = app
        self.hosts = hosts if hosts is not None else allowed_hosts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = _split_host(headers.get("host", ""))
        if host is None or host[0] not in self.hosts:
            await self._refuse(scope, receive, send, 400, "Invalid host header")
            return
        origin = headers.get("origin")
        checks_origin = scope["type"] == "websocket" or scope["method"] not in _SAFE_METHODS
        if checks_origin and origin is not None and not self._own_origin(scope, origin):
            await self._refuse(scope, receive, send, 403, "Cross-origin request refused")
            return
        await self.app(scope, receive, send)

    def _own_origin(self, scope: Scope, origin: str) -> bool:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null", file://, garbage
        host = _split_host(parts.netloc)
        if host is None or host[0] not in self.hosts:
            return False
        port = host[1] or (443 if parts.scheme == "https" else 80)
        server = scope.get("server")
        return server is not None and port == server[1]

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, text: str
    ) -> None:
        if scope["type"] == "websocket":
            if "websocket.http.response" in scope.get("extensions", {}):
                # The server can answer the handshake with a real HTTP status.
                await send({
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                })  # fmt: skip
                await send({"type": "websocket.http.response.body", "body": text.encode()})
            else:  # refused before accepting: the server answers 403
                await send({"type": "websocket.close", "code": 1008, "reason": text})
            return
        await PlainTextResponse(text, status_code=status)(scope, receive, send)
