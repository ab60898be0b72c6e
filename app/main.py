"""The dashboard service: ``uvicorn app.main:app``.

Routes are thin: run control lives in :mod:`app.supervisor`, traffic state in
:mod:`app.live`, fan-out in :mod:`app.hub`, Host/Origin checks in
:mod:`app.security`, runs on disk in :mod:`app.history`. The lifespan owns the
background work and stops the active run gracefully when the app shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from pingpong.settings import DEFAULTS, REMOTE_BIND_ENV, RUN, RunSettings, SettingsErrors
from pingpong.states import ACTIVE_STATES

from .history import list_runs, log_path, read_run
from .hub import Hub
from .live import time_zone
from .security import LocalOnly
from .supervisor import Conflict, Supervisor, Unavailable

__all__ = ["RUNS_DIR_ENV", "app", "create_app"]

RUNS_DIR_ENV = "PINGPONG_RUNS_DIR"
#: Largest body of ``POST /api/start``; settings take a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024
#: The run's settings as the page builds its form from them (pingpong.settings).
SCHEMA = RUN.to_json()
logger = logging.getLogger("app")


def _asset_dir(name: str) -> Path:
    """``templates/`` or ``static/``: beside the package in a checkout, inside it when installed."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / name, here / name):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"cannot find the {name}/ folder of the dashboard")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def create_app(runs_dir: Path | None = None) -> FastAPI:
    runs = runs_dir or Path(os.environ.get(RUNS_DIR_ENV, "runs"))
    # Runs listen on loopback only, as the dashboard does, unless this is set.
    loopback_only = os.environ.get(REMOTE_BIND_ENV) != "1"
    templates = Jinja2Templates(directory=_asset_dir("templates"))
    static = _asset_dir("static")
    hub: Hub
    run_changed = False  # the run moved on (state, processes, clients) since the last update

    def on_change() -> None:
        nonlocal run_changed
        run_changed = True
        hub.changed()

    supervisor = Supervisor(runs, on_change=on_change)

    def snapshot() -> dict[str, Any]:
        live = supervisor.live.snapshot() if supervisor.live is not None else None
        return {
            "state": supervisor.state,
            "run": supervisor.describe_run(),
            "live": live,
            "defaults": DEFAULTS,
            "schema": SCHEMA,
            "active_states": list(ACTIVE_STATES),  # a run in these can be stopped, not started
            "time_zone": time_zone(datetime.now().astimezone()),
        }

    def update() -> dict[str, Any] | None:
        nonlocal run_changed
        live = supervisor.live.take_update() if supervisor.live is not None else None
        if live is None and not run_changed and not supervisor.active:
            return None
        run_changed = False
        return {"state": supervisor.state, "run": supervisor.describe_run(), "live": live}

    hub = Hub(snapshot, update)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            runs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the app still shows past runs; Start answers 503 and why
            logger.warning("runs folder %s cannot be created: %s", runs, exc)
        broadcaster = asyncio.create_task(hub.broadcast_forever(), name="hub")
        try:
            yield
        finally:
            await supervisor.shutdown()
            broadcaster.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await broadcaster

    app = FastAPI(title="pingpong dashboard", lifespan=lifespan)
    app.state.supervisor = supervisor
    app.state.hub = hub
    app.state.runs_dir = runs
    app.add_middleware(LocalOnly)
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        # Browsers ask for it by this name whatever the page links (bookmarks, tabs).
        return FileResponse(static / "favicon.ico", media_type="image/x-icon")

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        run = supervisor.run
        values = run.settings.to_json() if run is not None else DEFAULTS
        return templates.TemplateResponse(
            request,
            "index.html",
            {"snapshot": _script_json(snapshot()), "state": supervisor.state, "schema": SCHEMA,
             "values": values},
        )  # fmt: skip

    @app.get("/api/status")
    async def status() -> dict[str, Any]:
        return supervisor.status()

    @app.post("/api/start", status_code=202)
    async def start(request: Request) -> JSONResponse:
        body = await _read_body(request, MAX_BODY_BYTES)
        if body is None:
            return _error(413, f"the body is over {MAX_BODY_BYTES} bytes; settings take far less")
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            return _invalid([{"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json"}])
        except RecursionError:
            return _invalid([{"loc": ["body"], "msg": "JSON nested too deeply", "type": "json"}])
        if not isinstance(data, dict):
            return _invalid([{"loc": ["body"], "msg": "must be a JSON object", "type": "type"}])
        try:
            # The host is looked up, which may block: in a thread.
            settings = await asyncio.to_thread(
                RunSettings.from_json, data, resolve=True, loopback_only=loopback_only
            )
        except SettingsErrors as exc:
            return _invalid(
                [{"loc": ["body", e.field], "msg": e.message, "type": "value_error"}
                 for e in exc.errors]
            )  # fmt: skip
        try:
            await supervisor.start(settings)
        except Conflict as exc:
            return _error(409, str(exc))
        except Unavailable as exc:
            return _error(503, str(exc))
        return JSONResponse(supervisor.describe_run(), status_code=202)

    @app.post("/api/stop", status_code=202)
    async def stop() -> JSONResponse:
        try:
            supervisor.stop()
        except Conflict as exc:
            return _error(409, str(exc))
        return JSONResponse(supervisor.describe_run(), status_code=202)

    def freshest(on_disk: dict[str, Any]) -> dict[str, Any]:
        """A run as its run.json says, or as memory says if it is this app's run:
        run.json is only written at the start and the end of a run."""
        current = supervisor.describe_run()
        if current is None or current["id"] != on_disk["id"]:
            return on_disk
        return current | {"logs": on_disk["logs"]}

    @app.get("/api/runs")
    async def runs_list() -> list[dict[str, Any]]:
        return [freshest(run) for run in await asyncio.to_thread(list_runs, runs)]

    @app.get("/api/runs/{run_id}")
    async def run_detail(run_id: str) -> JSONResponse:
        found = await asyncio.to_thread(read_run, runs, run_id)
        if found is None:
            return _error(404, f"no run {run_id!r}")
        return JSONResponse(freshest(found))

    @app.get("/api/runs/{run_id}/logs/{name}", response_model=None)
    async def run_log(run_id: str, name: str) -> FileResponse | JSONResponse:
        path = log_path(runs, run_id, name)
        if path is None:
            return _error(404, f"no log {name!r} in run {run_id!r}")
        return FileResponse(path, media_type="text/plain; charset=utf-8")

    @app.websocket("/ws")
    async def websocket(websocket: WebSocket) -> None:
        await hub.serve(websocket)

    return app


def _script_json(data: Any) -> str:
    """JSON safe to embed in a <script> element: no "</script>" can close it early."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request's body, or ``None`` as soon as it passes ``limit`` bytes: the rest is
    never read, so a huge body costs no memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _invalid(detail: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=422)


app = create_app()
