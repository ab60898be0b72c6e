"""Load a run folder: its settings from ``run.json`` and every log parsed, line by line.

Shared by the checker and the summary. A line that does not parse is kept as a
:class:`BadLine` (file, line number, reason) rather than raised, so that one bad
line costs one finding, not the whole report. A last line without its line end is
torn (a write cut short): it is reported as such and never parsed, even when its
bytes would happen to make a record.

It also reads, from ``server.err``, how late the server measured its own timers
(:class:`TimerLateness`): the checker allows that much on the rules about them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from .logformat import (
    ClientRecord,
    LogFormatError,
    ServerRecord,
    parse_client_line,
    parse_server_line,
)
from .runfolder import (
    RUN_JSON,
    SERVER_LOG,
    SERVER_ROLE,
    RunFolder,
    client_log_name,
    client_log_number,
)
from .settings import RunSettings, SettingsErrors

__all__ = [
    "BadLine",
    "Line",
    "RunLogs",
    "TimerLateness",
    "client_log_number",
    "load_run",
    "parse_lateness",
    "read_lateness",
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
class TimerLateness:
    """How late the server measured its own timers, at most, in ms; ``None``: not known.

    The server writes ``server: answer lateness p50 … p99 … max 38.87 ms (n=…)`` and the
    same for keepalive rounds on stderr when it stops (:mod:`pingpong.lateness`). A
    server that was killed wrote neither.
    """

    answers_ms: float | None = None
    keepalives_ms: float | None = None


# Only the kind and the maximum matter; the rest of the line may change.
_LATENESS = re.compile(r"\b(answer|keepalive) lateness\b[^\n]*?\bmax (\d+(?:\.\d+)?) ms\b")
_LATENESS_TAIL = 64 * 1024  # the lines come last; a long stderr is read from its end


def parse_lateness(text: str) -> TimerLateness:
    """The lateness lines of a server's stderr (the largest of each kind); anything else,
    including a cut or garbled line, is passed over."""
    found: dict[str, float] = {}
    for kind, value in _LATENESS.findall(text):
        found[kind] = max(found.get(kind, 0.0), float(value))
    return TimerLateness(found.get("answer"), found.get("keepalive"))


def read_lateness(path: Path) -> TimerLateness:
    """:func:`parse_lateness` of the end of ``path``; nothing known if it cannot be read."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - _LATENESS_TAIL))
            return parse_lateness(file.read().decode("utf-8", errors="replace"))
    except OSError:
        return TimerLateness()


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


def _read(path: Path, parse: Callable[[str], R], into: list[Line[R]], bad: list[BadLine]) -> None:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        torn = len(data) - data.rfind(b"\n") - 1
        reason = f"torn last line: {torn} bytes without a line end (a write cut short); not read"
        bad.append(BadLine(path.name, data.count(b"\n") + 1, reason))
        data = data[: data.rfind(b"\n") + 1]
    for number, raw in enumerate(data.split(b"\n")[:-1], start=1):
        try:
            text = raw.decode("utf-8")
            if text.endswith("\r"):
                raise LogFormatError("\\r\\n line end; logs end lines with \\n only")
            into.append(Line(path.name, number, parse(text)))
        except UnicodeDecodeError:
            bad.append(BadLine(path.name, number, "not UTF-8"))
        except LogFormatError as exc:
            bad.append(BadLine(path.name, number, str(exc)))


def load_run(folder: Path) -> RunLogs:
    meta: dict[str, Any] = {}
    settings: RunSettings | None = None
    problems: list[str] = []
    files = RunFolder(folder)
    meta_path = files.run_json
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            settings = RunSettings.from_json(meta.get("settings", {}))
        except (ValueError, AttributeError) as exc:
            problems.append(f"{RUN_JSON}: {exc}")
            if isinstance(exc, SettingsErrors):
                settings = None
    logs = RunLogs(folder, settings, meta, problems=problems)
    logs.server_lateness = read_lateness(files.stderr(SERVER_ROLE))
    if files.server_log.exists():
        _read(files.server_log, parse_server_line, logs.server, logs.bad_lines)
    else:
        problems.append(f"{SERVER_LOG} is missing")
    for number, path in files.client_logs().items():
        logs.clients[number] = []
        _read(path, parse_client_line, logs.clients[number], logs.bad_lines)
    if not logs.clients:
        problems.append("no client log (clientN.log)")
    expected = settings.clients if settings is not None else None
    if expected is not None:
        missing = [n for n in range(1, expected + 1) if n not in logs.clients]
        if missing:
            problems.append("missing client logs: " + ", ".join(map(client_log_name, missing)))
    return logs
