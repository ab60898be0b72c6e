"""A run folder's layout: file names, run ids, log names, a new folder, run.json written whole."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from pingpong.runfolder import (
    RunFolder,
    RunFolderError,
    client_log_name,
    client_log_number,
    client_role,
    is_log_name,
    is_run_id,
    run_id_sort_key,
    sort_log_names,
)


def test_the_names_of_a_runs_files(tmp_path: Path) -> None:
    files = RunFolder(tmp_path / "2026-11-26_13-01-02")
    assert files.id == "2026-11-26_13-01-02"
    assert files.server_log == files.path / "server.log"
    assert files.client_log(3) == files.path / "client3.log"
    assert files.stdout("server") == files.path / "server.out"
    assert files.stderr(client_role(12)) == files.path / "client12.err"
    assert files.run_json == files.path / "run.json"
    assert files.run_tmp == files.path / "run.tmp"
    assert client_log_name(7) == "client7.log"


@pytest.mark.parametrize(
    ("name", "number"),
    [("client1.log", 1), ("client10.log", 10), ("client0.log", None), ("client01.log", None),
     ("client1.out", None), ("server.log", None), ("client.log", None), ("xclient1.log", None)],
)  # fmt: skip
def test_client_log_number(name: str, number: int | None) -> None:
    assert client_log_number(name) == number


@pytest.mark.parametrize(
    ("name", "ok"),
    [("2026-11-26_13-01-02", True), ("2026-11-26_13-01-02-2", True),
     ("2026-11-26_13-01-02-10", True), ("2026-11-26_13-01-02-0", False),
     ("2026-11-26_13-01-02-1x", False), ("2026-11-26", False), ("..", False),
     ("2026-11-26_13-01-02/..", False), ("", False)],
)  # fmt: skip
def test_run_ids(name: str, ok: bool) -> None:
    assert is_run_id(name) is ok


def test_run_ids_sort_by_time_then_suffix() -> None:
    ids = ["2026-01-01_00-00-00-10", "2025-12-31_23-59-59", "2026-01-01_00-00-00",
           "2026-01-01_00-00-00-2"]  # fmt: skip
    assert sorted(ids, key=run_id_sort_key) == [
        "2025-12-31_23-59-59", "2026-01-01_00-00-00", "2026-01-01_00-00-00-2",
        "2026-01-01_00-00-00-10",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="not a run id"):
        run_id_sort_key("runs")


@pytest.mark.parametrize(
    ("name", "ok"),
    [("server.log", True), ("server.out", True), ("client3.err", True), ("client12.log", True),
     ("run.json", False), ("run.tmp", False), ("client0.log", False), ("server.LOG", False),
     ("../server.log", False), ("server.log/..", False), ("baseline.log", False)],
)  # fmt: skip
def test_log_names(name: str, ok: bool) -> None:
    assert is_log_name(name) is ok


def test_log_names_in_order(tmp_path: Path) -> None:
    names = ["client10.log", "server.err", "client2.out", "client2.log", "server.log",
             "client1.log", "server.out", "run.json", "run.tmp", "notes.txt",
             "client1.err"]  # fmt: skip
    for name in names:
        (tmp_path / name).write_text("")
    files = RunFolder(tmp_path)
    assert files.log_names() == [
        "server.log", "client1.log", "client2.log", "client10.log",
        "server.out", "client2.out", "server.err", "client1.err",
    ]  # fmt: skip
    assert sort_log_names(["client2.log", "server.log"]) == ["server.log", "client2.log"]
    assert list(files.client_logs()) == [1, 2, 10]
    assert files.log_file("client10.log") == tmp_path / "client10.log"
    assert files.log_file("run.json") is None  # not a log, though it exists
    assert files.log_file("client3.log") is None  # a log's name, but not there


def test_new_folders_are_never_reused(tmp_path: Path) -> None:
    now = datetime(2026, 11, 26, 13, 1, 2)
    ids = [RunFolder.new(tmp_path / "runs", now).id for _ in range(3)]
    assert ids == ["2026-11-26_13-01-02", "2026-11-26_13-01-02-2", "2026-11-26_13-01-02-3"]
    assert all(is_run_id(run_id) for run_id in ids)


def test_a_folder_that_cannot_be_made_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "runs"
    blocker.write_text("a file, not a folder")
    with pytest.raises(RunFolderError, match=r"^cannot create a run folder in .*runs: "):
        RunFolder.new(blocker)


def test_run_json_is_replaced_whole(tmp_path: Path) -> None:
    files = RunFolder(tmp_path)
    files.write_run_json({"state": "running"})
    files.write_run_json({"state": "finished", "note": "ü"})
    assert json.loads(files.run_json.read_text(encoding="utf-8")) == {
        "state": "finished",
        "note": "ü",
    }
    assert not files.run_tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
