"""Totals of a finished run, from its logs: what ``pingpong run`` prints and ``run.json`` keeps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.logformat import Answered, Ignored, TimedOut, Unpaired
from ..core.protocol import Keepalive
from ..core.runfolder import client_role
from ..core.states import StoppedBy
from ..core.words import counted
from ..running.process import how_it_ended, signal_name
from .check import verdict
from .runlogs import RunLogs, load_run

__all__ = ["format_summary", "percentile", "round_trip_stats", "summarize", "summarize_logs"]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0–1) of sorted values by nearest rank: the ⌈q·n⌉-th smallest.

    Nearest rank returns a value that occurred, and is what the dashboard's
    fixed-memory histogram computes too, so both show the same figures.
    """
    if not ordered:
        raise ValueError("no values")
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def round_trip_stats(values: Sequence[float]) -> dict[str, float] | None:
    """min/avg/p50/p95/max in ms, or ``None`` without values."""
    if not values:
        return None
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "avg": round(sum(ordered) / len(ordered), 1),
        "p50": percentile(ordered, 0.5),
        "p95": percentile(ordered, 0.95),
        "max": ordered[-1],
    }


def summarize(folder: Path) -> dict[str, Any]:
    """Totals of the run in ``folder``."""
    return summarize_logs(load_run(folder))


def summarize_logs(logs: RunLogs) -> dict[str, Any]:
    """Totals of a loaded run: requests, answers, ignores, timeouts, round trips."""
    answered = sum(1 for line in logs.server if isinstance(line.record, Answered))
    ignored = sum(1 for line in logs.server if isinstance(line.record, Ignored))
    keepalives = sum(1 for line in logs.server if isinstance(line.record, Unpaired))
    numbers = [
        line.record.response.response
        for line in logs.server
        if not isinstance(line.record, Ignored)
    ]
    requests = answered + ignored
    clients = []
    for number, lines in logs.clients.items():
        records = [line.record for line in lines]
        round_trips = [
            round((r.response_time - r.request_time).total_seconds() * 1000)
            for r in records
            if isinstance(r, Answered)
        ]
        clients.append(
            {
                "client": number,
                "sent": sum(1 for r in records if isinstance(r, Answered | TimedOut)),
                "answered": len(round_trips),
                "timed_out": sum(1 for r in records if isinstance(r, TimedOut)),
                "late": sum(
                    1
                    for r in records
                    if isinstance(r, Unpaired) and not isinstance(r.response, Keepalive)
                ),
                "keepalives": sum(
                    1
                    for r in records
                    if isinstance(r, Unpaired) and isinstance(r.response, Keepalive)
                ),
                "round_trip_ms": round_trip_stats(round_trips),
            }
        )
    return {
        "server": {
            "requests": requests,
            "answered": answered,
            "ignored": ignored,
            "ignored_pct": round(100 * ignored / requests, 2) if requests else 0.0,
            "keepalives": keepalives,
            "last_response": max(numbers, default=None),
        },
        "clients": clients,
    }


def _stopped(stopped_by: str) -> str:
    try:
        return StoppedBy(stopped_by).phrase
    except ValueError:  # a word from another version
        return f"stopped by {stopped_by}"


def _ended(process: dict[str, Any]) -> str:
    """How one process ended, for the summary: ``exit 0``, ``killed (SIGKILL)`` …"""
    code = process["exit_code"]
    if process["killed"]:
        name = signal_name(-code) if isinstance(code, int) and code < 0 else None
        return f"killed ({name})" if name else "killed"
    if code is None:
        return "never started" if process.get("pid") is None else "still running"
    if code < 0:
        return how_it_ended(code)  # a signal from someone else
    return f"exit {code}"


def format_summary(run: dict[str, Any]) -> str:
    """The closing report of ``pingpong run``."""
    stopped = "still running" if run["stopped_by"] is None else _stopped(run["stopped_by"])
    lines = [f"run {run['id']}: {run['state']} ({stopped}), {run['elapsed']:.1f} s"]
    if run.get("error"):
        lines.append(f"  error: {run['error']}")
    processes = ", ".join(f"{p['role']} {_ended(p)}" for p in run["processes"])
    if processes:  # a simulated run has none
        lines.append(f"  processes: {processes}")
    summary = run.get("summary")
    if summary:
        server = summary["server"]
        lines.append(
            f"  server: {counted(server['requests'], 'request')}, {server['answered']} answered, "
            f"{server['ignored']} ignored ({server['ignored_pct']:.1f} %), "
            f"{counted(server['keepalives'], 'keepalive')}, "
            f"last response {server['last_response']}"
        )
        for client in summary["clients"]:
            rt = client["round_trip_ms"]
            rt_text = (
                f"round trip ms min {rt['min']:.0f} avg {rt['avg']:.0f} p95 {rt['p95']:.0f} "
                f"max {rt['max']:.0f}"
                if rt
                else "no round trips"
            )
            lines.append(
                f"  {client_role(client['client'])}: {client['sent']} sent, "
                f"{client['answered']} answered, "
                f"{client['timed_out']} timed out, {counted(client['keepalives'], 'keepalive')}; "
                f"{rt_text}"
            )
    check = run.get("check")
    if run.get("check_not_run"):
        lines.append(f"  check: not run ({run['check_not_run']})")
    if check:
        lines.append(f"  check: {verdict(check)}")
        for rule in check["rules"]:
            for note in rule.get("notes", []):
                lines.append(f"    {rule['name']}: {note}")
            for finding in rule["findings"][:5]:
                lines.append(f"    {rule['name']}: {finding}")
    return "\n".join(lines)
