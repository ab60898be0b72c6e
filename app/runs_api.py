"""Every run explorable: the run page, the compare page and the HTTP API behind them.

Each run's questions are answered from its index (:mod:`app.runindex`), built from
its logs in a child process when a run ends or is first opened, and brought up to
date before each answer while the run is live. Query strings are checked here, one
message per bad field (422, ``{"detail": [{"loc": ["query", field], "msg"}]}``); an
unknown run is 404; a run whose logs are damaged is indexed with what can be read,
and says what could not.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import html
import io
import json
import logging
import math
import sys
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from pingpong.running.process import child_environment

from . import models, runs_models
from .history import log_names, read_run, run_folder
from .runindex import OUTCOMES, Filter, RunIndex, exchange_json, index_path, update
from .supervisor import Supervisor

__all__ = ["Indexes", "runs_router"]

logger = logging.getLogger(__name__)

_ACTIVE = {"starting", "running", "stopping"}
_IN_PROCESS_BYTES = 2 << 20  # a backlog up to this is indexed in a thread, more in a child
_LIVE_REFRESH_S = 0.5  # a live run's index is brought up to date at most this often
_MAX_WIDTH = 10_000
_MAX_LIMIT = 1000
_MAX_COMPARE = 8
_OUTCOME_NAMES = {name.replace(" ", "_"): code for code, name in enumerate(OUTCOMES)} | {
    name: code for code, name in enumerate(OUTCOMES)
}


class _Invalid(Exception):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__(errors)
        self.errors = errors


class _NotFound(Exception):
    pass


class _Unavailable(Exception):
    pass


def _invalid(errors: list[tuple[str, str]]) -> JSONResponse:
    return JSONResponse(
        {"detail": [{"loc": ["query", field], "msg": msg, "type": "value_error"}
                    for field, msg in errors]},
        status_code=422,
    )  # fmt: skip


class _Query:
    """The query string, read field by field; every problem is kept, then raised at once."""

    def __init__(self, request: Request) -> None:
        self.params = request.query_params
        self.errors: list[tuple[str, str]] = []

    def text(self, name: str) -> str | None:
        value = self.params.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def number(self, name: str) -> float | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0:
            self.errors.append((name, f"must be a time in epoch seconds, got {value!r}"))
            return None
        return number

    def integer(self, name: str, low: int, high: int, default: int | None = None) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.errors.append((name, f"must be an integer, got {value!r}"))
            return default
        if not low <= number <= high:
            self.errors.append((name, f"must be between {low} and {high}, got {number}"))
            return default
        return number

    def check(self) -> None:
        if self.errors:
            raise _Invalid(self.errors)

    def window(self) -> tuple[float | None, float | None]:
        start, end = self.number("from"), self.number("to")
        if start is not None and end is not None and end <= start:
            self.errors.append(("to", f"must be after from ({start:g}), got {end:g}"))
        return start, end

    def filter(self) -> Filter:
        start, end = self.window()
        clients: list[int | None] = []
        for part in (self.text("client") or "").split(","):
            part = part.strip()
            if not part:
                continue
            if part == "none":
                clients.append(None)
            elif part.isdigit() and int(part) >= 1:
                clients.append(int(part))
            else:
                self.errors.append(
                    ("client", f"must be client numbers (or none), comma-separated, got {part!r}")
                )
        outcomes: list[int] = []
        for part in (self.text("outcome") or "").split(","):
            part = part.strip()
            if not part:
                continue
            code = _OUTCOME_NAMES.get(part.replace("-", "_"))
            if code is None:
                self.errors.append(
                    ("outcome", f"must be among {', '.join(OUTCOMES)}, got {part!r}")
                )
            else:
                outcomes.append(code)
        request = self.integer("request", 0, 2**62)
        return Filter(start, end, tuple(clients), tuple(sorted(set(outcomes))), request)

    def cursor(self) -> tuple[str, tuple[float, int]] | None:
        value = self.text("cursor")
        if value is None:
            return None
        direction, _, rest = value.partition(":")
        t_text, _, id_text = rest.rpartition(":")
        try:
            if direction not in ("after", "before"):
                raise ValueError
            position = (float(t_text), int(id_text))
            if not math.isfinite(position[0]):
                raise ValueError
        except ValueError:
            self.errors.append(("cursor", f"not a cursor of this API: {value!r}"))
            return None
        return direction, position


def _cursor(direction: str, row: tuple[Any, ...]) -> str:
    return f"{direction}:{row[1]!r}:{row[0]}"


@dataclass
class _Entry:
    folder: Path
    lock: asyncio.Lock
    complete: bool = False
    refreshed: float = 0.0  # time.monotonic() of the last update


class Indexes:
    """Keeps each run's index up to date: built in a child process when there is a lot to
    read, in a thread when there is little, never twice at once for one run."""

    def __init__(self, runs_dir: Path, supervisor: Supervisor) -> None:
        self.runs_dir = runs_dir
        self.supervisor = supervisor
        self._entries: dict[str, _Entry] = {}
        self._counts: dict[tuple[str, Filter], int] = {}

    def folder(self, run_id: str) -> Path:
        folder = run_folder(self.runs_dir, run_id)
        if folder is None:
            raise _NotFound(run_id)
        return folder

    def describe(self, run_id: str) -> dict[str, Any]:
        """The run as run.json says, or as memory says if it is this app's current run."""
        on_disk = read_run(self.runs_dir, run_id)
        if on_disk is None:
            raise _NotFound(run_id)
        current = self.supervisor.describe_run()
        if current is not None and current["id"] == run_id:
            return current | {"logs": on_disk["logs"]}
        return on_disk

    def live(self, run_id: str, description: dict[str, Any] | None = None) -> bool:
        run = self.supervisor.run
        if run is not None and run.id == run_id:
            return run.active
        state = (description or self.describe(run_id)).get("state")
        return state in _ACTIVE

    async def ready(self, run_id: str) -> Path:
        """The run's folder, once its index holds everything logged so far."""
        folder = self.folder(run_id)
        entry = self._entries.get(run_id)
        if entry is None or entry.folder != folder:
            entry = self._entries[run_id] = _Entry(folder, asyncio.Lock())
        final = not self.live(run_id)
        if entry.complete and final and index_path(folder).exists():
            return folder
        if not final and time.monotonic() - entry.refreshed < _LIVE_REFRESH_S:
            return folder
        async with entry.lock:
            if entry.complete and final and index_path(folder).exists():
                return folder
            await self._update(folder, final)
            entry.refreshed = time.monotonic()
            entry.complete = final
        return folder

    async def _update(self, folder: Path, final: bool) -> None:
        state = await asyncio.to_thread(_index_state, folder)
        if state is not None and state[0] == 0 and state[1] == final:
            return
        if state is not None and state[0] <= _IN_PROCESS_BYTES:
            await asyncio.to_thread(update, folder, final=final)
            return
        final_flag = ["--final"] if final else []
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.runindex", str(folder), *final_flag,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=child_environment(),
        )  # fmt: skip
        try:
            _out, err = await child.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
            raise
        if child.returncode != 0:
            message = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            logger.error("indexing %s failed: %s", folder, message[0])
            raise _Unavailable(f"the run's index could not be built: {message[0]}")

    def count(self, run_id: str, index: RunIndex, where: Filter, final: bool) -> int:
        """How many exchanges match; remembered for a finished run (it cannot change)."""
        key = (run_id, where)
        if final and key in self._counts:
            return self._counts[key]
        total = index.count(where)
        if final:
            if len(self._counts) > 1000:
                self._counts.clear()
            self._counts[key] = total
        return total

    async def build_ended_runs(self) -> None:
        """Index the app's runs as they end, so their page opens at once."""
        done: str | None = None
        while True:
            run = self.supervisor.run
            if run is not None and not run.active and run.id != done:
                try:
                    await self.ready(run.id)
                except (_NotFound, _Unavailable) as exc:
                    logger.warning("run %s not indexed: %s", run.id, exc)
                done = run.id
            await asyncio.sleep(1.0)


