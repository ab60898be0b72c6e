"""A run's folder: the names of the files a run writes, its run id, and making a new one.

Every module that reads or writes a run folder (the runner, the checker, the summary,
the dashboard's tailer and history …) takes the names from here, so a name is spelled
once. A folder holds (docs/protocol.md §9.2):

* ``server.log`` and ``client1.log`` …, the logs;
* ``server.out``, ``server.err``, ``client1.out`` …, each process's stdout and stderr;
* ``run.json``, the run's description, replaced whole through ``run.tmp``.

A run id is the folder's name, ``YYYY-MM-DD_HH-MM-SS`` with ``-2``, ``-3`` … added when
the name is taken; the dashboard serves a run or a file only when its name is one of these.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import os_error_text

__all__ = [
    "RUN_JSON",
    "RUN_TMP",
    "SERVER_LOG",
    "SERVER_ROLE",
    "RunFolder",
    "RunFolderError",
    "client_log_name",
    "client_log_number",
    "client_role",
    "is_log_name",
    "is_run_id",
    "new_run_folder",
    "prepare_run_folder",
    "run_id_sort_key",
    "sort_log_names",
    "write_json",
]

SERVER_ROLE = "server"
SERVER_LOG = "server.log"
RUN_JSON = "run.json"
RUN_TMP = "run.tmp"

_RUN_ID = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}_[0-9]{2}-[0-9]{2}-[0-9]{2})(?:-([1-9][0-9]*))?")
_RUN_ID_FORMAT = "%Y-%m-%d_%H-%M-%S"
_CLIENT_LOG = re.compile(r"client([1-9][0-9]*)\.log")
_LOG_NAME = re.compile(r"(server|client([1-9][0-9]*))\.(log|out|err)")
_KIND_ORDER = {"log": 0, "out": 1, "err": 2}


def client_role(number: int) -> str:
    """Client number 3's role, ``client3``: the stem of its files and its name in a run."""
    return f"client{number}"


def client_log_name(number: int) -> str:
    """``client3.log``."""
    return f"{client_role(number)}.log"


def client_log_number(name: str) -> int | None:
    """``client3.log`` → 3; anything else → ``None``."""
    match = _CLIENT_LOG.fullmatch(name)
    return None if match is None else int(match[1])


def is_run_id(name: str) -> bool:
    """Whether ``name`` is a run folder's name (``2026-11-26_13-01-02``, ``…-2`` …)."""
    return _RUN_ID.fullmatch(name) is not None


def run_id_sort_key(run_id: str) -> tuple[str, int]:
    """Orders run ids by time, then by the ``-K`` suffix (``-10`` after ``-2``)."""
    match = _RUN_ID.fullmatch(run_id)
    if match is None:
        raise ValueError(f"not a run id: {run_id!r}")
    return match[1], int(match[2] or 1)


def is_log_name(name: str) -> bool:
    """Whether ``name`` is a file a run's process writes: ``server.log``, ``client3.err`` …"""
    return _LOG_NAME.fullmatch(name) is not None


def sort_log_names(names: Iterable[str]) -> list[str]:
    """Logs first, then stdout, then stderr; the server before client 1, client 2 before 10."""

    def key(name: str) -> tuple[int, int]:
        match = _LOG_NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"not a log name: {name!r}")
        return _KIND_ORDER[match[3]], int(match[2] or 0)

    return sorted(names, key=key)


class RunFolderError(Exception):
    """The run's folder cannot be made or written; nothing has started. One line."""


def new_run_folder(runs_dir: Path, now: datetime | None = None) -> Path:
    """Create and return a fresh folder named after ``now``, with ``-2``, ``-3`` … if taken.

    Raises :class:`RunFolderError` if ``runs_dir`` cannot hold it (read-only, a file …).
    """
    base = (now or datetime.now()).strftime(_RUN_ID_FORMAT)
    suffix = 1
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        while True:
            folder = runs_dir / (base if suffix == 1 else f"{base}-{suffix}")
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                suffix += 1
    except OSError as exc:
        raise RunFolderError(
            f"cannot create a run folder in {runs_dir}: {os_error_text(exc)}"
        ) from None


def prepare_run_folder(runs_dir: Path, log_dir: str | None) -> Path:
    """The folder a new run writes into: ``log_dir`` if given (made if missing; it must
    hold no logs and no ``run.json`` yet), else a fresh one in ``runs_dir``.

    Raises :class:`RunFolderError` with one line saying why it cannot be had.
    """
    if log_dir is None:
        return new_run_folder(runs_dir)
    folder = Path(log_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create {folder}: {os_error_text(exc)}") from None
    taken = [p.name for p in folder.glob("*.log")] + [p.name for p in folder.glob(RUN_JSON)]
    if taken:
        raise RunFolderError(f"{folder} already holds {', '.join(sorted(taken))}")
    return folder


def write_json(path: Path, data: dict[str, Any], temporary: Path | None = None) -> None:
    """Replace ``path`` atomically: a reader sees the old file or the new one, whole.

    The data goes to ``temporary`` first (``path`` with the suffix ``.tmp`` unless
    given), which then replaces ``path``. On failure (a full disk …) raises
    :class:`OSError`, leaving the old file and no temporary one.
    """
    temporary = temporary or path.with_suffix(".tmp")
    try:
        temporary.write_text(
            json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


class RunFolder:
    """The paths of one run folder's files. Nothing is read or written until asked."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def new(cls, runs_dir: Path, now: datetime | None = None) -> RunFolder:
        """A fresh folder in ``runs_dir`` (:func:`new_run_folder`)."""
        return cls(new_run_folder(runs_dir, now))

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def id(self) -> str:
        """The run id: the folder's name."""
        return self.path.name

    @property
    def server_log(self) -> Path:
        return self.path / SERVER_LOG

    def client_log(self, number: int) -> Path:
        return self.path / client_log_name(number)

    def stdout(self, role: str) -> Path:
        """``server.out``, ``client3.out``: a process's stdout."""
        return self.path / f"{role}.out"

    def stderr(self, role: str) -> Path:
        """``server.err``, ``client3.err``: a process's stderr."""
        return self.path / f"{role}.err"

    @property
    def run_json(self) -> Path:
        return self.path / RUN_JSON

    @property
    def run_tmp(self) -> Path:
        """Where ``run.json`` is written before it replaces the old one."""
        return self.path / RUN_TMP

    def write_run_json(self, data: dict[str, Any]) -> None:
        """Replace ``run.json`` whole (:func:`write_json`); :class:`OSError` if it cannot be."""
        write_json(self.run_json, data, self.run_tmp)

    def client_logs(self) -> dict[int, Path]:
        """The client logs present, by client number, in order."""
        found = {
            number: path
            for path in self.path.glob("client*.log")
            if (number := client_log_number(path.name)) is not None
        }
        return dict(sorted(found.items()))

    def log_names(self) -> list[str]:
        """The names of the files the run's processes wrote that are present, in order
        (:func:`sort_log_names`). Nothing else: never ``run.json`` or a stray file."""
        return sort_log_names(p.name for p in self.path.iterdir() if is_log_name(p.name))

    def log_file(self, name: str) -> Path | None:
        """The path of the log called ``name`` if that is a log's name and it exists."""
        if not is_log_name(name):
            return None
        path = self.path / name
        return path if path.is_file() else None
