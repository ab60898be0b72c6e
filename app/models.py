"""The shapes of the dashboard's HTTP API and WebSocket messages, as pydantic models.

They document; they do not sit in the path of a request. The routes build their JSON
as before and return it as it is (``POST /api/start`` keeps its own validation and its
messages, shared with the command line), and the models feed ``/openapi.json`` and
the WebSocket's JSON Schema (:data:`WS_SCHEMA_PATH`). The tests validate real
responses and messages against them, so a field cannot change without its model.

:class:`RunSettings` is made from :class:`pingpong.settings.RunSettings` itself:
the same field names and defaults, with the bounds of :mod:`pingpong.settings`.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from pingpong import settings as _settings

__all__ = [
    "WS_SCHEMA_PATH",
    "AppState",
    "CheckResult",
    "ClientTotals",
    "Delays",
    "Error",
    "Exchange",
    "Live",
    "LiveCounters",
    "LiveServer",
    "Process",
    "Rate",
    "RoundTripStats",
    "RuleResult",
    "Run",
    "RunSettings",
    "Snapshot",
    "Status",
    "StoredRun",
    "Summary",
    "UnreadableRun",
    "Update",
    "ValidationErrors",
    "WsMessage",
    "json_error",
    "keep_null_defaults",
    "settings_request_body",
    "ws_schema",
]

#: Where the app serves the JSON Schema of its WebSocket messages.
WS_SCHEMA_PATH = "/api/schema/ws.json"


class _Model(BaseModel):
    # Every field is listed: an undocumented field in a response is a bug the tests catch.
    model_config = ConfigDict(extra="forbid")


# -- settings -----------------------------------------------------------------------


def _ms_pair(minimum: int) -> Any:
    bound = Annotated[int, Field(ge=minimum, le=_settings.MAX_MS)]
    return Annotated[list[bound], Field(min_length=2, max_length=2)]


# Per setting: its JSON type and what it means. Names, defaults and bounds come from
# pingpong.settings; a setting missing here (or one too many) fails at import.
_SETTINGS: dict[str, tuple[Any, dict[str, Any]]] = {
    "clients": (
        int,
        {
            "ge": 1,
            "le": _settings.MAX_CLIENTS,
            "description": "Client processes; client K is the K-th to connect.",
        },
    ),
    "duration": (
        float,
        {
            "ge": 1,
            "le": _settings.MAX_DURATION_S,
            "description": "Seconds the run lasts, counted from its server listening; "
            "then the graceful stop.",
        },
    ),
    "interval_ms": (
        _ms_pair(_settings.MIN_INTERVAL_MS),
        {
            "description": f"[min, max] ms, min <= max: each client sends a request every "
            f"interval drawn uniformly from this range, start to start "
            f"({_settings.MIN_INTERVAL_MS} <= min <= max <= {_settings.MAX_MS}).",
        },
    ),
    "delay_ms": (
        _ms_pair(0),
        {
            "description": f"[min, max] ms, min <= max: the server answers each request it "
            f"does not ignore after a delay drawn uniformly from this range "
            f"(0 <= min <= max <= {_settings.MAX_MS}).",
        },
    ),
    "ignore": (
        float,
        {"ge": 0, "le": 1, "description": "Probability that the server ignores a request."},
    ),
    "keepalive_s": (
        float,
        {
            "ge": 0.1,
            "le": 3600,
            "description": "Seconds between the server's keepalive rounds, on a fixed grid "
            "from its start.",
        },
    ),
    "timeout_ms": (
        int,
        {
            "ge": 1,
            "le": _settings.MAX_TIMEOUT_MS,
            "description": "Milliseconds a client waits for an answer before the request "
            "times out; must be greater than the maximum of delay_ms.",
        },
    ),
    "seed": (
        int | None,
        {
            "description": "Makes every random choice repeatable: the server uses it, "
            "client K uses seed + K. null: random.",
        },
    ),
    "host": (
        str,
        {"min_length": 1, "description": "Address the run's server listens on."},
    ),
    "port": (
        int,
        {
            "ge": 0,
            "le": 65535,
            "description": "Port the run's server listens on; 0 lets the OS pick a free one.",
        },
    ),
}


def _settings_model() -> type[BaseModel]:
    names = [f.name for f in dataclasses.fields(_settings.RunSettings)]
    if sorted(names) != sorted(_SETTINGS):
        raise RuntimeError(f"app.models documents {sorted(_SETTINGS)}, the settings are {names}")
    defaults = _settings.RunSettings().to_json()
    fields: dict[str, Any] = {
        name: (_SETTINGS[name][0], Field(default=defaults[name], **_SETTINGS[name][1]))
        for name in names
    }
    return create_model(
        "RunSettings",
        __config__=ConfigDict(
            extra="forbid",
            title="RunSettings",
            json_schema_extra={"description": "The settings of a run; every field is optional."},
        ),
        __module__=__name__,
        **fields,
    )


RunSettings: type[BaseModel] = _settings_model()


def settings_request_body() -> dict[str, Any]:
    """``openapi_extra`` of ``POST /api/start``: the JSON body it reads itself."""
    return {
        "requestBody": {
            "required": False,
            "description": "The run's settings; an empty body or {} starts one with the "
            "defaults. Every invalid field is reported at once (422).",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/RunSettings"}}
            },
        }
    }


def keep_null_defaults(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document keep ``"default": null`` (``seed``).

    FastAPI leaves out every null of the document, defaults included, so a setting
    whose default is null would seem to have none.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        properties = document["components"]["schemas"]["RunSettings"]["properties"]
        for name, field in RunSettings.model_fields.items():
            if field.default is None:
                properties[name]["default"] = None
        return document

    app.openapi = openapi  # type: ignore[method-assign]


# -- errors -------------------------------------------------------------------------


class Error(_Model):
    """An error with one message (404, 409)."""

    detail: str = Field(description="What went wrong.")


def json_error(description: str) -> dict[str, Any]:
    """An :class:`Error` response of a route whose success is not JSON."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