def _index_state(folder: Path) -> tuple[int, bool] | None:
    """(bytes of log not indexed yet, complete) or ``None`` without a usable index."""
    from .runindex import backlog_bytes

    backlog = backlog_bytes(folder)
    if backlog is None:
        return None
    try:
        with RunIndex(folder) as index:
            complete = bool(index.status()["complete"])
    except Exception:  # a damaged index: rebuild it
        return None
    return backlog, complete


def _local(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch).isoformat(sep=" ", timespec="milliseconds")


class _ZipSink(io.RawIOBase):
    """A write-only, unseekable file: what zipfile writes is handed out in chunks."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def _zip(folder: Path, run_id: str) -> Iterator[bytes]:
    """A run folder as a zip (logs, stdout/stderr, run.json), streamed as it is written."""
    sink = _ZipSink()
    names = [*log_names(folder), "run.json"]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in names:
            path = folder / name
            try:
                source = open(path, "rb")  # noqa: SIM115 - closed below
            except OSError:
                continue
            with source, archive.open(f"{run_id}/{name}", "w", force_zip64=True) as target:
                while data := source.read(1 << 20):
                    target.write(data)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


_CSV_COLUMNS = [
    "id", "client", "request", "response", "outcome", "client_sent", "server_received",
    "server_sent", "client_done", "round_trip_ms", "delay_ms", "request_line", "response_line",
    "client_log", "server_log",
]  # fmt: skip


def _csv(folder: Path, where: Filter) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    yield buffer.getvalue().encode()
    after: tuple[float, int] | None = None
    with RunIndex(folder) as index:
        while True:
            rows = index.exchanges(where, after=after, limit=5000)
            if not rows:
                return
            buffer.seek(0)
            buffer.truncate()
            for row in rows:
                e = exchange_json(row)
                times = e["times"]
                log = e["log"]
                writer.writerow([
                    e["id"], e["client"] if e["client"] is not None else "", e["request"],
                    e["response"], e["outcome"], _local(times["client_sent"]),
                    _local(times["server_received"]), _local(times["server_sent"]),
                    _local(times["client_done"]), e["round_trip_ms"], e["delay_ms"],
                    e["wire"]["request"] or "", e["wire"]["response"] or "",
                    f"{log['client']['file']}:{log['client']['line']}" if log["client"] else "",
                    f"{log['server']['file']}:{log['server']['line']}" if log["server"] else "",
                ])  # fmt: skip
            yield buffer.getvalue().encode()
            after = (rows[-1][1], rows[-1][0])


def _totals(counters: dict[str, Any]) -> dict[str, Any]:
    clients = counters["clients"]
    return {
        "requests": counters["server"]["requests"],
        "answered": counters["server"]["answered"],
        "ignored": counters["server"]["ignored"],
        "ignored_pct": counters["server"]["ignored_pct"],
        "timed_out": sum(c["timed_out"] for c in clients),
        "late": sum(c["late"] for c in clients),
        "keepalives": counters["server"]["keepalives"],
        "bad_lines": counters["server"]["bad_lines"],
    }


class _Csv(StreamingResponse):
    media_type = "text/csv; charset=utf-8"


class _Zip(StreamingResponse):
    media_type = "application/zip"


_NOT_FOUND = {"model": models.Error, "description": "No such run."}
_INVALID = {
    "model": models.ValidationErrors,
    "description": 'A bad parameter: loc is ["query", name].',
}
_UNAVAILABLE = {"model": models.Error, "description": "The run's index could not be built."}
_HTML_404 = {
    "description": "No such run.",
    "content": {"text/html": {"schema": {"type": "string"}}},
}
_PARAMETERS: dict[str, tuple[dict[str, Any], str]] = {
    "from": ({"type": "number"}, "Start of the window, epoch seconds (default: the run's start)."),
    "to": ({"type": "number"}, "End of the window, epoch seconds, excluded (default: its end)."),
    "client": ({"type": "string"}, 'Client numbers, comma-separated; "none": no client logged it.'),
    "outcome": ({"type": "string"}, "Outcomes, comma-separated: answered, timed out (or "
                "timed_out), ignored, late, keepalive."),
    "request": ({"type": "integer", "minimum": 0}, "A request number."),
    "cursor": ({"type": "string"}, "next or prev of a page (after:… or before:…)."),
    "limit": ({"type": "integer", "minimum": 1, "maximum": _MAX_LIMIT, "default": 100},
              "Exchanges per page."),
    "width": ({"type": "integer", "minimum": 1, "maximum": _MAX_WIDTH, "default": 1000},
              "Pixels the window is drawn on: at most this many points."),
    "line": ({"type": "integer", "minimum": 1}, "The line number (required)."),
    "context": ({"type": "integer", "minimum": 0, "maximum": 100, "default": 3},
                "Lines shown either side."),
    "ids": ({"type": "string"}, f"Two to {_MAX_COMPARE} run ids, comma-separated (required)."),
}  # fmt: skip


def _parameters(*names: str) -> dict[str, Any]:
    """The query parameters of a route, for /openapi.json (the route reads them itself)."""
    return {
        "parameters": [
            {"name": name, "in": "query", "required": name in ("line", "ids"),
             "schema": _PARAMETERS[name][0], "description": _PARAMETERS[name][1]}
            for name in names
        ]
    }  # fmt: skip


def runs_router(runs_dir: Path, supervisor: Supervisor, templates: Jinja2Templates) -> APIRouter:
    indexes = Indexes(runs_dir, supervisor)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        builder = asyncio.create_task(indexes.build_ended_runs(), name="index ended runs")
        try:
            yield
        finally:
            builder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await builder

    router = APIRouter(lifespan=lifespan)
    router.indexes = indexes  # type: ignore[attr-defined]

    def not_found(run_id: str) -> JSONResponse:
        return JSONResponse({"detail": f"no run {run_id!r}"}, status_code=404)

    def unavailable(exc: _Unavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    async def open_index(run_id: str) -> tuple[Path, bool]:
        folder = await indexes.ready(run_id)
        return folder, not indexes.live(run_id)

    @router.get(
        "/runs/{run_id}",
        summary="A run's page",
        response_class=HTMLResponse,
        responses={404: _HTML_404},
    )
    async def run_page(request: Request, run_id: str) -> HTMLResponse:
        """The run's page: settings, processes, verdict, counters, timeline, charts and
        every exchange. A live run's page follows the run."""
        try:
            description = await asyncio.to_thread(indexes.describe, run_id)
        except _NotFound:
            return HTMLResponse(
                f"<!doctype html><title>no such run</title><p>No run {_html(run_id)}. "
                '<a href="/">Back to the dashboard</a></p>',
                status_code=404,
            )
        return templates.TemplateResponse(
            request, "run.html", {"run_id": run_id, "run": _script(description)}
        )

    @router.get("/compare", summary="The comparison page", response_class=HTMLResponse)
    async def compare_page(request: Request) -> HTMLResponse:
        """Runs side by side (?ids=a,b,…): settings and totals, round-trip CDFs, rates."""
        return templates.TemplateResponse(request, "compare.html", {})

    @router.get(
        "/api/runs/{run_id}/overview",
        summary="A run's overview", response_model=runs_models.Overview,
        responses={404: _NOT_FOUND, 503: _UNAVAILABLE},
    )  # fmt: skip
    async def overview(run_id: str) -> JSONResponse:
        """The run, its index (what could not be read) and its counters, over the whole run
        (what has been logged so far, while it is live)."""
        try:
            description = await asyncio.to_thread(indexes.describe, run_id)
            folder, final = await open_index(run_id)
        except _NotFound:
            return not_found(run_id)
        except _Unavailable as exc:
            return unavailable(exc)

        def read() -> dict[str, Any]:
            with RunIndex(folder) as index:
                return {
                    "run": description,
                    "live": not final,
                    "index": index.status(),
                    "counters": index.counters(),
                    "clients": index.clients(),
                }

        return JSONResponse(await asyncio.to_thread(read))

    @router.get(
        "/api/runs/{run_id}/exchanges",
        summary="A page of a run's exchanges", response_model=runs_models.ExchangePage,
        responses={404: _NOT_FOUND, 422: _INVALID, 503: _UNAVAILABLE},
        openapi_extra=_parameters("from", "to", "client", "outcome", "request", "cursor", "limit"),
    )  # fmt: skip
    async def exchanges(request: Request, run_id: str) -> JSONResponse:
        """A page of exchanges in time order, with their wire lines and log lines, the
        cursors of the pages either side, and how many match in all."""
        query = _Query(request)
        where = query.filter()
        cursor = query.cursor()
        limit = query.integer("limit", 1, _MAX_LIMIT, 100)
        try:
            query.check()
            folder, final = await open_index(run_id)
        except _Invalid as exc:
            return _invalid(exc.errors)
        except _NotFound:
            return not_found(run_id)
        except _Unavailable as exc:
            return unavailable(exc)
        assert limit is not None

        def read() -> dict[str, Any]:
            with RunIndex(folder) as index:
                after = cursor[1] if cursor and cursor[0] == "after" else None
                before = cursor[1] if cursor and cursor[0] == "before" else None
                rows = index.exchanges(where, after=after, before=before, limit=limit)
                earlier = bool(rows) and bool(
                    index.exchanges(where, before=(rows[0][1], rows[0][0]), limit=1)
                )
                later = bool(rows) and bool(
                    index.exchanges(where, after=(rows[-1][1], rows[-1][0]), limit=1)
                )
                lines = index.log_lines(rows)
                items = []
                for row, line in zip(rows, lines, strict=True):
                    item = exchange_json(row)
                    item["log"]["client"] = item["log"]["client"] and {
                        **item["log"]["client"],
                        "text": line["client"],
                    }
                    item["log"]["server"] = item["log"]["server"] and {
                        **item["log"]["server"],
                        "text": line["server"],
                    }
                    items.append(item)
                return {
                    "exchanges": items,
                    "total": indexes.count(run_id, index, where, final),
                    "next": _cursor("after", rows[-1]) if rows and later else None,
                    "prev": _cursor("before", rows[0]) if rows and earlier else None,
                    "limit": limit,
                    "live": not final,
                }

        return JSONResponse(await asyncio.to_thread(read))

    @router.get(
        "/api/runs/{run_id}/exchanges.csv",
        summary="A run's exchanges as CSV", response_model=None, response_class=_Csv,
        responses={**runs_models.binary(_Csv.media_type, "Every matching exchange, one a row."),
                   404: _NOT_FOUND, 422: _INVALID, 503: _UNAVAILABLE},
        openapi_extra=_parameters("from", "to", "client", "outcome", "request"),
    )  # fmt: skip
    async def exchanges_csv(request: Request, run_id: str) -> Response:
        """The exchanges of a filter (the same as /exchanges) as CSV, all of them."""
        query = _Query(request)
        where = query.filter()
        try:
            query.check()
            folder, _final = await open_index(run_id)
        except _Invalid as exc:
            return _invalid(exc.errors)
        except _NotFound:
            return not_found(run_id)
        except _Unavailable as exc:
            return unavailable(exc)
        return _Csv(
            _csv(folder, where),
            headers={"content-disposition": f'attachment; filename="{run_id}_exchanges.csv"'},
        )

    def window_params(request: Request) -> tuple[float | None, float | None, int]:
        query = _Query(request)
        start, end = query.window()
        width = query.integer("width", 1, _MAX_WIDTH, 1000)
        query.check()
        assert width is not None
        return start, end, width

    def whole_run(folder: Path, start: float | None, end: float | None) -> tuple[float, float]:
        """The window asked for, its missing ends taken from the run's first and last times."""
        if start is not None and end is not None:
            return start, end
        with RunIndex(folder) as index:
            status = index.status()
        first = status["first"] if status["first"] is not None else time.time()
        last = status["last"] if status["last"] is not None else first
        start = first if start is None else start
        end = max(last + 0.001, start + 0.001) if end is None else end
        if end <= start:
            raise _Invalid([("to", f"must be after from ({start:g}), got {end:g}")])
        return start, end

    async def windowed(
        request: Request,
        run_id: str,
        read: Callable[[RunIndex, float, float, int], dict[str, Any]],
    ) -> JSONResponse:
        """A window's answer: its bounds (the whole run by default) and pixel width checked,
        then ``read(index, start, end, width)`` in a thread, with whether the run is live."""
        try:
            asked_start, asked_end, width = window_params(request)
            folder, final = await open_index(run_id)
            start, end = await asyncio.to_thread(whole_run, folder, asked_start, asked_end)
        except _Invalid as exc:
            return _invalid(exc.errors)
        except _NotFound:
            return not_found(run_id)
        except _Unavailable as exc:
            return unavailable(exc)

        def answer() -> dict[str, Any]:
            with RunIndex(folder) as index:
                return read(index, start, end, width) | {"live": not final}

        return JSONResponse(await asyncio.to_thread(answer))

    @router.get(
        "/api/runs/{run_id}/timeline",
        summary="A run's timeline for a window", response_model=runs_models.Timeline,
        responses={404: _NOT_FOUND, 422: _INVALID, 503: _UNAVAILABLE},
        openapi_extra=_parameters("from", "to", "width"),
    )  # fmt: skip
    async def timeline(request: Request, run_id: str) -> JSONResponse:
        """The exchanges of a window (the whole run by default) as bars, or as counts per
        lane, outcome and bucket of a few pixels when there are too many to draw."""
        return await windowed(
            request,
            run_id,
            lambda index, start, end, width: (
                index.timeline(start, end, width) | {"outcomes": list(OUTCOMES)}
            ),
        )

    @router.get(
        "/api/runs/{run_id}/charts",
        summary="A run's chart series for a window", response_model=runs_models.Charts,
        responses={404: _NOT_FOUND, 422: _INVALID, 503: _UNAVAILABLE},
        openapi_extra=_parameters("from", "to", "width"),
    )  # fmt: skip
    async def charts(request: Request, run_id: str) -> JSONResponse:
        """Round trip per client, rates per second and server delays over a window."""
        return await windowed(request, run_id, RunIndex.charts)

    @router.get(
        "/api/runs/{run_id}/lines/{name}",
        summary="The log lines around a cited line", response_model=runs_models.CitedLines,
        responses={404: _NOT_FOUND, 422: _INVALID, 503: _UNAVAILABLE},
        openapi_extra=_parameters("line", "context"),
    )  # fmt: skip
    async def lines(request: Request, run_id: str, name: str) -> JSONResponse:
        """A log line with its neighbours, and the exchange it records: where a checker's
        finding points."""
        query = _Query(request)
        line = query.integer("line", 1, 2**62)
        context = query.integer("context", 0, 100, 3)
        if line is None and not query.errors:
            query.errors.append(("line", "is required: the line number, from 1"))
        try:
            query.check()
            folder, _final = await open_index(run_id)
        except _Invalid as exc:
            return _invalid(exc.errors)
        except _NotFound:
            return not_found(run_id)
        except _Unavailable as exc:
            return unavailable(exc)
        assert line is not None
        assert context is not None
        if name not in log_names(folder) or not name.endswith(".log"):
            return JSONResponse({"detail": f"no log {name!r} in run {run_id!r}"}, 404)

        def read() -> dict[str, Any]:
            with RunIndex(folder) as index:
                row = index.exchange_at_line(name, line)
                return {
                    "file": name,
                    "line": line,
                    "lines": index.read_lines(name, line, context, context),
                    "exchange": exchange_json(row) if row is not None else None,
                }

        return JSONResponse(await asyncio.to_thread(read))

    @router.get(
        "/api/runs/{run_id}/export.zip",
        summary="A whole run as a zip", response_model=None, response_class=_Zip,
        responses={**runs_models.binary("application/zip", "The run folder, zipped."),
                   404: _NOT_FOUND},
    )  # fmt: skip
    async def export(run_id: str) -> Response:
        """The whole run as one zip: its logs, each process's stdout and stderr, run.json."""
        folder = run_folder(runs_dir, run_id)
        if folder is None:
            return not_found(run_id)
        return _Zip(
            _zip(folder, run_id),
            headers={"content-disposition": f'attachment; filename="{run_id}.zip"'},
        )

    @router.get(
        "/api/compare",
        summary='Two or more runs compared', response_model=runs_models.Comparison,
        responses={404: _NOT_FOUND, 422: _INVALID, 503: _UNAVAILABLE},
        openapi_extra=_parameters("ids"),
    )  # fmt: skip
    async def compare(request: Request) -> JSONResponse:
        """Runs side by side: settings and totals with the differences named, round-trip
        distributions and request rates."""
        query = _Query(request)
        ids = [part.strip() for part in (query.text("ids") or "").split(",") if part.strip()]
        if len(ids) < 2:
            query.errors.append(("ids", "must name at least two runs, comma-separated"))
        elif len(ids) > _MAX_COMPARE:
            query.errors.append(("ids", f"at most {_MAX_COMPARE} runs, got {len(ids)}"))
        elif len(set(ids)) != len(ids):
            query.errors.append(("ids", "names a run twice"))
        try:
            query.check()
            folders = [await open_index(run_id) for run_id in ids]
            descriptions = [await asyncio.to_thread(indexes.describe, i) for i in ids]
        except _Invalid as exc:
            return _invalid(exc.errors)
        except _NotFound as exc:
            return not_found(str(exc))
        except _Unavailable as exc:
            return unavailable(exc)

        def read() -> dict[str, Any]:
            runs: list[dict[str, Any]] = []
            for run_id, (folder, _final), description in zip(ids, folders, descriptions,
                                                              strict=True):  # fmt: skip
                with RunIndex(folder) as index:
                    check = description.get("check")
                    runs.append(
                        {
                            "id": run_id,
                            "state": description.get("state"),
                            "elapsed": description.get("elapsed"),
                            "settings": description.get("settings"),
                            "check": None if not check else check["ok"],
                            "totals": _totals(index.counters()),
                            "round_trip_ms": index.round_trip_stats(),
                            "cdf": index.cdf(),
                            "rates": index.rates_series(),
                        }
                    )
            differences: dict[str, list[str]] = {}
            for part in ("settings", "totals"):
                values: list[dict[str, Any]] = [run[part] or {} for run in runs]
                keys = sorted({key for value in values for key in value})
                differences[part] = [
                    key for key in keys if len({json.dumps(v.get(key)) for v in values}) > 1
                ]
            return {"runs": runs, "differences": differences}

        return JSONResponse(await asyncio.to_thread(read))

    return router


def _html(text: str) -> str:
    return html.escape(text, quote=True)


def _script(data: Any) -> str:
    """JSON safe to embed in a <script> element."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
