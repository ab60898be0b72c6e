"""The shapes of the run API's JSON (:mod:`app.runs_api`), as pydantic models.

Like :mod:`app.models`, they document and do not sit in the path of a request: the
routes return their JSON as they build it, these feed ``/openapi.json``, and the tests
validate real responses against them, so a field cannot change without its model.
Times are seconds since the epoch unless a field says otherwise.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import models

__all__ = [
    "Charts",
    "CitedLines",
    "Comparison",
    "ExchangePage",
    "Overview",
    "RunExchange",
    "Timeline",
    "binary",
]

Outcome = Literal["answered", "timed out", "ignored", "late", "keepalive"]
_FROM = "Start of the window."


class _Model(BaseModel):
    # Every field is listed: an undocumented field in a response is a bug the tests catch.
    model_config = ConfigDict(extra="forbid")


def binary(media_type: str, description: str) -> dict[Any, Any]:
    """A successful response that is a file, not JSON."""
    schema = {"type": "string", "format": "binary"}
    return {200: {"description": description, "content": {media_type: {"schema": schema}}}}


# -- exchanges ----------------------------------------------------------------------------


class ExchangeTimes(_Model):
    """The four instants of an exchange; null where a side did not log it."""

    client_sent: float | None = Field(description="The client sent the request.")
    server_received: float | None = Field(description="The request reached the server.")
    server_sent: float | None = Field(
        description="The server sent its answer (or the keepalive); null if it ignored it."
    )
    client_done: float | None = Field(
        description="The answer reached the client, or the client gave up (timed out)."
    )


class WireLines(_Model):
    """The lines that crossed the wire, byte for byte without their line end."""

    request: str | None = Field(description='Client to server, "[8] PING".')
    response: str | None = Field(
        description='Server to client, "[21/8] PONG (2)" or "[21] keepalive"; null if none.'
    )


class LogLine(_Model):
    file: str = Field(description='"server.log" or "clientK.log".')
    line: int = Field(description="Its line number, from 1.")
    text: str | None = Field(
        default=None, description="The line as the log has it (in a page of exchanges)."
    )


class LogLines(_Model):
    """Where each side recorded the exchange; null where it did not."""

    client: LogLine | None
    server: LogLine | None


class RunExchange(_Model):
    """One exchange, both logs joined: a request and what became of it, a keepalive copy,
    a late PONG, or what only the server logged."""

    id: int = Field(description="Its row in the run's index; with t, it orders exchanges.")
    t: float = Field(description="Its earliest instant: the order of the table and timeline.")
    client: int | None = Field(
        description="The client log's number; null when no client logged it (yet)."
    )
    outcome: Outcome = Field(
        description="answered; timed out (the server ignored it); ignored (no client has "
        "timed it out, yet); late (a PONG after its timeout); keepalive."
    )
    request: int | None
    response: int | None
    peer: int | None = Field(description="The client number a PONG carries.")
    times: ExchangeTimes
    round_trip_ms: int | None = Field(description="client_done − client_sent, if answered.")
    delay_ms: int | None = Field(description="server_sent − server_received, if answered.")
    wire: WireLines
    log: LogLines


class ExchangePage(_Model):
    """A page of exchanges in time order."""

    exchanges: list[RunExchange]
    total: int = Field(description="How many exchanges match the filter, in all.")
    next: str | None = Field(description="The cursor of the next page; null on the last.")
    prev: str | None = Field(description="The cursor of the previous page; null on the first.")
    limit: int
    live: bool = Field(description="The run is still going: totals will grow.")


# -- the run and its index ----------------------------------------------------------------


class BadLine(_Model):
    file: str
    line: int
    reason: str


class FileProgress(_Model):
    lines: int = Field(description="Lines indexed.")
    bytes: int = Field(description="Bytes indexed.")
    size: int = Field(description="The file's size now.")


class IndexState(_Model):
    """What the index holds of the logs, and what it could not read."""

    complete: bool = Field(description="The run has ended and every line is in.")
    first: float | None = Field(description="The earliest instant logged.")
    last: float | None = Field(description="The latest instant logged.")
    files: dict[str, FileProgress]
    lines: int
    bad_lines: list[BadLine] = Field(description="The first 100 lines that did not parse.")
    bad_lines_total: int
    problems: list[str] = Field(description="Missing logs, repeated response numbers …")


class Overview(_Model):
    """A run: its run.json (or the app's view of it while it goes), its index, its totals."""

    run: models.StoredRun | models.UnreadableRun
    live: bool
    index: IndexState
    counters: models.LiveCounters
    clients: list[int] = Field(description="The numbers of the client logs: one lane each.")


# -- timeline and charts ----------------------------------------------------------------

_MS_AFTER_BASE = "Whole milliseconds after base, one per bar; null where not logged."


class Bars(_Model):
    """One entry per bar, column by column."""

    id: list[int]
    client: list[int | None]
    outcome: list[int] = Field(description="Index into outcomes.")
    request: list[int | None]
    response: list[int | None]
    peer: list[int | None]
    client_sent: list[int | None] = Field(description=_MS_AFTER_BASE)
    server_received: list[int | None] = Field(description=_MS_AFTER_BASE)
    server_sent: list[int | None] = Field(description=_MS_AFTER_BASE)
    client_done: list[int | None] = Field(description=_MS_AFTER_BASE)
    t: list[int] = Field(description=_MS_AFTER_BASE)


class TimelineBars(_Model):
    """Every exchange overlapping the window, as a bar."""

    mode: Literal["bars"]
    from_: float = Field(alias="from", description=_FROM)
    to: float
    width: int = Field(description="Pixels asked for.")
    base: int = Field(description="A whole second; bar times are milliseconds after it.")
    count: int
    bars: Bars
    live: bool
    outcomes: list[Outcome]


class TimelineCounts(_Model):
    """Too many exchanges for bars: counts per lane, outcome and bucket."""

    mode: Literal["counts"]
    from_: float = Field(alias="from", description="Start of the first bucket.")
    to: float
    width: int = Field(description="How many buckets.")
    bucket: float = Field(description="Seconds per bucket.")
    count: int
    counts: dict[str, dict[Outcome, list[int]]] = Field(
        description='Lane (the client\'s number, or "server" for what no client logged) → '
        "outcome → count per bucket."
    )
    live: bool
    outcomes: list[Outcome]


Timeline = Annotated[TimelineBars | TimelineCounts, Field(discriminator="mode")]


class Charts(_Model):
    """The three charts over a window, at most one point per pixel."""

    from_: float = Field(alias="from", description=_FROM)
    to: float
    width: int
    clients: list[int]
    round_trips: dict[str, list[tuple[float, float]]] = Field(
        description="Client → [time, average round trip in ms] per bucket."
    )
    rate_step_s: int = Field(description="Seconds per rate bucket.")
    rates: list[models.Rate]
    delays: models.Delays = Field(description="Delays of the answers sent in the window.")
    live: bool


# -- lines and comparison ----------------------------------------------------------------


class NumberedLine(_Model):
    line: int
    text: str


class CitedLines(_Model):
    """A log line (a finding cites it) with its neighbours, and the exchange it records."""

    file: str
    line: int
    lines: list[NumberedLine]
    exchange: RunExchange | None


class CompareTotals(_Model):
    requests: int
    answered: int
    ignored: int
    ignored_pct: float
    timed_out: int
    late: int
    keepalives: int
    bad_lines: int


class ComparedRun(_Model):
    id: str
    state: str | None
    elapsed: float | None
    settings: dict[str, Any] | None
    check: bool | None = Field(description="The checker's verdict; null if not checked.")
    totals: CompareTotals
    round_trip_ms: models.RoundTripStats | None = Field(description="All clients together.")
    cdf: list[tuple[float, float]] = Field(description="[ms, share of round trips ≤ ms].")
    rates: list[tuple[float, int, int]] = Field(
        description="[seconds from the run's first instant, requests, answered] per step."
    )


class Differences(_Model):
    settings: list[str] = Field(description="Settings whose values differ between the runs.")
    totals: list[str] = Field(description="Totals that differ.")


class Comparison(_Model):
    runs: list[ComparedRun]
    differences: Differences