class FieldError(_Model):
    loc: list[str] = Field(
        description='["body", field] for a bad setting; ["body"] when the body is not '
        "a JSON object."
    )
    msg: str = Field(description="The message, in the words the command line uses too.")
    type: str = Field(description="value_error, json or type.")


class ValidationErrors(_Model):
    """Invalid settings (422): one entry per invalid field."""

    detail: list[FieldError]


# -- runs ---------------------------------------------------------------------------

AppState = Literal["idle", "starting", "running", "stopping", "finished", "failed"]
RunState = Literal["starting", "running", "stopping", "finished", "failed"]
_TIME = "Local time, ISO 8601 with milliseconds and no offset"


class Process(_Model):
    role: str = Field(description='"server" or "clientK".')
    pid: int | None = Field(description="null until it has started.")
    state: Literal["starting", "running", "exited"]
    exit_code: int | None = Field(description="null until it has exited.")
    killed: bool = Field(description="It overstayed its graceful stop and was killed.")


class RoundTripStats(_Model):
    """Round trips in milliseconds; percentiles by nearest rank."""

    min: float
    avg: float
    p50: float
    p95: float
    max: float


class ClientTotals(_Model):
    client: int = Field(description="The client's number.")
    sent: int = Field(description="Requests with an outcome in its log: answered + timed_out.")
    answered: int
    timed_out: int
    late: int = Field(description="PONGs that came after their request had timed out.")
    keepalives: int
    round_trip_ms: RoundTripStats | None = Field(description="null before the first answer.")


class ServerTotals(_Model):
    requests: int = Field(description="answered + ignored.")
    answered: int
    ignored: int
    ignored_pct: float = Field(description="ignored as a percentage of requests.")
    keepalives: int
    last_response: int | None = Field(description="The last response number; null before one.")


class Summary(_Model):
    """A run's totals, counted from its logs once it ended."""

    server: ServerTotals
    clients: list[ClientTotals]


class RuleResult(_Model):
    name: str
    ok: bool
    checked: int = Field(description="How many things the rule looked at.")
    findings: list[str] = Field(description="The first 100 violations, each naming file and line.")
    findings_total: int


class CheckResult(_Model):
    """The checker's verdict on a run's logs."""

    ok: bool = Field(description="Every rule holds.")
    slack_ms: float = Field(description="Tolerance of the timing rules.")
    notes: list[str]
    rules: list[RuleResult]


