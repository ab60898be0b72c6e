"""``pingpong check RUN_DIR``: verify a run's logs against every rule they can show.

Each rule yields findings (one per violation, naming file and line); the run
passes when none does. Timing rules allow ``slack_ms`` (default
:data:`DEFAULT_SLACK_MS`) on either side, for scheduling lateness and the
millisecond truncation of the logs. A run that fails on timing rules only (timers
that fired late on a busy machine) is said to: :func:`verdict` names the worst
lateness and a slack that would allow it.

The rules themselves, and what each one checks, are in :mod:`pingpong.checking.rules`.

Settings come from ``run.json`` when present, else the defaults.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.runfolder import SERVER_LOG, RunFolder
from ..core.settings import RunSettings
from ..core.words import counted
from .rules import Rule, Rules
from .runlogs import RunLogs, TimerLateness, load_run

__all__ = [
    "DEFAULT_SLACK_MS",
    "CheckReport",
    "Rule",
    "check_cli",
    "check_logs",
    "check_run",
    "parse_slack",
    "verdict",
]

DEFAULT_SLACK_MS = 20.0
_SHOWN = 20  # findings printed per rule
SLACK_MESSAGE = "must be a number of milliseconds, 0 or more"


def parse_slack(text: str) -> float:
    """``--slack-ms``: a finite number of milliseconds, 0 or more; :class:`ValueError` else."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(SLACK_MESSAGE) from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(SLACK_MESSAGE)
    return value


@dataclass
class CheckReport:
    folder: Path
    slack_ms: float
    rules: list[Rule]
    notes: list[str] = field(default_factory=list)
    server_lateness: TimerLateness = field(default_factory=TimerLateness)

    @property
    def ok(self) -> bool:
        return all(rule.ok for rule in self.rules)

    @property
    def timing_only(self) -> bool:
        """It failed, and on timing rules only."""
        return not self.ok and all(rule.timing for rule in self.rules if not rule.ok)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "timing_only": self.timing_only,
            "slack_ms": self.slack_ms,
            "server_lateness_ms": {
                "answers": self.server_lateness.answers_ms,
                "keepalives": self.server_lateness.keepalives_ms,
            },
            "notes": self.notes,
            "rules": [
                {
                    "name": r.name,
                    "kind": "timing" if r.timing else "protocol",
                    "ok": r.ok,
                    "checked": r.checked,
                    "findings": r.findings[:100],
                    "findings_total": len(r.findings),
                    "late_ms": round(r.late_ms, 1),
                    "notes": r.notes,
                }
                for r in self.rules
            ],
        }

    def format(self) -> str:
        lines = [f"check {self.folder}: {verdict(self.to_json())}"]
        lines += [f"  note: {note}" for note in self.notes]
        for rule in self.rules:
            name = f"{rule.name} (timing)" if rule.timing else rule.name
            lines.append(f"  {'ok  ' if rule.ok else 'FAIL'}  {name:<26} {rule.checked} checked")
            lines += [f"          note: {note}" for note in rule.notes]
            lines += [f"          {finding}" for finding in rule.findings[:_SHOWN]]
            if len(rule.findings) > _SHOWN:
                lines.append(f"          … and {len(rule.findings) - _SHOWN} more")
        return "\n".join(lines)


def verdict(check: dict[str, Any]) -> str:
    """``PASS``, or ``FAIL (…)`` saying what kind of findings there are, of a check's JSON.

    A failure on timing rules only says how late the timers were and what slack would
    allow it: ``FAIL (timing only: 2 findings, timers up to 39 ms late; the slack is
    20 ms — on a busy machine try --slack-ms 50)``.
    """
    if check["ok"]:
        return "PASS"
    rules = check["rules"]
    if not all("kind" in r for r in rules):  # a run.json from before rules had a kind
        return f"FAIL ({counted(sum(r['findings_total'] for r in rules), 'finding')})"
    timing = sum(r["findings_total"] for r in rules if r["kind"] == "timing")
    protocol = sum(r["findings_total"] for r in rules if r["kind"] != "timing")
    if protocol and timing:
        return (
            f"FAIL ({counted(protocol, 'protocol finding')}, {counted(timing, 'timing finding')})"
        )
    if protocol:
        return f"FAIL ({counted(protocol, 'protocol finding')})"
    late = max(r["late_ms"] for r in rules)
    slack = check["slack_ms"]
    suggested = math.ceil(late / 10) * 10 + 10
    return (
        f"FAIL (timing only: {counted(timing, 'finding')}, timers up to {late:.0f} ms late; "
        f"the slack is {slack:g} ms — on a busy machine try --slack-ms {suggested})"
    )


def check_run(
    folder: Path, slack_ms: float | None = None, settings: RunSettings | None = None
) -> CheckReport:
    """Check the run in ``folder``; ``settings`` overrides those of ``run.json``."""
    return check_logs(load_run(folder), slack_ms, settings)


def check_logs(
    logs: RunLogs, slack_ms: float | None = None, settings: RunSettings | None = None
) -> CheckReport:
    """Check a loaded run; ``settings`` overrides those of its ``run.json``."""
    folder = logs.folder
    notes: list[str] = []
    if settings is None:
        settings = logs.settings
    if settings is None:
        settings = RunSettings()
        notes.append("no valid run.json: checked against the default settings")
    slack = DEFAULT_SLACK_MS if slack_ms is None else slack_ms
    rules = Rules(logs, settings, slack).run()
    return CheckReport(folder, slack, rules, notes, logs.server_lateness)


def check_cli(folder: Path, slack_ms: float | None) -> int:
    """``pingpong check``: 0 if every rule holds, 1 for findings, 2 for nothing to check."""
    problem = _not_a_run(folder)
    if problem is not None:
        print(f"pingpong check: error: {problem}", file=sys.stderr)
        return 2
    report = check_run(folder, slack_ms)
    print(report.format())
    return 0 if report.ok else 1


def _not_a_run(folder: Path) -> str | None:
    """Why ``folder`` holds nothing to check, or ``None``."""
    files = RunFolder(folder)
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if files.server_log.exists():
        return None
    if files.run_json.exists():
        return f"{folder} has no {SERVER_LOG}: its server never logged anything"
    return f"{folder} is not a run folder (no {SERVER_LOG})"
