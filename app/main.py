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
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from pingpong import __version__
from pingpong.core.settings import DEFAULTS, REMOTE_BIND_ENV, RUN, RunSettings, SettingsErrors
from pingpong.core.states import ACTIVE_STATES

from . import models
from .history import list_runs, log_path, read_run
from .hub import Hub, KeepTransport
from .live import time_zone
from .metrics import Metrics
from .runs_api import runs_router
from .security import LocalOnly
from .supervisor import Conflict, Supervisor, Unavailable

__all__ = ["RUNS_DIR_ENV", "app", "create_app"]

RUNS_DIR_ENV = "PINGPONG_RUNS_DIR"
#: Largest body of ``POST /api/start``; settings take a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024
#: The run's settings as the page builds its form from them (pingpong.core.settings).
SCHEMA = RUN.to_json()
SWAGGER_UI = "vendor/swagger-ui-dist-5.35.0"  # in static/, with its licence
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

    metrics = Metrics()
    supervisor = Supervisor(runs, on_change=on_change, on_read=metrics.observe_read)

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
    metrics.watch(supervisor, hub)

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

    app = FastAPI(
        title="pingpong dashboard",
        version=__version__,
        description=_API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # FastAPI's own pages load their scripts from a CDN; ours are vendored
        redoc_url=None,
    )
    models.keep_null_defaults(app)
    app.state.supervisor = supervisor
    app.state.hub = hub
    app.state.metrics = metrics
    app.state.runs_dir = runs
    app.add_middleware(LocalOnly)
    app.add_middleware(KeepTransport)  # outside Starlette's wrapping of send (app.hub)
    app.mount("/static", StaticFiles(directory=static), name="static")
    app.include_router(runs_router(runs, supervisor, templates))

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        # Browsers ask for it by this name whatever the page links (bookmarks, tabs).
        return FileResponse(static / "favicon.ico", media_type="image/x-icon")

    # The routes build their JSON themselves and return it as a response, which FastAPI
    # sends as it is: response_model only documents it (the tests hold them together).

    @app.get("/", response_class=HTMLResponse, summary="The dashboard page")
    async def index(request: Request) -> HTMLResponse:
        """The page, server-rendered with the current snapshot embedded, so it shows the
        state at once; it then follows WS /ws."""
        run = supervisor.run
        values = run.settings.to_json() if run is not None else DEFAULTS
        return templates.TemplateResponse(
            request,
            "index.html",
            {"snapshot": _script_json(snapshot()), "state": supervisor.state, "schema": SCHEMA,
             "values": values},
        )  # fmt: skip

    @app.get("/api/status", response_model=models.Status, summary="The state and current run")
    async def status() -> JSONResponse:
        """The app's state, the current or last run of this app (null before its first),
        and that run's live counters."""
        return JSONResponse(supervisor.status())

    @app.post(
        "/api/start",
        status_code=202,
        response_model=models.Run,
        responses={
            409: {"model": models.Error, "description": "A run is already active."},
            413: {"model": models.Error, "description": "The body is over 64 KiB."},
            422: {"model": models.ValidationErrors, "description": "Invalid settings."},
            503: {"model": models.Error, "description": "The runs folder cannot be written."},
        },
        openapi_extra=models.settings_request_body(),
        summary="Start a run",
    )
    async def start(request: Request) -> JSONResponse:
        """Start a run (202 with it); 409 while a run is active; 422 for invalid settings;
        413 for a body over 64 KiB; 503 when the runs folder cannot be written."""
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

    @app.post(
        "/api/stop",
        status_code=202,
        response_model=models.Run,
        responses={409: {"model": models.Error}},
        summary="Stop the active run",
    )
    async def stop() -> JSONResponse:
        """Stop the active run gracefully, clients first (202); 409 if no run is active."""
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

    @app.get(
        "/api/runs",
        response_model=list[models.StoredRun | models.UnreadableRun],
        summary="Every run, newest first",
    )
    async def runs_list() -> JSONResponse:
        """Every run in the runs folder, newest first, the command line's too, each with
        the names of its log files."""
        return JSONResponse([freshest(run) for run in await asyncio.to_thread(list_runs, runs)])

    @app.get(
        "/api/runs/{run_id}",
        response_model=models.StoredRun | models.UnreadableRun,
        responses={404: {"model": models.Error}},
        summary="One run",
    )
    async def run_detail(run_id: str) -> JSONResponse:
        """One run's run.json: settings, processes and exit codes, summary, check."""
        found = await asyncio.to_thread(read_run, runs, run_id)
        if found is None:
            return _error(404, f"no run {run_id!r}")
        return JSONResponse(freshest(found))

    @app.get(
        "/api/runs/{run_id}/logs/{name}",
        response_class=PlainTextResponse,
        response_model=None,
        responses={404: models.json_error("No such run, or no such file in it.")},
        summary="One of a run's log files",
    )
    async def run_log(run_id: str, name: str) -> FileResponse | JSONResponse:
        """One of a run's files as text, shown in the browser: server.log, clientK.log, or
        a process's .out or .err. HEAD gives its headers (its size) alone."""
        path = log_path(runs, run_id, name)
        if path is None:
            return _error(404, f"no log {name!r} in run {run_id!r}")
        # Shown as plain text and nothing else: a process's stderr can quote what a
        # client sent, which must never run as a page of this origin.
        headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
        return FileResponse(path, media_type="text/plain; charset=utf-8", headers=headers)

    # HEAD as well (a size, a link checker), without a second entry in the API's docs.
    app.head("/api/runs/{run_id}/logs/{name}", include_in_schema=False, response_model=None)(
        run_log
    )

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def prometheus(request: Request) -> Response:
        """The run's counters and the app's own metrics for Prometheus: OpenMetrics when the
        scraper asks for it, else the classic text format."""
        body, content_type = await metrics.exposition(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    @app.get(
        models.WS_SCHEMA_PATH,
        response_model=dict[str, Any],
        summary="JSON Schema of the WebSocket messages",
    )
    async def ws_schema() -> JSONResponse:
        """The JSON Schema of the messages WS /ws sends: a snapshot, then updates."""
        return JSONResponse(models.ws_schema(), media_type="application/schema+json")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="pingpong dashboard API",
            swagger_js_url=f"/static/{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"/static/{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url="/favicon.ico",
            # No online validator badge: nothing leaves the machine.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.websocket("/ws")
    async def websocket(websocket: WebSocket) -> None:
        await hub.serve(websocket)

    return app


_API_DESCRIPTION = f"""Start, stop and watch pingpong runs.

`WS /ws` streams a snapshot, then batched updates; their JSON Schema is at
[{models.WS_SCHEMA_PATH}]({models.WS_SCHEMA_PATH}). Prometheus metrics are at `/metrics`.
"""


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
