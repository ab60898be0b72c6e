"""The shapes of the dashboard's HTTP API and WebSocket messages, as pydantic models.

They document; they do not sit in the path of a request. The routes build their JSON
as before and return it as it is (``POST /api/start`` keeps its own validation and its
messages, shared with the command line), and the models feed ``/openapi.json`` and
the WebSocket's JSON Schema (:data:`WS_SCHEMA_PATH`). The tests validate real
responses and messages against them, so a field cannot change without its model.

:class:`RunSettings` is made from ``pingpong.core.settings.RUN``, the one description of a
run's settings that the command line, the API's validation and the page's form use too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from pingpong.core import settings as _settings
from pingpong.core import states as _states
from pingpong.core.settings import Setting

from .live import Outcome as _Outcome

__all__ = [
    "WS_SCHEMA_PATH",
    "AppState",
    "Attributed",
    "CheckResult",
    "ClientTotals",
    "Delays",
    "Error",
    "Exchange",
    "Live",
    "LiveCounters",
    "LiveServer",
    "LiveUpdate",
    "Process",
    "Rate",
    "RoundTripStats",
    "RuleDescription",
    "RuleResult",
    "Run",
    "RunSettings",
    "ServerLateness",
    "SettingDescription",
    "SettingsSchema",
    "Snapshot",
    "Status",
    "StoredRun",
    "Summary",
    "TimeZone",
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

_PYTHON_TYPES: dict[str, type] = {"integer": int, "number": float, "string": str}
_UNIT_WORDS = {"ms": "milliseconds", "s": "seconds"}


def _annotation(setting: Setting[Any]) -> Any:
    """The JSON type and bounds of one setting, as pydantic spells them."""
    bounds: dict[str, Any] = {}
    if setting.minimum is not None:
        bounds["ge"] = setting.minimum
    if setting.maximum is not None:
        bounds["le"] = setting.maximum
    if setting.type == "range":
        end = Annotated[int, Field(**bounds)]
        return Annotated[list[end], Field(min_length=2, max_length=2)]
    if setting.type == "string":
        bounds["min_length"] = 1
    python = _PYTHON_TYPES[setting.type]
    one = Annotated[python, Field(**bounds)]  # type: ignore[valid-type]
    return one | None if setting.nullable else one


# What the API adds to a setting's own rules.
_API_NOTES = {
    "host": "The dashboard takes only a name or address that resolves to loopback addresses, "
    f"unless it was started with {_settings.REMOTE_BIND_ENV}=1.",
}


def _description(setting: Setting[Any]) -> str:
    """What a setting means, its unit, what null means, and the rules it is part of."""
    words = [setting.description[:1].upper() + setting.description[1:] + "."]
    if setting.type == "range":
        words.append("A pair [min, max], min not above max.")
    if setting.unit is not None and _UNIT_WORDS[setting.unit] not in setting.description:
        words.append(f"In {_UNIT_WORDS[setting.unit]}.")
    if setting.nullable:
        words.append(f"null: {setting.none}.")
    for rule in _settings.RUN.rules:
        if setting.name in rule.messages:
            message = rule.messages[setting.name]
            words.append(message[:1].upper() + message[1:] + ".")
    if setting.name in _API_NOTES:
        words.append(_API_NOTES[setting.name])
    return " ".join(words)


def _settings_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for setting in _settings.RUN.settings:
        default = setting.default
        if isinstance(default, _settings.MsRange):
            default = [default.low, default.high]
        fields[setting.name] = (
            _annotation(setting),
            Field(default=default, title=setting.label, description=_description(setting)),
        )
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


#: The body of ``POST /api/start``, made from ``pingpong.core.settings.RUN``: its fields in its
#: order, with their defaults, bounds, units and words.
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

# The words come from their enums (pingpong.core.states, app.live); as Literals, the schema
# lists them in place. For mypy they are strings.
if TYPE_CHECKING:
    AppState = str
    RunState = str
    ProcessState = str
    Outcome = str
else:
    AppState = Literal[tuple(state.value for state in _states.RunState)]
    RunState = Literal[
        tuple(state.value for state in _states.RunState if state is not _states.RunState.IDLE)
    ]
    ProcessState = Literal[tuple(state.value for state in _states.ProcessState)]
    Outcome = Literal[tuple(outcome.value for outcome in _Outcome)]
_TIME = "Local time, ISO 8601 with milliseconds and no offset"


class Process(_Model):
    role: str = Field(description='"server" or "clientK".')
    pid: int | None = Field(description="null until it has started.")
    state: ProcessState
    exit_code: int | None = Field(description="null until it has exited.")
    killed: bool = Field(
        description="A kill ended it (it overstayed its graceful stop, or the run was stopped "
        "at once); false for a process that exited on its own before the kill landed."
    )


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
    # Defaults: a run.json written before rules had a kind or notes.
    kind: Literal["protocol", "timing"] = Field(
        "protocol",
        description="timing: about when things happened (delays, intervals, timeouts, "
        "keepalive cadence), which timers firing late on a busy machine can break; "
        "protocol: about what happened, never loosened.",
    )
    ok: bool
    checked: int = Field(description="How many things the rule looked at.")
    findings: list[str] = Field(description="The first 100 violations, each naming file and line.")
    findings_total: int
    late_ms: float = Field(
        0.0, description="A timing rule: how far (ms) its worst finding is past its bound."
    )
    notes: list[str] = Field(
        [], description="What it allowed past the slack, and why (the server's own lateness)."
    )


class ServerLateness(_Model):
    """How late the server measured its own timers, at most (its stderr); null: unknown."""

    answers: float | None = Field(description="ms; allowed on top of the slack for delays.")
    keepalives: float | None = Field(
        description="ms; allowed on top of the slack for the keepalive cadence."
    )


class CheckResult(_Model):
    """The checker's verdict on a run's logs."""

    ok: bool = Field(description="Every rule holds.")
    timing_only: bool = Field(
        False, description="It failed, and on timing rules only (late timers, a busy machine)."
    )
    slack_ms: float = Field(description="Tolerance of the timing rules.")
    server_lateness_ms: ServerLateness | None = Field(
        None, description="How late the server measured its timers; null in older runs."
    )
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
    check_not_run: str | None = Field(
        description="Why the logs were not checked (the server never started)."
    )


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
    t: float = Field(description="The same instant in seconds since the epoch (orders rows).")
    client: int | None = Field(
        description="null for an ignored request until its client's timeout names it."
    )
    request: int | None
    response: int | None
    round_trip_ms: float | None
    outcome: Outcome


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
    """A run's traffic, everything kept (a snapshot's)."""

    exchanges: list[Exchange] = Field(description="Oldest first; at most the latest 200.")
    round_trips: dict[str, list[RoundTripPoint]] = Field(
        description="Per client number: chart points, at most 300."
    )
    rates: list[Rate]
    delays: Delays


class Attributed(_Model):
    """An ignored request's row, already sent, whose client has become known."""

    id: int = Field(description="The exchange's id.")
    client: int


