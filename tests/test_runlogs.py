"""Loading a run folder: how late the server and clients measured their timers (stderr)."""

from __future__ import annotations

from pathlib import Path

from pingpong.checking.runlogs import (
    ClientLateness,
    TimerLateness,
    load_run,
    parse_client_lateness,
    parse_lateness,
    read_client_lateness,
    read_lateness,
)
from pingpong.core.lateness import Lateness

STDERR = (
    "server: client 2: closed (connection reset)\n"
    "server: stopping: 2 connections, 0 answers still to send\n"
    "server: stopped after 345 responses to 2 clients\n"
    "server: answer lateness p50 0.92 p99 21.40 max 38.87 ms (n=303)\n"
    "server: keepalive lateness p50 0.40 p99 1.10 max 1.25 ms (n=60)\n"
)


def test_the_lateness_lines_give_each_maximum() -> None:
    assert parse_lateness(STDERR) == TimerLateness(answers_ms=38.87, keepalives_ms=1.25)


def test_the_server_writes_what_is_parsed() -> None:
    # The line as the server writes it, from the histogram's own description.
    lateness = Lateness()
    for seconds in (0.001, 0.0389, 0.002):
        lateness.add(seconds)
    line = f"server: answer lateness {lateness.describe()}\n"
    assert parse_lateness(line) == TimerLateness(answers_ms=38.9)


def test_anything_else_is_passed_over() -> None:
    assert parse_lateness("") == TimerLateness()
    assert parse_lateness("server: answer lateness p50 0.9") == TimerLateness()  # cut short
    assert parse_lateness("server: answer lateness max nan ms\n") == TimerLateness()
    assert parse_lateness("server: answer lateness max -3.0 ms\n") == TimerLateness()
    assert parse_lateness("client: timed out after 2022 ms, max 40 ms\n") == TimerLateness()
    # Two lines of a kind (a log appended twice): the larger counts.
    twice = "answer lateness p50 1 p99 2 max 5.00 ms\nanswer lateness p50 1 p99 2 max 9.50 ms\n"
    assert parse_lateness(twice) == TimerLateness(answers_ms=9.5)


def test_read_from_the_end_of_a_missing_or_long_file(tmp_path: Path) -> None:
    assert read_lateness(tmp_path / "server.err") == TimerLateness()
    long = tmp_path / "long.err"
    with open(long, "wb") as file:
        file.write(b"server: client 1: bad line \xff\n" * 20_000)  # not even UTF-8
        file.write(STDERR.encode())
    assert long.stat().st_size > 500_000
    assert read_lateness(long) == TimerLateness(38.87, 1.25)


def test_a_run_folder_without_server_err_knows_nothing(tmp_path: Path) -> None:
    (tmp_path / "server.log").write_text("")
    assert load_run(tmp_path).server_lateness == TimerLateness()
    (tmp_path / "server.err").write_text(STDERR)
    assert load_run(tmp_path).server_lateness == TimerLateness(38.87, 1.25)


CLIENT_STDERR = (
    "client: connected to 127.0.0.1:8888\n"
    "client: stopping (supervisor closed stdin): 1 requests in flight\n"
    "client: stopped after 120 requests\n"
    "client: send lateness p50 0.31 p99 12.10 max 17.25 ms (n=120)\n"
    "client: timeout lateness p50 0.50 p99 44.00 max 45.00 ms (n=7)\n"
)


def test_a_clients_lateness_lines_give_each_maximum() -> None:
    assert parse_client_lateness(CLIENT_STDERR) == ClientLateness(17.25, 45.0)
    assert parse_client_lateness(STDERR) == ClientLateness()  # a server's are not a client's
    assert parse_lateness(CLIENT_STDERR) == TimerLateness()
    assert parse_client_lateness("client: timeout lateness p50 0.5 p9") == ClientLateness()
    # The line as the client writes it, from the histogram's own description.
    lateness = Lateness()
    lateness.add(0.0404)
    assert parse_client_lateness(f"client: send lateness {lateness.describe()}\n") == (
        ClientLateness(sends_ms=40.4)
    )


def test_each_client_err_is_read_from_its_end(tmp_path: Path) -> None:
    (tmp_path / "server.log").write_text("")
    (tmp_path / "client1.log").write_text("")
    (tmp_path / "client2.log").write_text("")
    with open(tmp_path / "client2.err", "wb") as file:
        file.write(b"client: not a response: '\xff'; skipped\n" * 20_000)
        file.write(CLIENT_STDERR.encode())
    assert read_client_lateness(tmp_path / "client1.err") == ClientLateness()
    assert load_run(tmp_path).client_lateness == {
        1: ClientLateness(),
        2: ClientLateness(17.25, 45.0),
    }
