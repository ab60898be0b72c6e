"""The tailer: whole lines only, odd chunks, files created late, bad lines counted."""

from __future__ import annotations

from pathlib import Path

from app.live import LiveState
from app.tail import RunTailer
from pingpong.settings import RunSettings

ANSWERED = "2026-11-26;13:01:02.345;[0] PING;13:01:02.977;[0/0] PONG (1)\n"
IGNORED = "2026-11-26;13:01:03.100;[1] PING;(проигнорировано);(проигнорировано)\n"
CLIENT = "2026-11-26;13:01:02.344;[0] PING;13:01:02.979;[0/0] PONG (1)\n"


def test_lines_written_in_odd_chunks(tmp_path: Path) -> None:
    live = LiveState(RunSettings())
    tailer = RunTailer(tmp_path, 2, live)
    assert tailer.poll() == 0  # no file yet
    data = (ANSWERED + IGNORED).encode()
    seen = []
    with open(tmp_path / "server.log", "ab", buffering=0) as log:
        # Half a line; the rest of it and a bit; a cut inside a Cyrillic letter; the rest.
        cuts = [10, 70, data.index("проиг".encode()) + 1, len(data)]
        for start, end in zip([0, *cuts], cuts, strict=False):
            log.write(data[start:end])
            seen.append(tailer.poll())
    assert seen == [0, 1, 0, 1]  # each line counted once, when whole
    assert live.counters()["server"]["requests"] == 2
    assert live.counters()["server"]["ignored"] == 1
    tailer.close()


def test_several_lines_in_one_write_and_a_late_client_file(tmp_path: Path) -> None:
    live = LiveState(RunSettings())
    tailer = RunTailer(tmp_path, 2, live)
    (tmp_path / "server.log").write_text(ANSWERED * 3, encoding="utf-8")
    assert tailer.poll() == 3
    (tmp_path / "client2.log").write_text(CLIENT, encoding="utf-8")  # created late
    assert tailer.poll() == 1
    assert live.counters()["clients"][0]["client"] == 2
    tailer.close()


def test_bad_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    live = LiveState(RunSettings())
    tailer = RunTailer(tmp_path, 1, live)
    (tmp_path / "client1.log").write_text("garbage\n" + CLIENT, encoding="utf-8")
    tailer.drain()
    assert live.counters()["server"]["bad_lines"] == 1
    assert live.counters()["clients"][0]["answered"] == 1
    tailer.close()


def test_a_torn_last_line_is_a_bad_line_never_a_record(tmp_path: Path) -> None:
    """A write cut short (a full disk) leaves a line without its end: even when its bytes
    would parse, it is not a record; once the run is over it counts as a bad line."""
    live = LiveState(RunSettings())
    tailer = RunTailer(tmp_path, 1, live)
    (tmp_path / "server.log").write_text(ANSWERED + IGNORED.rstrip("\n"), encoding="utf-8")
    (tmp_path / "client1.log").write_text(CLIENT, encoding="utf-8")
    tailer.drain()
    tailer.drain()  # counted once
    counters = live.counters()
    assert counters["server"]["requests"] == 1
    assert counters["server"]["ignored"] == 0
    assert counters["server"]["bad_lines"] == 1
    assert counters["clients"][0]["answered"] == 1
    tailer.close()