class LiveUpdate(Live):
    """What is new in a run's traffic: exchanges, round_trips and rates hold only what is
    new (a rate's second is resent whole when it changes); counters and delays are whole."""

    attributed: list[Attributed]


class TimeZone(_Model):
    """The zone of the log times (local time of the machine running the processes)."""

    name: str
    utc_offset_s: int
    label: str = Field(description='"UTC", or "UTC+HH:MM".')


class SettingDescription(_Model):
    """One setting as pingpong.core.settings describes it; the page builds its form from these."""

    name: str
    type: Literal["integer", "number", "range", "string"]
    default: Any
    minimum: float | None
    maximum: float | None
    unit: Literal["ms", "s"] | None
    nullable: bool
    none: str = Field(description="What null means, for a nullable setting.")
    label: str
    description: str
    flag: str = Field(description="The command line's option.")
    form: bool = Field(description="Whether the page's form shows it.")
    messages: dict[str, str] = Field(description="What the validation says, by what went wrong.")


class RuleDescription(_Model):
    """A rule between two settings: ``low`` (its max, for a range) below ``high``."""

    kind: Literal["below"]
    low: str
    high: str
    messages: dict[str, str] = Field(
        description="What it says on each of its fields; the other field's value and the "
        "unit follow in brackets: 'must be above the server delay maximum (1000 ms)'."
    )
    unit: str = Field(description="The unit of both fields.")


class SettingsSchema(_Model):
    fields: list[SettingDescription]
    rules: list[RuleDescription]


class Snapshot(_Model):
    """The first message a viewer gets, and the one after it fell behind."""

    type: Literal["snapshot"]
    seq: int = Field(description="Rises by one with every message the app makes.")
    state: AppState
    run: Run | None
    live: Live | None = Field(description="null before the first run.")
    defaults: RunSettings  # type: ignore[valid-type]
    schema_: SettingsSchema = Field(alias="schema", description="The settings' description.")
    active_states: list[RunState] = Field(
        description="The states of an active run: Stop applies, Start gets 409."
    )
    time_zone: TimeZone


class Update(_Model):
    """What changed; at most 10 a second, at least one a second while a run is active."""

    type: Literal["update"]
    seq: int
    state: AppState
    run: Run | None
    live: LiveUpdate | None = Field(description="null when the traffic did not change.")


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
