"""Load a run folder: its settings from ``run.json`` and every log parsed, line by line.

Shared by the checker and the summary. A line that does not parse is kept as a
:class:`BadLine` (file, line number, reason) rather than raised, so that one bad
line costs one finding, not the whole report. A last line without its line end is
torn (a write cut short): it is reported as such and never parsed, even when its
bytes would happen to make a record.

It also reads, from ``server.err`` and each ``clientK.err``, how late the server and
each client measured their own timers (:class:`TimerLateness`, :class:`ClientLateness`):
the checker allows that much on the rules about them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from ..core.logformat import (
    ClientRecord,
    LogFormatError,
    ServerRecord,
    parse_client_line,
    parse_server_line,
)
from ..core.runfolder import (
    RUN_JSON,
    SERVER_LOG,
    SERVER_ROLE,
    RunFolder,
    client_log_name,
    client_log_number,
    client_role,
)
from ..core.settings import RunSettings, SettingsErrors, SimulatedRunSettings

__all__ = [
    "BadLine",
    "ClientLateness",
    "Line",
    "Outage",
    "RunLogs",
    "TimerLateness",
    "client_log_number",
    "load_run",
    "parse_client_lateness",
    "parse_lateness",
    "parse_raw",
    "read_client_lateness",
    "read_lateness",
    "torn_reason",
]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Line(Generic[R]):
    """A parsed record and where it came from."""

    file: str
    number: int  # 1-based
    record: R


@dataclass(frozen=True, slots=True)
class BadLine:
    file: str
    number: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.number}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Outage:
    """A stretch of one client's time when what it was owed could be lost or held up.

    A simulated run's ``run.json`` lists them (see :mod:`pingpong.simulation.engine`), with the
    network's latency and jitter: what the network did that the logs cannot show.

    ``lost``: its connection was cut, or closed or no longer read by one side, until
    its next connection was up (``end``; ``None``: never); ``connection`` is the
    server's number for the connection lost, which the server was done with at
    ``closed`` (``None``: not before the end). ``stalled``: it was not reading.
    """

    start: datetime
    end: datetime | None
    kind: str
    connection: int | None = None
    closed: datetime | None = None

    def overlaps(self, start: datetime, end: datetime, margin: float) -> bool:
        """Whether it overlaps ``start``–``end``, ``margin`` seconds either side."""
        if (self.start - end).total_seconds() > margin:
            return False
        return self.end is None or (start - self.end).total_seconds() <= margin

    def loses(self, instant: datetime, margin: float) -> bool:
        """Whether a message sent at ``instant`` on the lost connection was lost with it."""
        if self.connection is None or (self.start - instant).total_seconds() > margin:
            return False
        return self.closed is None or (instant - self.closed).total_seconds() <= margin


def _simulation(meta: dict[str, Any]) -> dict[str, Any]:
    simulation = meta.get("simulation")
    return simulation if isinstance(simulation, dict) else {}


def _outages(meta: dict[str, Any]) -> dict[int, list[Outage]]:
    simulation = _simulation(meta)
    found: dict[int, list[Outage]] = {}

    def instant(text: str | None) -> datetime | None:
        return None if text is None else datetime.fromisoformat(text)

    for log_number, items in dict(simulation.get("outages") or {}).items():
        found[int(log_number)] = [
            Outage(
                datetime.fromisoformat(item["start"]),
                instant(item.get("end")),
                str(item["kind"]),
                None if item.get("connection") is None else int(item["connection"]),
                instant(item.get("closed")),
            )
            for item in items
        ]
    return found


@dataclass(frozen=True, slots=True)
class TimerLateness:
    """How late the server measured its own timers, at most, in ms; ``None``: not known.

    The server writes ``server: answer lateness p50 … p99 … max 38.87 ms (n=…)`` and the
    same for keepalive rounds on stderr when it stops (:mod:`pingpong.core.lateness`). A
    server that was killed wrote neither.
    """

    answers_ms: float | None = None
    keepalives_ms: float | None = None


@dataclass(frozen=True, slots=True)
class ClientLateness:
    """How late a client measured its own timers, at most, in ms; ``None``: not known.

    A client writes ``client: send lateness p50 … p99 … max 12.40 ms (n=…)`` for its
    send timer and the same for its timeout timers on stderr when it stops.
    """

    sends_ms: float | None = None
    timeouts_ms: float | None = None


# Only the kind and the maximum matter; the rest of the line may change.
_LATENESS = re.compile(
    r"\b(answer|keepalive|send|timeout) lateness\b[^\n]*?\bmax (\d+(?:\.\d+)?) ms\b"
)
_LATENESS_TAIL = 64 * 1024  # the lines come last; a long stderr is read from its end


def _maxima(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for kind, value in _LATENESS.findall(text):
        found[kind] = max(found.get(kind, 0.0), float(value))
    return found


def parse_lateness(text: str) -> TimerLateness:
    """The lateness lines of a server's stderr (the largest of each kind); anything else,
    including a cut or garbled line, is passed over."""
    found = _maxima(text)
    return TimerLateness(found.get("answer"), found.get("keepalive"))


def parse_client_lateness(text: str) -> ClientLateness:
    """The lateness lines of a client's stderr, as :func:`parse_lateness` reads a server's."""
    found = _maxima(text)
    return ClientLateness(found.get("send"), found.get("timeout"))


def _tail(path: Path) -> str:
    """The end of ``path``, where the lateness lines are; ``""`` if it cannot be read."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - _LATENESS_TAIL))
            return file.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def read_lateness(path: Path) -> TimerLateness:
    """:func:`parse_lateness` of the end of ``path``; nothing known if it cannot be read."""
    return parse_lateness(_tail(path))


