"""Runs on disk: the runs folder shared with the CLI, run ids, and the log files they hold.

Only names a run folder recognises (:mod:`pingpong.core.runfolder`) are ever turned into
paths: a run id must look like a run folder (``YYYY-MM-DD_HH-MM-SS`` with an optional
``-K``) and a log name like one a run writes (``server.log``, ``client3.log``,
``server.err`` …). Anything else — ``..``, slashes, ``run.json`` — is simply not found.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pingpong.core.runfolder import RunFolder, is_run_id, run_id_sort_key

__all__ = ["list_runs", "log_names", "log_path", "read_run", "run_folder"]


def _folder(runs_dir: Path, run_id: str) -> RunFolder | None:
    if not is_run_id(run_id):
        return None
    folder = RunFolder(runs_dir / run_id)
    return folder if folder.path.is_dir() else None


def run_folder(runs_dir: Path, run_id: str) -> Path | None:
    """The folder of a run, or ``None`` if there is no such run (or the id is not one)."""
    folder = _folder(runs_dir, run_id)
    return None if folder is None else folder.path


def log_names(folder: Path) -> list[str]:
    return RunFolder(folder).log_names()


def read_run(runs_dir: Path, run_id: str) -> dict[str, Any] | None:
    """A run's ``run.json`` with the names of its log files; ``None`` if there is no such run."""
    folder = _folder(runs_dir, run_id)
    if folder is None:
        return None
    try:
        data: dict[str, Any] = json.loads(folder.run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {"id": run_id, "state": "unknown"}  # a run still starting, or a crashed writer
    data["id"] = run_id
    data["logs"] = folder.log_names()
    return data


def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """Every run in the folder, newest first, CLI runs included."""
    if not runs_dir.is_dir():
        return []
    ids = [p.name for p in runs_dir.iterdir() if is_run_id(p.name) and p.is_dir()]
    runs = (read_run(runs_dir, run_id) for run_id in sorted(ids, key=run_id_sort_key, reverse=True))
    return [run for run in runs if run is not None]


def log_path(runs_dir: Path, run_id: str, name: str) -> Path | None:
    """The path of one of a run's log files, or ``None``."""
    folder = _folder(runs_dir, run_id)
    return None if folder is None else folder.log_file(name)
