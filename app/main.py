"""The dashboard service: ``uvicorn app.main:app`` (SPEC §9).

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
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from pingpong.settings import DEFAULTS, RunSettings, SettingsErrors

from .history import list_runs, log_path, read_run
from .hub import Hub
from .runs_api import runs_router
from .security import LocalOnly
from .supervisor import Conflict, Supervisor

__all__ = ["RUNS_DIR_ENV", "app", "create_app"]

RUNS_DIR_ENV = "PINGPONG_RUNS_DIR"
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
    templates = Jinja2Templates(directory=_asset_dir("templates"))
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
        runs.mkdir(parents=True, exist_ok=True)
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
    app.mount("/static", StaticFiles(directory=_asset_dir("static")), name="static")
    app.include_router(runs_router(runs, supervisor, templates))

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            "index.html",
            {"snapshot": _script_json(snapshot()), "state": supervisor.state, "defaults": DEFAULTS},
        )

    @app.get("/api/status")
    async def status() -> dict[str, Any]:
        return supervisor.status()

    @app.post("/api/start", status_code=202)
    async def start(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            return _invalid([{"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json"}])
        if not isinstance(data, dict):
            return _invalid([{"loc": ["body"], "msg": "expected a JSON object", "type": "type"}])
        try:
            settings = RunSettings.from_json(data)
        except SettingsErrors as exc:
            return _invalid(
                [{"loc": ["body", e.field], "msg": e.message, "type": "value_error"}
                 for e in exc.errors]
            )  # fmt: skip
        try:
            await supervisor.start(settings)
        except Conflict as exc:
            return _error(409, str(exc))
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


def _invalid(detail: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=422)


app = create_app()
