"""Runs on disk: the runs folder shared with the CLI, run ids, and the log files they hold.

Only names this module recognises are ever turned into paths: a run id must look
like a run folder (``YYYY-MM-DD_HH-MM-SS`` with an optional ``-K``) and a log name
like one a run writes (``server.log``, ``client3.log``, ``server.err`` …). Anything
else — ``..``, slashes, ``run.json`` — is simply not found.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["list_runs", "log_names", "log_path", "read_run", "run_folder"]

_RUN_ID = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}_[0-9]{2}-[0-9]{2}-[0-9]{2})(?:-([1-9][0-9]*))?")
_LOG_NAME = re.compile(r"(?:server|client[1-9][0-9]*)\.(?:log|out|err)")


def _folder(runs_dir: Path, run_id: str) -> Path | None:
    if _RUN_ID.fullmatch(run_id) is None:
        return None
    folder = runs_dir / run_id
    return folder if folder.is_dir() else None


def run_folder(runs_dir: Path, run_id: str) -> Path | None:
    """The folder of a run, or ``None`` if there is no such run (or the id is not one)."""
    return _folder(runs_dir, run_id)


def _sort_key(run_id: str) -> tuple[str, int]:
    match = _RUN_ID.fullmatch(run_id)
    assert match is not None
    return match[1], int(match[2] or 1)


def log_names(folder: Path) -> list[str]:
    names = [p.name for p in folder.iterdir() if _LOG_NAME.fullmatch(p.name)]
    order = {"log": 0, "out": 1, "err": 2}

    def key(name: str) -> tuple[int, int, int]:
        stem, kind = name.split(".")
        number = 0 if stem == "server" else int(stem[len("client") :])
        return order[kind], number, 0

    return sorted(names, key=key)


def read_run(runs_dir: Path, run_id: str) -> dict[str, Any] | None:
    """A run's ``run.json`` with the names of its log files; ``None`` if there is no such run."""
    folder = _folder(runs_dir, run_id)
    if folder is None:
        return None
    try:
        data: dict[str, Any] = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {"id": run_id, "state": "unknown"}  # a run still starting, or a crashed writer
    data["id"] = run_id
    data["logs"] = log_names(folder)
    return data


def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """Every run in the folder, newest first, CLI runs included."""
    if not runs_dir.is_dir():
        return []
    ids = [p.name for p in runs_dir.iterdir() if _RUN_ID.fullmatch(p.name) and p.is_dir()]
    runs = (read_run(runs_dir, run_id) for run_id in sorted(ids, key=_sort_key, reverse=True))
    return [run for run in runs if run is not None]


def log_path(runs_dir: Path, run_id: str, name: str) -> Path | None:
    """The path of one of a run's log files, or ``None``."""
    folder = _folder(runs_dir, run_id)
    if folder is None or _LOG_NAME.fullmatch(name) is None:
        return None
    path = folder / name
    return path if path.is_file() else None