def read_client_lateness(path: Path) -> ClientLateness:
    """:func:`parse_client_lateness` of the end of ``path``; nothing known if unreadable."""
    return parse_client_lateness(_tail(path))


@dataclass
class RunLogs:
    folder: Path
    settings: RunSettings | None  # None: no (valid) run.json
    meta: dict[str, Any]
    server: list[Line[ServerRecord]] = field(default_factory=list)
    clients: dict[int, list[Line[ClientRecord]]] = field(default_factory=dict)
    bad_lines: list[BadLine] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # missing files, unreadable run.json
    server_lateness: TimerLateness = field(default_factory=TimerLateness)
    client_lateness: dict[int, ClientLateness] = field(default_factory=dict)  # by log number
    outages: dict[int, list[Outage]] = field(default_factory=dict)  # by client log number
    network_ms: float = 0.0  # the longest one-way trip of a message (simulated runs)


def torn_reason(length: int) -> str:
    """Why a last line of ``length`` bytes without its line end is not read."""
    return f"torn last line: {length} bytes without a line end (a write cut short); not read"


def parse_raw(raw: bytes, parse: Callable[[str], R]) -> R | str:
    """The record on one line of a log (its bytes, without the ``\\n``), or the reason it
    is not one (a ``str``). The checker and the dashboard's run index read lines with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if text.endswith("\r"):
        return "\\r\\n line end; logs end lines with \\n only"
    try:
        return parse(text)
    except LogFormatError as exc:
        return str(exc)


def _read(path: Path, parse: Callable[[str], R], into: list[Line[R]], bad: list[BadLine]) -> None:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        torn = len(data) - data.rfind(b"\n") - 1
        bad.append(BadLine(path.name, data.count(b"\n") + 1, torn_reason(torn)))
        data = data[: data.rfind(b"\n") + 1]
    for number, raw in enumerate(data.split(b"\n")[:-1], start=1):
        record = parse_raw(raw, parse)
        if isinstance(record, str):
            bad.append(BadLine(path.name, number, record))
        else:
            into.append(Line(path.name, number, record))


def load_run(folder: Path) -> RunLogs:
    meta: dict[str, Any] = {}
    settings: RunSettings | None = None
    problems: list[str] = []
    files = RunFolder(folder)
    meta_path = files.run_json
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            kind = SimulatedRunSettings if meta.get("simulated") is True else RunSettings
            settings = kind.from_json(meta.get("settings", {}))
        except (ValueError, AttributeError) as exc:
            problems.append(f"{RUN_JSON}: {exc}")
            if isinstance(exc, SettingsErrors):
                settings = None
    outages: dict[int, list[Outage]] = {}
    network_ms = 0.0
    try:
        outages = _outages(meta)
        network = _simulation(meta).get("network") or {}
        network_ms = float(network.get("latency_ms", 0)) + float(network.get("jitter_ms", 0))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        problems.append(f"{RUN_JSON}: unreadable simulation: {exc}")
    logs = RunLogs(
        folder, settings, meta, problems=problems, outages=outages, network_ms=network_ms
    )
    logs.server_lateness = read_lateness(files.stderr(SERVER_ROLE))
    if files.server_log.exists():
        _read(files.server_log, parse_server_line, logs.server, logs.bad_lines)
    else:
        problems.append(f"{SERVER_LOG} is missing")
    for number, path in files.client_logs().items():
        logs.clients[number] = []
        logs.client_lateness[number] = read_client_lateness(files.stderr(client_role(number)))
        _read(path, parse_client_line, logs.clients[number], logs.bad_lines)
    if not logs.clients:
        problems.append("no client log (clientN.log)")
    expected = settings.clients if settings is not None else None
    if expected is not None:
        missing = [n for n in range(1, expected + 1) if n not in logs.clients]
        if missing:
            problems.append("missing client logs: " + ", ".join(map(client_log_name, missing)))
    return logs
