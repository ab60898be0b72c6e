"""``pingpong simulate``: a run in virtual time, written as a run folder like any other.

The folder holds what a real run's does, by the same names: ``server.log``,
``clientK.log``, ``server.out`` and ``server.err`` (the server's diagnostics),
``clientK.err`` and ``run.json``, so ``pingpong check`` and the dashboard's history
read it as they read a real run. ``run.json`` adds ``"simulated": true`` and a
``simulation`` object: the network, the faults, each client's outages (which the
checker takes into account), the number of events and the real time it took.

Simulated time runs on a fixed calendar (UTC, no daylight saving) from ``--start``,
2026-01-01 00:00:00 unless told otherwise, so the same seed and options give the
same bytes on any machine, on any day. A run without ``--seed`` draws one and
records it in ``run.json``: every simulated run can be replayed exactly.
"""

from __future__ import annotations

import secrets
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..core.runfolder import RUN_JSON, RunFolderError, prepare_run_folder, write_json
from ..core.session import Calendar
from ..core.settings import SimulatedRunSettings
from ..core.states import RunState, StoppedBy
from .engine import LogFiles, Network, Simulation
from .faults import Fault, fault_to_json

__all__ = ["DEFAULT_START", "pick_seed", "simulate_cli", "simulate_run"]

#: Where simulated time starts unless ``--start`` says otherwise (a fixed instant).
DEFAULT_START = datetime(2026, 1, 1)


def simulate_run(
    settings: SimulatedRunSettings,
    folder: Path,
    *,
    network: Network | None = None,
    faults: list[Fault] | None = None,
    start: datetime = DEFAULT_START,
    check: bool = True,
) -> dict[str, Any]:
    """Simulate a run into ``folder`` (which must hold no logs yet); its ``run.json``."""
    network = network or Network()
    faults = faults or []
    folder.mkdir(parents=True, exist_ok=True)
    began, began_at = time.perf_counter(), datetime.now()
    calendar = Calendar(timedelta(0))
    instant = start.replace(tzinfo=timezone.utc).timestamp()
    simulation = Simulation(
        settings,
        LogFiles(folder),
        start=instant,
        network=network,
        faults=faults,
        calendar=calendar,
    )
    end = simulation.run()
    took = time.perf_counter() - began
    description: dict[str, Any] = {
        "id": folder.name,
        "state": RunState.FINISHED,
        "stopped_by": StoppedBy.DEADLINE,
        "error": None,
        "simulated": True,
        "settings": settings.to_json(),
        "started_at": _iso(calendar(instant)),
        "listening_at": _iso(calendar(instant)),
        "ended_at": _iso(calendar(end)),
        "elapsed": round(end - instant, 3),
        "address": None,
        "processes": [],
        "summary": None,
        "check": None,
        "simulation": {
            "network": {"latency_ms": network.latency_ms, "jitter_ms": network.jitter_ms},
            "faults": [fault_to_json(fault) for fault in faults],
            "outages": simulation.outages_json(),
            "events": simulation.events,
            "simulated_at": _iso(began_at),
            "real_s": round(took, 3),
        },
    }
    write_json(folder / RUN_JSON, description)
    if check:
        from ..running.report import report

        result = report(folder)
        description["check"], description["summary"] = result["check"], result["summary"]
        write_json(folder / RUN_JSON, description)
    return description


def _iso(instant: datetime) -> str:
    return instant.isoformat(timespec="milliseconds")


def simulate_cli(
    settings: SimulatedRunSettings,
    runs_dir: Path,
    log_dir: str | None,
    *,
    network: Network,
    faults: list[Fault],
    start: datetime,
    check: bool,
) -> int:
    """Simulate, print a summary; 0 if the check passed (or was not asked for)."""
    from ..checking.stats import format_summary

    try:
        folder = prepare_run_folder(runs_dir, log_dir)
    except RunFolderError as exc:
        print(f"pingpong simulate: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"run {folder.name}: {settings.clients} clients for {settings.duration:g} s, simulated "
        f"(seed {settings.seed}), in {folder}"
    )
    description = simulate_run(
        settings, folder, network=network, faults=faults, start=start, check=check
    )
    simulation = description["simulation"]
    print(
        f"simulated {description['elapsed']:g} s in {simulation['real_s']:.2f} s of real time "
        f"({simulation['events']} events)"
    )
    if not check:
        return 0
    print(format_summary(description))
    return 0 if description["check"]["ok"] else 1


def pick_seed() -> int:
    """A seed for a run that was given none (recorded, so it can be replayed)."""
    return secrets.randbelow(2**31)
