"""A run's index: its log files read once into SQLite, for windowed and downsampled queries.

The logs stay the single source of truth. The index (``index.sqlite`` in the run
folder, or in a cache folder when the run folder is read-only) is derived from
them and can be deleted and rebuilt at any time. :func:`update` reads whatever the
logs gained since the last update (by byte offset, whole lines only), so the same
code builds the index of a finished run in one go and keeps up with a live one.
:class:`RunIndex` answers the run page's questions from it without reading the logs
again: a page of exchanges, a window of the timeline at pixel resolution, chart
series, totals, and the log lines around a line number.

An **exchange** is one row per request or response, joining both logs:

* a request a client sent, with the server's side of it (received, answered or
  ignored) and the client's outcome (answered, or timed out);
* a keepalive copy (the server's send, the client's receipt);
* a PONG that came after its request timed out (``late``);
* what only the server logged: a request it ignored that no client timed out
  (yet, in a live run), a PONG or keepalive no client logged (yet).

PONGs and keepalives pair by response number; a timeout pairs with an ignored
request as the checker pairs them (same request number, received within the
timeout, earliest server line first, timeouts taken in the order they were sent).
Lines that do not parse are kept in ``bad_lines`` with their reason, never fatal.

``python -m app.runindex RUN_DIR [--final]`` runs :func:`update` in a child process,
which is how the dashboard builds a big index without its own memory or event
loop paying for it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pingpong.checking.check import DEFAULT_SLACK_MS
from pingpong.checking.runlogs import client_log_number, parse_raw, torn_reason
from pingpong.core.logformat import (
    Answered,
    ClientRecord,
    Ignored,
    ServerRecord,
    TimedOut,
    parse_client_line,
    parse_server_line,
)
from pingpong.core.protocol import Keepalive, Ping, Pong
from pingpong.core.settings import RunSettings, SettingsErrors, SimulatedRunSettings

from .lanecounts import window_counts

__all__ = [
    "INDEX_NAME",
    "OUTCOMES",
    "IndexStatus",
    "RunIndex",
    "backlog_bytes",
    "index_path",
    "log_files",
    "main",
    "update",
]

INDEX_NAME = "index.sqlite"
SCHEMA_VERSION = 6
#: Outcome codes as stored; the API speaks the names.
OUTCOMES = ("answered", "timed out", "ignored", "late", "keepalive")
ANSWERED, TIMED_OUT, IGNORED, LATE, KEEPALIVE = range(5)
_CHUNK_BYTES = 4 << 20  # read and commit the logs this much at a time: memory stays flat
_MARK_EVERY = 1024  # a line-offset mark every this many lines, to find any line quickly
_MAX_BARS = 10_000  # more exchanges than this in a timeline window: counts per pixel instead
_MAX_ROWS_COUNTED = 60_000  # up to this many, counts come from the rows at pixel resolution

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files(name TEXT PRIMARY KEY, offset INTEGER NOT NULL, lines INTEGER NOT NULL);
CREATE TABLE marks(name TEXT NOT NULL, line INTEGER NOT NULL, offset INTEGER NOT NULL,
                   PRIMARY KEY(name, line)) WITHOUT ROWID;
CREATE TABLE bad_lines(name TEXT NOT NULL, line INTEGER NOT NULL, offset INTEGER NOT NULL,
                       reason TEXT NOT NULL, PRIMARY KEY(name, line)) WITHOUT ROWID;
-- One row per exchange. Times are epoch seconds; t is the sort key (the earliest known time).
-- client: the client log's number; peer: the client number a PONG carries.
CREATE TABLE exchanges(
    id INTEGER PRIMARY KEY,
    t REAL NOT NULL,
    client INTEGER,
    outcome INTEGER NOT NULL,
    request INTEGER,
    response INTEGER,
    peer INTEGER,
    client_sent REAL, server_received REAL, server_sent REAL, client_done REAL,
    c_line INTEGER, c_off INTEGER, s_line INTEGER, s_off INTEGER
);
CREATE UNIQUE INDEX ex_response ON exchanges(response) WHERE response IS NOT NULL;
-- Totals per second (what the counters and the charts show), additive, from each line once.
CREATE TABLE server_seconds(second INTEGER PRIMARY KEY, requests INTEGER NOT NULL,
    answered INTEGER NOT NULL, ignored INTEGER NOT NULL, keepalives INTEGER NOT NULL,
    last_response INTEGER NOT NULL);
CREATE TABLE client_seconds(client INTEGER NOT NULL, second INTEGER NOT NULL,
    sent INTEGER NOT NULL, answered INTEGER NOT NULL, timed_out INTEGER NOT NULL,
    late INTEGER NOT NULL, keepalives INTEGER NOT NULL, rtt_sum INTEGER NOT NULL,
    rtt_min INTEGER, rtt_max INTEGER, PRIMARY KEY(client, second)) WITHOUT ROWID;
CREATE TABLE rtt_hist(client INTEGER NOT NULL, ms INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY(client, ms)) WITHOUT ROWID;
-- Server delays in 20 bins over the run's delay range, per second they were sent.
CREATE TABLE delay_seconds(second INTEGER NOT NULL, bin INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY(second, bin)) WITHOUT ROWID;
-- Exchanges per second (of t), lane (client; 0: no client) and outcome, for seconds before
-- meta.settled: rows that no line still to come can change. The timeline's counts.
CREATE TABLE lane_seconds(second INTEGER NOT NULL, client INTEGER NOT NULL,
    answered INTEGER NOT NULL, timed_out INTEGER NOT NULL, ignored INTEGER NOT NULL,
    late INTEGER NOT NULL, keepalive INTEGER NOT NULL,
    PRIMARY KEY(second, client)) WITHOUT ROWID;
-- Settled seconds by ten (ten = second / 10), for wide windows.
CREATE TABLE client_tens(client INTEGER NOT NULL, ten INTEGER NOT NULL,
    sent INTEGER NOT NULL, answered INTEGER NOT NULL, timed_out INTEGER NOT NULL,
    late INTEGER NOT NULL, keepalives INTEGER NOT NULL, rtt_sum INTEGER NOT NULL,
    rtt_min INTEGER, rtt_max INTEGER, PRIMARY KEY(client, ten)) WITHOUT ROWID;
CREATE TABLE delay_tens(ten INTEGER NOT NULL, bin INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY(ten, bin)) WITHOUT ROWID;
CREATE TABLE lane_tens(ten INTEGER NOT NULL, client INTEGER NOT NULL,
    answered INTEGER NOT NULL, timed_out INTEGER NOT NULL, ignored INTEGER NOT NULL,
    late INTEGER NOT NULL, keepalive INTEGER NOT NULL,
    PRIMARY KEY(ten, client)) WITHOUT ROWID;
"""
DELAY_BINS = 20
#: Seconds per bucket of the timeline's counts: the smallest at least _MIN_BUCKET_PX wide.
_STEPS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
_MIN_BUCKET_PX = 3
# Made once the first update is done: sorting all rows once is far cheaper than keeping
# these in order row by row while a big run is first read.
_INDEXES = """
-- On t alone: an index holds the rowid last, so this one is in (t, id) order, the order
-- of every page, forwards and backwards.
CREATE INDEX IF NOT EXISTS ex_t ON exchanges(t);
CREATE INDEX IF NOT EXISTS ex_client ON exchanges(client, t);
CREATE INDEX IF NOT EXISTS ex_outcome ON exchanges(outcome, t);
CREATE INDEX IF NOT EXISTS ex_request ON exchanges(request, t);
CREATE INDEX IF NOT EXISTS ex_ignored ON exchanges(server_received, s_line) WHERE outcome = 2;
CREATE INDEX IF NOT EXISTS ex_unpaired ON exchanges(client_sent, client, c_line)
    WHERE outcome = 1 AND s_line IS NULL;
"""