class _RunFields(_Model):
    id: str = Field(description="The run's folder name, YYYY-MM-DD_HH-MM-SS[-K].")
    stopped_by: str | None = Field(
        description="deadline, stop, app shutdown, failure or signal (…); null while it runs."
    )
    error: str | None = Field(
        description="Why the run failed (a process's exit code and the tail of its stderr)."
    )
    settings: RunSettings  # type: ignore[valid-type]
    started_at: str = Field(description=f"{_TIME}.")
    listening_at: str | None = Field(description=f"When the server listened; {_TIME}.")
    ended_at: str | None = Field(description=f"{_TIME}; null while the run is active.")
    elapsed: float = Field(description="Seconds since the server listened.")
    address: str | None = Field(description="host:port of the run's server.")
    processes: list[Process]
    summary: Summary | None = Field(description="null until the run ended.")
    check: CheckResult | None = Field(description="null until the run ended.")


class Run(_RunFields):
    """The dashboard's current or last run."""

    state: RunState
    remaining: float = Field(description="Seconds left until the deadline; 0 once stopping.")
    connected: list[int] = Field(description="Numbers of the clients connected now.")


class StoredRun(_RunFields):
    """A run in the runs folder (its run.json), the CLI's too."""

    state: RunState
    logs: list[str] = Field(description="Its files GET /api/runs/{id}/logs/{name} serves.")
    remaining: float | None = Field(None, description="Only for the dashboard's current run.")
    connected: list[int] | None = Field(None, description="Only for the dashboard's current run.")


class UnreadableRun(_Model):
    """A run folder whose run.json cannot be read (a run starting, or a crashed writer)."""

    id: str
    state: Literal["unknown"]
    logs: list[str]


# -- live state ---------------------------------------------------------------------


class LiveServer(ServerTotals):
    bad_lines: int = Field(description="Log lines that did not parse.")


class LiveCounters(_Model):
    """The current or last run's counters, from its logs as they grow."""

    server: LiveServer
    clients: list[ClientTotals]


class Status(_Model):
    state: AppState
    run: Run | None = Field(description="The current or last run; null on a fresh app.")
    counters: LiveCounters | None = Field(description="null before the first run.")


class Exchange(_Model):
    id: int = Field(description="Rises by one per exchange; a viewer drops one it has seen.")
    time: str = Field(description="HH:MM:SS.mmm, local time.")
    client: int | None = Field(description="null for an ignored request (the server's log).")
    request: int | None
    response: int | None
    round_trip_ms: float | None
    outcome: Literal["answered", "ignored", "timed out", "keepalive", "late"]


class Rate(_Model):
    """Counts of one second."""

    t: int = Field(description="The second, in seconds since the epoch.")
    requests: int
    answered: int
    ignored: int
    timed_out: int


class Delays(_Model):
    """Histogram of the server's delays: bin i counts [low + i·width, low + (i+1)·width) ms."""

    low: int
    width: int
    counts: list[int]


RoundTripPoint = Annotated[
    tuple[float, float, int],
    Field(description="[epoch seconds, round trip ms, id of its exchange]"),
]


class Live(LiveCounters):
    """A run's traffic: in a snapshot everything kept, in an update only what is new
    (exchanges, round_trips, rates; counters and delays are whole)."""

    exchanges: list[Exchange] = Field(description="Oldest first; at most the latest 200.")
    round_trips: dict[str, list[RoundTripPoint]] = Field(
        description="Per client number: chart points, at most 300."
    )
    rates: list[Rate]
    delays: Delays


class Snapshot(_Model):
    """The first message a viewer gets, and the one after it fell behind."""

    type: Literal["snapshot"]
    seq: int = Field(description="Rises by one with every message the app makes.")
    state: AppState
    run: Run | None
    live: Live | None = Field(description="null before the first run.")
    defaults: RunSettings  # type: ignore[valid-type]


class Update(_Model):
    """What changed; at most 10 a second, at least one a second while a run is active."""

    type: Literal["update"]
    seq: int
    state: AppState
    run: Run | None
    live: Live | None = Field(description="null when the traffic did not change.")


WsMessage = Annotated[Snapshot | Update, Field(discriminator="type")]


def ws_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of every message ``WS /ws`` sends."""
    schema = TypeAdapter(WsMessage).json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": WS_SCHEMA_PATH,
        "title": "pingpong dashboard WebSocket message",
        "description": "Every message WS /ws sends: a snapshot first, then updates.",
        **schema,
    }