# -- where the index lives --------------------------------------------------------------


def index_path(folder: Path) -> Path:
    """``folder/index.sqlite``, or a cache file when the run folder cannot be written."""
    if os.access(folder, os.W_OK):
        return folder / INDEX_NAME
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / "pingpong-index"
    cache.mkdir(exist_ok=True)
    return cache / f"{folder.name}-{digest}.sqlite"


def log_files(folder: Path) -> list[tuple[str, int | None]]:
    """``(name, client log number)`` of the logs to index, server first (``None``)."""
    files: list[tuple[str, int | None]] = [("server.log", None)]
    clients = []
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            number = client_log_number(path.name)
            if number is not None:
                clients.append((number, path.name))
    files += [(name, number) for number, name in sorted(clients)]
    return files


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _connect(path: Path, *, write: bool, fresh: bool = False) -> sqlite3.Connection:
    if write:
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        # A fresh index is built aside and renamed into place whole, so it needs no
        # journal; one being brought up to date is read meanwhile, hence WAL.
        connection.execute(f"PRAGMA journal_mode={'OFF' if fresh else 'WAL'}")
        connection.execute(f"PRAGMA synchronous={'OFF' if fresh else 'NORMAL'}")
        connection.execute("PRAGMA cache_size=-65536")  # 64 MiB
    else:
        connection = sqlite3.connect(
            f"{path.as_uri()}?mode=ro", uri=True, timeout=30, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
    return connection


def _meta(connection: sqlite3.Connection) -> dict[str, Any]:
    return {key: json.loads(value) for key, value in connection.execute("SELECT * FROM meta")}


def backlog_bytes(folder: Path) -> int | None:
    """Bytes of log not indexed yet; ``None`` if there is no usable index at all."""
    path = index_path(folder)
    if not path.exists():
        return None
    try:
        with contextlib.closing(_connect(path, write=False)) as connection:
            if _meta(connection).get("version") != SCHEMA_VERSION:
                return None
            done = dict(connection.execute("SELECT name, offset FROM files").fetchall())
    except sqlite3.Error:
        return None
    return sum(
        max(0, _size(folder / name) - int(done.get(name, 0))) for name, _ in log_files(folder)
    )


# -- building ---------------------------------------------------------------------------


def _settings(folder: Path) -> RunSettings:
    try:
        meta = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        # As the checker reads them (pingpong.checking.runlogs): a simulated run has its own kind.
        kind = SimulatedRunSettings if meta.get("simulated") is True else RunSettings
        return kind.from_json(meta.get("settings", {}))
    except (OSError, ValueError, AttributeError, SettingsErrors):
        return RunSettings()


def _epoch(instant: datetime) -> float:
    return round(instant.timestamp(), 3)


def _span(connection: sqlite3.Connection, longest: float) -> tuple[float | None, float | None]:
    """The run's first and last logged instants. An exchange ends at most ``longest``
    seconds after it begins, so the last one is among those that began just before."""
    first, latest = connection.execute("SELECT min(t), max(t) FROM exchanges").fetchone()
    if first is None:
        return None, None
    (last,) = connection.execute(
        "SELECT max(max(coalesce(client_sent, 0), coalesce(server_received, 0), "
        "coalesce(server_sent, 0), coalesce(client_done, 0))) FROM exchanges WHERE t >= ?",
        (latest - longest,),
    ).fetchone()
    return first, last


def _delay_bins(settings: RunSettings) -> tuple[int, int]:
    """The delay histogram's first bin and bin width, in ms, as the live view has them."""
    low, high = settings.delay_ms.low, settings.delay_ms.high
    return low, max(1, -(-(high - low + 1) // DELAY_BINS))


def _settle(
    connection: sqlite3.Connection, settled: int, last: float | None, longest: float, final: bool
) -> int:
    """Count the exchanges of the seconds no line still to come can change into
    ``lane_seconds``; the first second not counted yet."""
    if last is None:
        return settled
    # A live run's newest rows may still be joined by their other side or paired.
    horizon = math.floor(last) + 1 if final else math.floor(last - longest - 5)
    if horizon <= settled:
        return settled
    connection.execute(
        """INSERT INTO lane_seconds
           SELECT CAST(t AS INTEGER) AS second, coalesce(client, 0) AS lane, sum(outcome = 0),
                  sum(outcome = 1), sum(outcome = 2), sum(outcome = 3), sum(outcome = 4)
           FROM exchanges WHERE t >= ? AND t < ? GROUP BY second, lane
           ON CONFLICT DO UPDATE SET answered = answered + excluded.answered,
               timed_out = timed_out + excluded.timed_out, ignored = ignored + excluded.ignored,
               late = late + excluded.late, keepalive = keepalive + excluded.keepalive""",
        (settled, horizon),
    )
    connection.execute(
        """INSERT INTO lane_tens
           SELECT second / 10 AS ten, client, sum(answered), sum(timed_out), sum(ignored),
                  sum(late), sum(keepalive)
           FROM lane_seconds WHERE second >= ? AND second < ? GROUP BY ten, client
           ON CONFLICT DO UPDATE SET answered = answered + excluded.answered,
               timed_out = timed_out + excluded.timed_out, ignored = ignored + excluded.ignored,
               late = late + excluded.late, keepalive = keepalive + excluded.keepalive""",
        (settled, horizon),
    )
    connection.execute(
        """INSERT INTO client_tens
           SELECT client, second / 10 AS ten, sum(sent), sum(answered), sum(timed_out),
                  sum(late), sum(keepalives), sum(rtt_sum), min(rtt_min), max(rtt_max)
           FROM client_seconds WHERE second >= ? AND second < ? GROUP BY client, ten
           ON CONFLICT DO UPDATE SET sent = sent + excluded.sent,
               answered = answered + excluded.answered, timed_out = timed_out + excluded.timed_out,
               late = late + excluded.late, keepalives = keepalives + excluded.keepalives,
               rtt_sum = rtt_sum + excluded.rtt_sum,
               rtt_min = min(coalesce(rtt_min, excluded.rtt_min),
                             coalesce(excluded.rtt_min, rtt_min)),
               rtt_max = max(coalesce(rtt_max, excluded.rtt_max),
                             coalesce(excluded.rtt_max, rtt_max))""",
        (settled, horizon),
    )
    connection.execute(
        """INSERT INTO delay_tens
           SELECT second / 10 AS ten, bin, sum(n) FROM delay_seconds
           WHERE second >= ? AND second < ? GROUP BY ten, bin
           ON CONFLICT DO UPDATE SET n = n + excluded.n""",
        (settled, horizon),
    )
    return horizon


class _Batch:
    """Rows and per-second totals of one chunk of one log, written in one transaction."""

    def __init__(self, delay_bins: tuple[int, int]) -> None:
        self.delay_low, self.delay_width = delay_bins
        self.server_side: list[tuple[Any, ...]] = []
        self.client_side: list[tuple[Any, ...]] = []
        self.inserts: list[tuple[Any, ...]] = []
        self.server_seconds: dict[int, list[int]] = {}
        self.client_seconds: dict[tuple[int, int], list[int]] = {}
        self.rtt: dict[tuple[int, int], int] = {}
        self.delays: dict[tuple[int, int], int] = {}
        self.bad: list[tuple[str, int, int, str]] = []
        self.marks: list[tuple[str, int, int]] = []

    def server_second(self, when: float) -> list[int]:
        second = math.floor(when)
        row = self.server_seconds.get(second)
        if row is None:
            # requests, answered, ignored, keepalives, last response number
            row = self.server_seconds[second] = [0, 0, 0, 0, -1]
        return row

    def client_second(self, client: int, when: float) -> list[int]:
        key = (client, math.floor(when))
        row = self.client_seconds.get(key)
        if row is None:
            # sent, answered, timed out, late, keepalives, rtt sum, rtt min, rtt max
            row = self.client_seconds[key] = [0, 0, 0, 0, 0, 0, -1, -1]
        return row

    def add_server(self, number: int, offset: int, record: ServerRecord) -> None:
        if isinstance(record, Answered):
            received, sent = _epoch(record.request_time), _epoch(record.response_time)
            pong = record.response
            self.server_side.append(
                (received, pong.client, ANSWERED, pong.request, pong.response, pong.client,
                 received, sent, number, offset)
            )  # fmt: skip
            self.server_second(received)[0] += 1
            row = self.server_second(sent)
            row[1] += 1
            row[4] = max(row[4], pong.response)
            delay = round((sent - received) * 1000)
            bin_ = min(max((delay - self.delay_low) // self.delay_width, 0), DELAY_BINS - 1)
            key = (math.floor(sent), bin_)
            self.delays[key] = self.delays.get(key, 0) + 1
        elif isinstance(record, Ignored):
            received = _epoch(record.request_time)
            self.inserts.append(
                (received, None, IGNORED, record.request.request, None, None,
                 None, received, None, None, None, None, number, offset)
            )  # fmt: skip
            row = self.server_second(received)
            row[0] += 1
            row[2] += 1
        else:
            sent = _epoch(record.response_time)
            self.server_side.append(
                (sent, None, KEEPALIVE, None, record.response.response, None,
                 None, sent, number, offset)
            )  # fmt: skip
            row = self.server_second(sent)
            row[3] += 1
            row[4] = max(row[4], record.response.response)

    def add_client(self, client: int, number: int, offset: int, record: ClientRecord) -> None:
        if isinstance(record, Answered):
            sent, back = _epoch(record.request_time), _epoch(record.response_time)
            pong = record.response
            self.client_side.append(
                (sent, client, ANSWERED, pong.request, pong.response, pong.client,
                 sent, back, number, offset)
            )  # fmt: skip
            rtt = round((back - sent) * 1000)
            self.client_second(client, sent)[0] += 1
            row = self.client_second(client, back)
            row[1] += 1
            row[5] += rtt
            row[6] = rtt if row[6] < 0 else min(row[6], rtt)
            row[7] = max(row[7], rtt)
            self.rtt[client, rtt] = self.rtt.get((client, rtt), 0) + 1
        elif isinstance(record, TimedOut):
            sent, back = _epoch(record.request_time), _epoch(record.response_time)
            self.inserts.append(
                (sent, client, TIMED_OUT, record.request.request, None, None,
                 sent, None, None, back, number, offset, None, None)
            )  # fmt: skip
            self.client_second(client, sent)[0] += 1
            self.client_second(client, back)[2] += 1
        else:
            back = _epoch(record.response_time)
            response = record.response
            if isinstance(response, Keepalive):
                self.client_side.append(
                    (back, client, KEEPALIVE, None, response.response, None,
                     None, back, number, offset)
                )  # fmt: skip
                self.client_second(client, back)[4] += 1
            else:
                self.client_side.append(
                    (back, client, LATE, response.request, response.response, response.client,
                     None, back, number, offset)
                )  # fmt: skip
                self.client_second(client, back)[3] += 1


_SERVER_UPSERT = """
INSERT INTO exchanges(t, client, outcome, request, response, peer,
                      server_received, server_sent, s_line, s_off)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(response) WHERE response IS NOT NULL DO UPDATE SET
    t = min(t, excluded.t), peer = coalesce(peer, excluded.peer),
    request = coalesce(request, excluded.request),
    server_received = excluded.server_received, server_sent = excluded.server_sent,
    s_line = excluded.s_line, s_off = excluded.s_off
WHERE s_line IS NULL
"""
_CLIENT_UPSERT = """
INSERT INTO exchanges(t, client, outcome, request, response, peer,
                      client_sent, client_done, c_line, c_off)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(response) WHERE response IS NOT NULL DO UPDATE SET
    t = min(t, excluded.t), client = excluded.client, outcome = excluded.outcome,
    request = excluded.request, peer = coalesce(excluded.peer, peer),
    client_sent = excluded.client_sent, client_done = excluded.client_done,
    c_line = excluded.c_line, c_off = excluded.c_off
WHERE c_line IS NULL
"""
_INSERT = """
INSERT INTO exchanges(t, client, outcome, request, response, peer, client_sent,
                      server_received, server_sent, client_done, c_line, c_off, s_line, s_off)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _write(connection: sqlite3.Connection, batch: _Batch) -> int:
    """Store a batch (inside the caller's transaction); how many rows could not be stored."""
    dropped = 0
    if batch.server_side:
        cursor = connection.executemany(_SERVER_UPSERT, batch.server_side)
        dropped += len(batch.server_side) - cursor.rowcount
    if batch.client_side:
        cursor = connection.executemany(_CLIENT_UPSERT, batch.client_side)
        dropped += len(batch.client_side) - cursor.rowcount
    connection.executemany(_INSERT, batch.inserts)
    connection.executemany(
        """INSERT INTO server_seconds VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(second) DO UPDATE SET
           requests = requests + excluded.requests, answered = answered + excluded.answered,
           ignored = ignored + excluded.ignored, keepalives = keepalives + excluded.keepalives,
           last_response = max(last_response, excluded.last_response)""",
        [(second, *row) for second, row in batch.server_seconds.items()],
    )
    connection.executemany(
        """INSERT INTO client_seconds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(client, second) DO UPDATE SET
           sent = sent + excluded.sent, answered = answered + excluded.answered,
           timed_out = timed_out + excluded.timed_out, late = late + excluded.late,
           keepalives = keepalives + excluded.keepalives, rtt_sum = rtt_sum + excluded.rtt_sum,
           rtt_min = min(coalesce(rtt_min, excluded.rtt_min),
                         coalesce(excluded.rtt_min, rtt_min)),
           rtt_max = max(coalesce(rtt_max, excluded.rtt_max),
                         coalesce(excluded.rtt_max, rtt_max))""",
        [
            (
                client,
                second,
                *row[:6],
                None if row[6] < 0 else row[6],
                None if row[7] < 0 else row[7],
            )
            for (client, second), row in batch.client_seconds.items()
        ],
    )
    connection.executemany(
        "INSERT INTO rtt_hist VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
        [(client, ms, n) for (client, ms), n in batch.rtt.items()],
    )
    connection.executemany(
        "INSERT INTO delay_seconds VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
        [(second, bin_, n) for (second, bin_), n in batch.delays.items()],
    )
    connection.executemany("INSERT OR REPLACE INTO bad_lines VALUES (?, ?, ?, ?)", batch.bad)
    connection.executemany("INSERT OR REPLACE INTO marks VALUES (?, ?, ?)", batch.marks)
    return dropped


def _pair_timeouts(connection: sqlite3.Connection, timeout_ms: int, slack_ms: float) -> None:
    """Join each unpaired timeout with the request the server ignored, as the checker does:
    timeouts in the order they were sent, each taking the unused ignored request with its
    number that the server received earliest within the timeout (and the slack).

    One sweep over both, in time order, holding only the ignored requests that a timeout
    could still take: memory stays small however long the run.
    """
    # A tenth of a millisecond on top of the checker's bounds: these are float seconds.
    before, after = slack_ms / 1000 + 1e-4, (timeout_ms + slack_ms) / 1000 + 1e-4
    timeouts = connection.execute(
        "SELECT id, request, client_sent FROM exchanges WHERE outcome = 1 AND s_line IS NULL "
        "ORDER BY client_sent, client, c_line"
    )
    ignored = connection.execute(
        "SELECT id, request, server_received FROM exchanges WHERE outcome = 2 "
        "ORDER BY server_received, s_line"
    )
    waiting: dict[int, list[tuple[float, int]]] = {}  # request number -> [(received, id)]
    following = ignored.fetchone()
    pairs: list[tuple[int, int]] = []
    for seen, (row_id, request, sent) in enumerate(timeouts):
        while following is not None and following[2] <= sent + after:
            waiting.setdefault(following[1], []).append((following[2], following[0]))
            following = ignored.fetchone()
        candidates = waiting.get(request)
        while candidates and candidates[0][0] < sent - before:
            candidates.pop(0)  # too early for this timeout and for every later one
        if candidates:
            pairs.append((row_id, candidates.pop(0)[1]))
        if seen % 4096 == 4095:  # forget what no later timeout can take
            for number in list(waiting):
                kept = [c for c in waiting[number] if c[0] >= sent - before]
                if kept:
                    waiting[number] = kept
                else:
                    del waiting[number]
    timeouts.close()
    ignored.close()
    connection.execute("DROP TABLE IF EXISTS temp.pairs")
    connection.execute(
        "CREATE TEMP TABLE pairs(timeout_id INTEGER PRIMARY KEY, ignored_id INTEGER NOT NULL)"
    )
    connection.executemany("INSERT INTO pairs VALUES (?, ?)", pairs)
    _merge_pairs(connection)
    connection.execute("DROP TABLE temp.pairs")


def _merge_pairs(connection: sqlite3.Connection) -> None:
    """Move each paired ignored request's server side into its timeout's row."""
    connection.execute(
        """UPDATE exchanges SET (server_received, s_line, s_off) = (
               SELECT ignored.server_received, ignored.s_line, ignored.s_off
               FROM pairs JOIN exchanges AS ignored ON ignored.id = pairs.ignored_id
               WHERE pairs.timeout_id = exchanges.id)
           WHERE id IN (SELECT timeout_id FROM pairs)"""
    )
    connection.execute("DELETE FROM exchanges WHERE id IN (SELECT ignored_id FROM pairs)")


def _lines(
    path: Path, offset: int, first_line: int, final: bool
) -> Iterator[tuple[int, int, bytes | int | None]]:
    """``(line number, offset, bytes)`` of the whole lines from ``offset``, chunk by chunk;
    ``None`` instead of bytes marks the end of a chunk (a commit point). At the end of a
    finished run a torn last line (no line end) comes out as its length, to be reported."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return
    with handle:
        handle.seek(offset)
        number = first_line
        pending = b""
        while True:
            data = handle.read(_CHUNK_BYTES)
            if not data:
                break
            data = pending + data
            end = data.rfind(b"\n")
            if end < 0:
                pending = data
                continue
            pending = data[end + 1 :]
            position = 0
            for raw in data[:end].split(b"\n"):
                number += 1
                yield number, offset + position, raw
                position += len(raw) + 1
            offset += end + 1
            yield number, offset, None
        if pending and final:
            yield number + 1, offset, len(pending)


@dataclass
class IndexStatus:
    """What :func:`update` did and where the index stands."""

    path: Path
    complete: bool
    lines: int
    added: int
    bad_lines: int
    rebuilt: bool


def _create(path: Path) -> sqlite3.Connection:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")
    connection = _connect(path, write=True, fresh=True)
    connection.executescript(_SCHEMA)
    connection.execute(
        "INSERT INTO meta VALUES ('version', ?), ('complete', 'false'), ('dropped', '0'), "
        "('first', 'null'), ('last', 'null')",
        (json.dumps(SCHEMA_VERSION),),
    )
    return connection


def _open_existing(path: Path, folder: Path) -> sqlite3.Connection | None:
    """The index, opened to bring it up to date; ``None`` if it must be built afresh
    (missing, unreadable, of another version, or a log shrank since)."""
    if not path.exists():
        return None
    try:
        connection = _connect(path, write=True)
    except sqlite3.Error:
        return None
    try:
        if _meta(connection).get("version") == SCHEMA_VERSION:
            done = connection.execute("SELECT name, offset FROM files").fetchall()
            if all(_size(folder / name) >= offset for name, offset in done):
                return connection
    except sqlite3.Error:
        pass  # damaged: rebuild
    connection.close()
    return None


def update(folder: Path, *, final: bool) -> IndexStatus:
    """Index what the run's logs gained since the last update; ``final``: the run has ended
    (a torn last line is then a bad line, and the index is marked complete)."""
    path = index_path(folder)
    connection = _open_existing(path, folder)
    if connection is not None:
        try:
            return _update(connection, folder, path, final=final, rebuilt=False)
        finally:
            connection.close()
    # Built aside, then renamed into place: a reader sees the old index or the whole new one.
    building = path.with_name(f"{path.name}.building")
    connection = _create(building)
    try:
        status = _update(connection, folder, path, final=final, rebuilt=True)
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")
    os.replace(building, path)
    return status


def _update(
    connection: sqlite3.Connection, folder: Path, path: Path, *, final: bool, rebuilt: bool
) -> IndexStatus:
    settings = _settings(folder)
    done = {
        name: (offset, lines)
        for name, offset, lines in connection.execute("SELECT name, offset, lines FROM files")
    }
    meta = _meta(connection)
    dropped = meta["dropped"]
    delay_bins = _delay_bins(settings)
    added = 0
    for name, client in log_files(folder):
        offset, line_count = done.get(name, (0, 0))
        parse: Callable[[str], Any] = parse_server_line if client is None else parse_client_line
        batch = _Batch(delay_bins)
        for number, position, raw in _lines(folder / name, offset, line_count, final):
            if isinstance(raw, int):
                batch.bad.append((name, number, position, torn_reason(raw)))
                continue
            if raw is not None:
                if number % _MARK_EVERY == 1:
                    batch.marks.append((name, number, position))
                record = parse_raw(raw, parse)
                if isinstance(record, str):
                    batch.bad.append((name, number, position, record))
                elif client is None:
                    batch.add_server(number, position, record)
                else:
                    batch.add_client(client, number, position, record)
                line_count = number
                added += 1
                continue
            connection.execute("BEGIN")
            dropped += _write(connection, batch)
            connection.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?)", (name, position, line_count)
            )
            connection.execute(
                "INSERT OR REPLACE INTO meta VALUES ('dropped', ?)", (json.dumps(dropped),)
            )
            connection.execute("COMMIT")
            batch = _Batch(delay_bins)
        if batch.bad:  # the torn last line of a finished run
            connection.execute("BEGIN")
            _write(connection, batch)
            connection.execute("COMMIT")
    connection.execute("BEGIN")
    for statement in _INDEXES.split(";"):
        if statement.strip():
            connection.execute(statement)
    _pair_timeouts(connection, settings.timeout_ms, DEFAULT_SLACK_MS)
    longest = settings.timeout_ms / 1000 + 1.0
    first, last = _span(connection, longest)
    settled = _settle(connection, meta.get("settled", 0), last, longest, final)
    values: list[tuple[str, Any]] = [
        ("complete", final),
        ("first", first),
        ("last", last),
        ("settled", settled),
    ]
    if final:  # a finished run's totals cannot change: computed once
        values.append(("counters", _counters(connection)))
    connection.executemany(
        "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values]
    )
    connection.execute("COMMIT")
    lines = connection.execute("SELECT coalesce(sum(lines), 0) FROM files").fetchone()[0]
    bad = connection.execute("SELECT count(*) FROM bad_lines").fetchone()[0]
    return IndexStatus(path, final, lines, added, bad, rebuilt)


# -- reading ----------------------------------------------------------------------------

_COLUMNS = (
    "id, t, client, outcome, request, response, peer, client_sent, server_received, "
    "server_sent, client_done, c_line, c_off, s_line, s_off"
)


@dataclass(frozen=True)
class Filter:
    """Which exchanges: a time window ``[start, end)`` on the sort time, clients, outcomes,
    a request number."""

    start: float | None = None
    end: float | None = None
    clients: tuple[int | None, ...] = ()  # None: exchanges no client logged
    outcomes: tuple[int, ...] = ()
    request: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        values: list[Any] = []
        if self.start is not None:
            clauses.append("t >= ?")
            values.append(self.start)
        if self.end is not None:
            clauses.append("t < ?")
            values.append(self.end)
        if self.clients:
            numbers = [c for c in self.clients if c is not None]
            parts = []
            if numbers:
                parts.append(f"client IN ({','.join('?' * len(numbers))})")
                values += numbers
            if None in self.clients:
                parts.append("client IS NULL")
            clauses.append("(" + " OR ".join(parts) + ")")
        if self.outcomes:
            clauses.append(f"outcome IN ({','.join('?' * len(self.outcomes))})")
            values += list(self.outcomes)
        if self.request is not None:
            clauses.append("request = ?")
            values.append(self.request)
        return (" AND ".join(clauses) or "1"), values


def _wire(row: Sequence[Any]) -> dict[str, str | None]:
    """The lines that crossed the wire for this exchange, as the protocol writes them."""
    outcome, request, response, peer = row[3], row[4], row[5], row[6]
    sent = None if request is None or outcome in (LATE, KEEPALIVE) else str(Ping(request))
    if outcome == KEEPALIVE:
        answer: str | None = None if response is None else str(Keepalive(response))
    elif response is not None and request is not None and peer is not None:
        answer = str(Pong(response, request, peer))
    else:
        answer = None
    return {"request": sent, "response": answer}


def exchange_json(row: Sequence[Any]) -> dict[str, Any]:
    """One exchange row as the API shows it (log lines added by the caller)."""
    (row_id, t, client, outcome, request, response, peer, client_sent, server_received,
     server_sent, client_done, c_line, _c_off, s_line, _s_off) = row  # fmt: skip
    rtt = (
        round((client_done - client_sent) * 1000)
        if outcome == ANSWERED and client_done is not None and client_sent is not None
        else None
    )
    delay = (
        round((server_sent - server_received) * 1000)
        if server_sent is not None and server_received is not None and outcome != LATE
        else None
    )
    return {
        "id": row_id,
        "t": t,
        "client": client,
        "outcome": OUTCOMES[outcome],
        "request": request,
        "response": response,
        "peer": peer,
        "times": {
            "client_sent": client_sent,
            "server_received": server_received,
            "server_sent": server_sent,
            "client_done": client_done,
        },
        "round_trip_ms": rtt,
        "delay_ms": delay,
        "wire": _wire(row),
        "log": {
            "client": None if c_line is None or client is None else {
                "file": f"client{client}.log", "line": c_line},
            "server": None if s_line is None else {"file": "server.log", "line": s_line},
        },
    }  # fmt: skip


class RunIndex:
    """Read-only queries over a built (or building) index. Safe to use from one thread at a
    time; open one per request thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = index_path(folder)
        self.db = _connect(self.path, write=False)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> RunIndex:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- status and totals ----------------------------------------------------------

    def status(self) -> dict[str, Any]:
        meta = _meta(self.db)
        files = {
            name: {"lines": lines, "bytes": offset, "size": _size(self.folder / name)}
            for name, offset, lines in self.db.execute("SELECT name, offset, lines FROM files")
        }
        bad_total = self.db.execute("SELECT count(*) FROM bad_lines").fetchone()[0]
        bad = [
            {"file": name, "line": line, "reason": reason}
            for name, line, reason in self.db.execute(
                "SELECT name, line, reason FROM bad_lines ORDER BY name, line LIMIT 100"
            )
        ]
        problems = []
        if "server.log" not in files or not (self.folder / "server.log").exists():
            problems.append("server.log is missing")
        if not any(name != "server.log" for name in files):
            problems.append("no client log (clientN.log)")
        if meta["dropped"]:
            problems.append(f"{meta['dropped']} lines repeat a response number already indexed")
        return {
            "complete": meta["complete"],
            "first": meta["first"],
            "last": meta["last"],
            "files": files,
            "lines": sum(f["lines"] for f in files.values()),
            "bad_lines": bad,
            "bad_lines_total": bad_total,
            "problems": problems,
        }

    def clients(self) -> list[int]:
        return [
            row[0]
            for row in self.db.execute("SELECT DISTINCT client FROM client_seconds ORDER BY 1")
        ]

    def counters(self) -> dict[str, Any]:
        """The live view's counters, over the whole run: server totals, per-client totals
        and round-trip statistics (exact, from the 1 ms histogram)."""
        meta = _meta(self.db)
        if meta["complete"] and "counters" in meta:
            counters: dict[str, Any] = meta["counters"]
            return counters
        return _counters(self.db)

    def round_trip_stats(self) -> dict[str, float] | None:
        """min/avg/p50/p95/max of every round trip of the run, all clients together."""
        count, total, low, high = self.db.execute(
            "SELECT sum(answered), sum(rtt_sum), min(rtt_min), max(rtt_max) FROM client_seconds"
        ).fetchone()
        if not count:
            return None
        histogram = self.db.execute(
            "SELECT ms, sum(n) FROM rtt_hist GROUP BY ms ORDER BY ms"
        ).fetchall()
        return _stats(histogram, count, total, low, high)

    def cdf(self, points: int = 200) -> list[tuple[float, float]]:
        """The round-trip distribution: ``(ms, share of round trips ≤ ms)``, at most ``points``."""
        rows = self.db.execute("SELECT ms, sum(n) FROM rtt_hist GROUP BY ms ORDER BY ms").fetchall()
        total = sum(n for _, n in rows)
        if not total:
            return []
        step = max(1, len(rows) // points)
        seen = 0
        out = []
        for i, (ms, n) in enumerate(rows):
            seen += n
            if i % step == 0 or i == len(rows) - 1:
                out.append((float(ms), round(seen / total, 5)))
        return out

    # -- exchanges ------------------------------------------------------------------

    def exchanges(
        self,
        where: Filter,
        *,
        after: tuple[float, int] | None = None,
        before: tuple[float, int] | None = None,
        limit: int = 100,
    ) -> list[tuple[Any, ...]]:
        """Rows in time order: the first ``limit`` after ``after`` or the last ``limit``
        before ``before`` (then still returned in time order)."""
        # One lower and one upper bound on t, the tighter of the window's and the cursor's:
        # SQLite starts the index scan from a single bound.
        low, low_op = where.start, ">="
        high, high_op = where.end, "<"
        if after is not None and (low is None or after[0] >= low):
            low = after[0]
        if before is not None and (high is None or before[0] < high):
            high, high_op = before[0], "<="
        clause, values = dataclasses.replace(where, start=None, end=None).where()
        if low is not None:
            clause += f" AND t {low_op} ?"
            values.append(low)
        if high is not None:
            clause += f" AND t {high_op} ?"
            values.append(high)
        order = "ASC"
        if after is not None:
            clause += " AND (t > ? OR (t = ? AND id > ?))"
            values += [after[0], after[0], after[1]]
        elif before is not None:
            clause += " AND (t < ? OR (t = ? AND id < ?))"
            values += [before[0], before[0], before[1]]
            order = "DESC"
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM exchanges WHERE {clause} "
            f"ORDER BY t {order}, id {order} LIMIT ?",
            [*values, limit],
        ).fetchall()
        return rows[::-1] if order == "DESC" else rows

    def count(self, where: Filter) -> int:
        """How many exchanges match. Without a request number, the whole settled seconds
        of the window are summed from ``lane_seconds`` and only its edges counted row by
        row, so a count over an hour of a busy run costs milliseconds."""
        if where.request is not None:
            clause, values = where.where()
            return int(self.db.execute(f"SELECT count(*) FROM exchanges WHERE {clause}", values)
                       .fetchone()[0])  # fmt: skip
        settled = _meta(self.db).get("settled", 0)
        inner_from = -(2**62) if where.start is None else math.ceil(where.start)
        inner_to = min(settled, 2**62 if where.end is None else math.floor(where.end))
        if inner_to <= inner_from:
            clause, values = where.where()
            return int(self.db.execute(f"SELECT count(*) FROM exchanges WHERE {clause}", values)
                       .fetchone()[0])  # fmt: skip
        columns = ("answered", "timed_out", "ignored", "late", "keepalive")
        chosen = where.outcomes or tuple(range(len(OUTCOMES)))
        total_sql = " + ".join(columns[o] for o in chosen)
        lanes = [0 if c is None else c for c in where.clients]
        lane_clause = f"AND client IN ({','.join('?' * len(lanes))})" if lanes else ""
        inner = self.db.execute(
            f"SELECT coalesce(sum({total_sql}), 0) FROM lane_seconds "
            f"WHERE second >= ? AND second < ? {lane_clause}",
            [inner_from, inner_to, *lanes],
        ).fetchone()[0]
        edges = 0
        for low, high in ((where.start, inner_from), (inner_to, where.end)):
            part = dataclasses.replace(where, start=low, end=high)
            if low is not None and high is not None and high <= low:
                continue
            clause, values = part.where()
            edges += self.db.execute(
                f"SELECT count(*) FROM exchanges WHERE {clause}", values
            ).fetchone()[0]
        return int(inner + edges)

    def exchange(self, row_id: int) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.db.execute(
            f"SELECT {_COLUMNS} FROM exchanges WHERE id = ?", (row_id,)
        ).fetchone()
        return row

    def exchange_at_line(self, name: str, line: int) -> tuple[Any, ...] | None:
        """The exchange a log line records, if it is indexed."""
        if name == "server.log":
            row: tuple[Any, ...] | None = self.db.execute(
                f"SELECT {_COLUMNS} FROM exchanges WHERE s_line = ? AND s_off = ?",
                (line, self._offset(name, line)),
            ).fetchone()
            return row
        client = client_log_number(name)
        if client is None:
            return None
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM exchanges WHERE client = ? AND c_line = ?", (client, line)
        ).fetchone()
        return row

    def _offset(self, name: str, line: int) -> int | None:
        """Byte offset of a line, from the nearest mark at or before it."""
        mark = self.db.execute(
            "SELECT line, offset FROM marks WHERE name = ? AND line <= ? ORDER BY line DESC "
            "LIMIT 1",
            (name, line),
        ).fetchone()
        if mark is None:
            return None
        number, offset = mark
        if number == line:
            return int(offset)
        try:
            with open(self.folder / name, "rb") as handle:
                handle.seek(offset)
                for _ in range(line - number):
                    raw = handle.readline()
                    if not raw.endswith(b"\n"):
                        return None
                    offset += len(raw)
        except OSError:
            return None
        return int(offset)

    def read_lines(
        self, name: str, line: int, before: int = 0, after: int = 0
    ) -> list[dict[str, Any]]:
        """Lines ``line - before`` … ``line + after`` of a log, as text with their numbers."""
        start = max(1, line - before)
        offset = self._offset(name, start)
        if offset is None:
            return []
        out = []
        with contextlib.suppress(OSError), open(self.folder / name, "rb") as handle:
            handle.seek(offset)
            for number in range(start, line + after + 1):
                raw = handle.readline()
                if not raw:
                    break
                out.append({"line": number, "text": raw.rstrip(b"\n").decode("utf-8", "replace")})
        return out

    def log_lines(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, str | None]]:
        """The client and server log lines that record each row, read from the logs."""
        handles: dict[str, Any] = {}

        def read(name: str, offset: int | None) -> str | None:
            if offset is None:
                return None
            handle = handles.get(name)
            if handle is None:
                try:
                    handle = handles[name] = open(self.folder / name, "rb")  # noqa: SIM115
                except OSError:
                    return None
            handle.seek(offset)
            raw: bytes = handle.readline()
            return raw.rstrip(b"\n").decode("utf-8", "replace")

        try:
            return [
                {
                    "client": None if row[2] is None or row[12] is None
                    else read(f"client{row[2]}.log", row[12]),
                    "server": read("server.log", row[14]),
                }
                for row in rows
            ]  # fmt: skip
        finally:
            for handle in handles.values():
                handle.close()

    # -- timeline and charts ----------------------------------------------------------

    def timeline(self, start: float, end: float, width: int) -> dict[str, Any]:
        """The exchanges in ``[start, end)`` as bars, or, when there are more than fit,
        their counts per lane, outcome and bucket of at least 3 pixels: counted from the
        rows in a mid-sized window, from the totals per second (or ten) in a wide one, so
        that it costs about the same however many exchanges are behind it.

        Bars carry their times as whole milliseconds after ``base`` (a whole second):
        a third of the bytes of epoch seconds, and exact."""
        # Bars end after they start: take those that started up to a timeout earlier.
        reach = self._longest()
        estimate = self._estimate(start - reach, end)
        if estimate <= _MAX_BARS:
            rows = self.db.execute(
                "SELECT id, client, outcome, request, response, peer, client_sent, "
                "server_received, server_sent, client_done, t FROM exchanges "
                "WHERE t >= ? AND t < ? ORDER BY t, id",
                (start - reach, end),
            ).fetchall()
            rows = [r for r in rows if (_end_of(r) or 0) >= start]
            if len(rows) <= _MAX_BARS:
                base = math.floor(start - reach)
                columns = list(zip(*rows, strict=True)) if rows else [()] * len(_BAR_COLUMNS)
                bars: dict[str, list[Any]] = {}
                for name, column in zip(_BAR_COLUMNS, columns, strict=True):
                    if name in _BAR_TIMES:
                        bars[name] = [
                            None if t is None else round((t - base) * 1000) for t in column
                        ]
                    else:
                        bars[name] = list(column)
                return {
                    "mode": "bars",
                    "from": start,
                    "to": end,
                    "width": width,
                    "base": base,
                    "count": len(rows),
                    "bars": bars,
                }
        if estimate <= _MAX_ROWS_COUNTED:
            return self._counted_rows(start, end, width)
        wanted = (end - start) / width * _MIN_BUCKET_PX
        step = next((s for s in _STEPS if s >= wanted), _STEPS[-1])
        first = math.floor(start / step) * step
        buckets = max(1, math.ceil((end - first) / step))
        counts = window_counts(self.db, self.path, _meta(self.db), first, step, buckets, OUTCOMES)
        return {
            "mode": "counts",
            "from": first,
            "to": end,
            "width": buckets,
            "bucket": step,
            "count": sum(sum(s) for lane in counts.values() for s in lane.values()),
            "counts": counts,
        }

    def _counted_rows(self, start: float, end: float, width: int) -> dict[str, Any]:
        """Counts per lane, outcome and bucket of _MIN_BUCKET_PX pixels, from the rows."""
        buckets = max(1, width // _MIN_BUCKET_PX)
        step = (end - start) / buckets
        counts: dict[str, dict[str, list[int]]] = {}
        for bucket, lane, outcome, n in self.db.execute(
            "SELECT CAST((t - ?) / ? AS INTEGER) AS b, coalesce(client, 0) AS lane, outcome, "
            "count(*) FROM exchanges WHERE t >= ? AND t < ? GROUP BY b, lane, outcome",
            (start, step, start, end),
        ):
            if 0 <= bucket < buckets:
                series = counts.setdefault(str(lane) if lane else "server", {})
                series.setdefault(OUTCOMES[outcome], [0] * buckets)[bucket] += n
        return {
            "mode": "counts",
            "from": start,
            "to": end,
            "width": buckets,
            "bucket": step,
            "count": sum(sum(s) for lane in counts.values() for s in lane.values()),
            "counts": counts,
        }

    def _longest(self) -> float:
        """How long an exchange can last, in seconds (the timeout, with slack)."""
        return _settings(self.folder).timeout_ms / 1000 + 1.0

    def _estimate(self, start: float, end: float) -> int:
        """Exchanges in a window, roughly, from the per-second totals (fast on any window)."""
        server = self.db.execute(
            "SELECT coalesce(sum(requests + keepalives), 0) FROM server_seconds "
            "WHERE second >= ? AND second < ?",
            (math.floor(start), math.ceil(end)),
        ).fetchone()[0]
        clients = self.db.execute(
            "SELECT coalesce(sum(keepalives + late), 0), coalesce(sum(sent), 0) "
            "FROM client_seconds WHERE second >= ? AND second < ?",
            (math.floor(start), math.ceil(end)),
        ).fetchone()
        return int(max(server, clients[1]) + clients[0])

    def _buckets(self, start: float, end: float, width: int) -> tuple[int, int, int, int]:
        """Whole-second buckets at least _MIN_BUCKET_PX wide over a window: (seconds per
        bucket, first second, how many, where the ten-second totals stop serving it)."""
        wanted = (end - start) / width * _MIN_BUCKET_PX
        step = next((s for s in _STEPS if s >= wanted), _STEPS[-1])
        first = math.floor(start / step) * step
        buckets = max(1, math.ceil((end - first) / step))
        settled = _meta(self.db).get("settled", 0)
        stop = first + buckets * step
        tens_end = min(settled, stop) // 10 * 10 if step % 10 == 0 else first
        return step, first, buckets, max(first, tens_end)

    def _per_bucket(
        self,
        columns: str,
        table: str,
        where: str,
        start: float,
        end: float,
        width: int,
        group: str = "",
    ) -> tuple[int, int, list[tuple[Any, ...]]]:
        """``(bucket, *group, *columns)`` rows of a per-second table over a window, its
        settled tens of seconds read from the ``*_tens`` table beside it."""
        step, first, buckets, tens_end = self._buckets(start, end, width)
        keys = f"b{', ' + group if group else ''}"
        rows: list[tuple[Any, ...]] = []
        if tens_end > first:
            rows += self.db.execute(
                f"SELECT (ten * 10 - ?) / ? AS b{', ' + group if group else ''}, {columns} "
                f"FROM {table}_tens WHERE ten >= ? AND ten < ? {where} GROUP BY {keys}",
                (first, step, first // 10, tens_end // 10),
            ).fetchall()
        rows += self.db.execute(
            f"SELECT (second - ?) / ? AS b{', ' + group if group else ''}, {columns} "
            f"FROM {table}_seconds WHERE second >= ? AND second < ? {where} GROUP BY {keys}",
            (first, step, tens_end, first + buckets * step),
        ).fetchall()
        return step, first, rows

    def charts(self, start: float, end: float, width: int) -> dict[str, Any]:
        """Round trips per client, rates and server delays over ``[start, end)``, each at
        most ``width`` points a series: from the rows in a short window, from the totals
        per second (and per ten seconds) in a long one."""
        clients = self.clients()
        rtt: dict[str, list[list[float]]] = {}
        if self._estimate(start, end) > _MAX_BARS:
            step, first, rows = self._per_bucket(
                "sum(answered), sum(rtt_sum)",
                "client",
                "AND answered > 0",
                start,
                end,
                width,
                group="client",
            )
            merged: dict[tuple[int, int], list[int]] = {}
            for b, client, n, total in rows:
                known = merged.setdefault((client, b), [0, 0])
                known[0] += n
                known[1] += total
            for (client, b), (n, total) in sorted(merged.items()):
                rtt.setdefault(str(client), []).append(
                    [first + b * step + step / 2, round(total / n, 1)]
                )
        else:
            bucket = max((end - start) / width, 0.001)
            for client, b, avg in self.db.execute(
                "SELECT client, CAST((client_done - ?) / ? AS INTEGER) AS b, "
                "avg(client_done - client_sent) * 1000 FROM exchanges "
                "WHERE outcome = 0 AND t >= ? AND t < ? AND client_done IS NOT NULL "
                "GROUP BY client, b ORDER BY client, b",
                (start, bucket, start - self._longest(), end),
            ):
                if b < 0 or b >= width:
                    continue
                rtt.setdefault(str(client), []).append(
                    [round(start + (b + 0.5) * bucket, 3), round(avg, 1)]
                )
        step, first, buckets, _tens = self._buckets(start, end, width)
        rates: dict[int, dict[str, int]] = {}
        for b, requests, answered, ignored in self.db.execute(
            "SELECT (second - ?) / ? AS b, sum(requests), sum(answered), sum(ignored) "
            "FROM server_seconds WHERE second >= ? AND second < ? GROUP BY b",
            (first, step, first, first + buckets * step),
        ):
            rates[b] = {"requests": requests, "answered": answered, "ignored": ignored,
                        "timed_out": 0}  # fmt: skip
        _step, _first, timeouts = self._per_bucket(
            "sum(timed_out)", "client", "", start, end, width
        )
        for b, timed_out in timeouts:
            empty = {"requests": 0, "answered": 0, "ignored": 0, "timed_out": 0}
            rates.setdefault(b, empty)["timed_out"] += timed_out
        return {
            "from": start,
            "to": end,
            "width": width,
            "clients": clients,
            "round_trips": rtt,
            "rate_step_s": step,
            "rates": [{"t": first + b * step, **counts} for b, counts in sorted(rates.items())],
            "delays": self.delays(start, end),
        }

    def delays(self, start: float | None = None, end: float | None = None) -> dict[str, Any]:
        """The histogram of server delays (20 bins over the delay range) of the answers
        sent in the seconds of a window, or over the whole run."""
        low, bin_width = _delay_bins(_settings(self.folder))
        counts = [0] * DELAY_BINS
        meta = _meta(self.db)
        start = meta["first"] if start is None else start
        end = (None if meta["last"] is None else meta["last"] + 0.001) if end is None else end
        if start is not None and end is not None:
            # The seconds the window touches: whole settled tens from the tens, the rest
            # (its edges, and what is not settled yet) second by second.
            first, stop = math.floor(start), math.ceil(end)
            tens_from = -(-first // 10) * 10
            tens_to = max(tens_from, min(meta.get("settled", 0), stop) // 10 * 10)
            rows = self.db.execute(
                "SELECT bin, sum(n) FROM delay_tens WHERE ten >= ? AND ten < ? GROUP BY bin",
                (tens_from // 10, tens_to // 10),
            ).fetchall()
            rows += self.db.execute(
                "SELECT bin, sum(n) FROM delay_seconds WHERE second >= ? AND second < ? "
                "AND (second < ? OR second >= ?) GROUP BY bin",
                (first, stop, tens_from, tens_to),
            ).fetchall()
            for bin_, n in rows:
                counts[bin_] += n
        return {"low": low, "width": bin_width, "counts": counts}

    def rates_series(self, points: int = 600) -> list[tuple[float, int, int]]:
        """``(seconds since the first, requests, answered)`` per step over the whole run."""
        meta = _meta(self.db)
        if meta["first"] is None:
            return []
        first = math.floor(meta["first"])
        span = max(1, math.ceil(meta["last"]) - first)
        step = max(1, math.ceil(span / points))
        return [
            (float(b * step), requests, answered)
            for b, requests, answered in self.db.execute(
                "SELECT (second - ?) / ? AS b, sum(requests), sum(answered) FROM server_seconds "
                "GROUP BY b ORDER BY b",
                (first, step),
            )
        ]


def _counters(db: sqlite3.Connection) -> dict[str, Any]:
    requests, answered, ignored, keepalives, last_response = db.execute(
        "SELECT coalesce(sum(requests), 0), coalesce(sum(answered), 0), "
        "coalesce(sum(ignored), 0), coalesce(sum(keepalives), 0), max(last_response) "
        "FROM server_seconds"
    ).fetchone()
    clients = []
    rows = db.execute(
        "SELECT client, sum(sent), sum(answered), sum(timed_out), sum(late), sum(keepalives), "
        "sum(rtt_sum), min(rtt_min), max(rtt_max) FROM client_seconds GROUP BY client "
        "ORDER BY client"
    ).fetchall()
    for client, sent, c_answered, timed_out, late, c_keepalives, total, low, high in rows:
        histogram = db.execute(
            "SELECT ms, n FROM rtt_hist WHERE client = ? ORDER BY ms", (client,)
        ).fetchall()
        clients.append(
            {
                "client": client,
                "sent": sent,
                "answered": c_answered,
                "timed_out": timed_out,
                "late": late,
                "keepalives": c_keepalives,
                "round_trip_ms": _stats(histogram, c_answered, total, low, high)
                if c_answered and low is not None and high is not None
                else None,
            }
        )
    return {
        "server": {
            "requests": requests,
            "answered": answered,
            "ignored": ignored,
            "ignored_pct": round(100 * ignored / requests, 2) if requests else 0.0,
            "keepalives": keepalives,
            "last_response": None if last_response is None or last_response < 0 else last_response,
            "bad_lines": db.execute("SELECT count(*) FROM bad_lines").fetchone()[0],
        },
        "clients": clients,
    }


def _stats(
    histogram: list[tuple[int, int]], count: int, total: int, low: int, high: int
) -> dict[str, float]:
    """Round-trip statistics from a 1 ms histogram: percentiles by nearest rank, as
    :func:`pingpong.checking.stats.percentile` computes them from the values."""

    def rank(q: float) -> float:
        wanted = max(1, math.ceil(q * count))
        seen = 0
        for ms, n in histogram:
            seen += n
            if seen >= wanted:
                return float(ms)
        return float(high)

    return {
        "min": float(low),
        "avg": round(total / count, 1),
        "p50": rank(0.5),
        "p95": rank(0.95),
        "max": float(high),
    }


_BAR_TIMES = {"client_sent", "server_received", "server_sent", "client_done", "t"}
_BAR_COLUMNS = (
    "id", "client", "outcome", "request", "response", "peer",
    "client_sent", "server_received", "server_sent", "client_done", "t",
)  # fmt: skip


def _end_of(row: Sequence[Any]) -> float | None:
    """When a timeline bar ends: the latest of its times."""
    times = [t for t in row[6:10] if t is not None]
    return max(times) if times else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.runindex", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--final", action="store_true", help="the run has ended")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        print(f"app.runindex: error: {args.run_dir} is not a folder", file=sys.stderr)
        return 2
    status = update(args.run_dir, final=args.final)
    print(
        json.dumps(
            {
                "lines": status.lines,
                "added": status.added,
                "bad_lines": status.bad_lines,
                "complete": status.complete,
                "rebuilt": status.rebuilt,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
