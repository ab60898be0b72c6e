"""The simulator: real run folders from virtual time, faults, and the seeded property sweep.

The sweep runs ``PINGPONG_SIM_SEEDS`` seeds (default 300) from ``PINGPONG_SIM_FIRST``
(default 0), each with its own settings, network and faults drawn from the seed, and
requires every run to pass the check with no finding. A longer sweep::

    PINGPONG_SIM_SEEDS=5000 python -m pytest tests/test_simulate.py -k sweep

A failing seed is reported with the ``pingpong simulate`` command that replays it.
"""

from __future__ import annotations

import json
import os
import random
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.history import list_runs
from app.main import create_app
from pingpong.__main__ import main
from pingpong.checking.check import check_run
from pingpong.core import server_session
from pingpong.core.diagnostics import ClientConnected, Listening, parse_diagnostic
from pingpong.core.logformat import (
    Answered,
    Ignored,
    TimedOut,
    Unpaired,
    parse_client_line,
    parse_server_line,
)
from pingpong.core.protocol import Ping, Pong
from pingpong.core.settings import MsRange, SimulatedRunSettings
from pingpong.simulation.command import DEFAULT_START, simulate_run
from pingpong.simulation.engine import LogFiles, Network, Simulation
from pingpong.simulation.faults import (
    OVERLONG,
    Cut,
    Fault,
    Inject,
    ServerStop,
    Stall,
    random_faults,
)

LOGS = ("server.log", "client1.log", "client2.log", "server.out", "server.err", "client1.err")


def simulate(
    folder: Path,
    faults: list[Fault] | None = None,
    network: Network | None = None,
    **settings: Any,
) -> dict[str, Any]:
    settings.setdefault("seed", 7)
    description = simulate_run(
        SimulatedRunSettings(**settings), folder, network=network, faults=faults
    )
    return description


def findings(description: dict[str, Any]) -> list[str]:
    return [f"{r['name']}: {f}" for r in description["check"]["rules"] for f in r["findings"]]


def server_records(folder: Path) -> list[Any]:
    text = (folder / "server.log").read_text(encoding="utf-8")
    return [parse_server_line(line) for line in text.splitlines()]


def client_records(folder: Path, number: int) -> list[Any]:
    text = (folder / f"client{number}.log").read_text(encoding="utf-8")
    return [parse_client_line(line) for line in text.splitlines()]


def test_a_default_run_passes_in_well_under_a_second(tmp_path: Path) -> None:
    started = time.perf_counter()
    description = simulate(tmp_path)
    took = time.perf_counter() - started
    assert findings(description) == []
    assert all(rule["checked"] for rule in description["check"]["rules"])
    assert description["simulated"] is True
    assert description["elapsed"] == pytest.approx(300, abs=2.5)  # the last timeouts
    summary = description["summary"]
    assert 300 < summary["server"]["requests"] < 500
    assert summary["server"]["keepalives"] == 120  # 60 rounds, 2 copies each
    assert took < 5  # about 0.1 s on an idle machine; CI machines are busy
    assert json.loads((tmp_path / "run.json").read_text())["check"]["ok"] is True


def test_the_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    faults: list[Fault] = [Cut(20, 1, 1.0), Stall(40, 2, 3.0), Inject(50, 1, b"hello\n")]
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        simulate(tmp_path / name, faults, duration=90, seed=seed)
    for log in LOGS:
        assert (tmp_path / "a" / log).read_bytes() == (tmp_path / "b" / log).read_bytes(), log
    assert (tmp_path / "a" / "server.log").read_bytes() != (
        tmp_path / "c" / "server.log"
    ).read_bytes()


def test_a_simulated_run_looks_like_a_real_one(tmp_path: Path) -> None:
    simulate(tmp_path, clients=3, duration=30)
    out = [parse_diagnostic(line) for line in (tmp_path / "server.out").read_text().splitlines()]
    assert out[0] == Listening("127.0.0.1", 8888)
    assert out[1:4] == [ClientConnected(n, f"simulated client {n}") for n in (1, 2, 3)]
    for number in (1, 2, 3):
        records = client_records(tmp_path, number)
        first = next(r for r in records if isinstance(r, Answered))
        assert first.response.client == number  # clientK.log is client K
        (request0,) = [r for r in records if getattr(r, "request", None) == Ping(0)]
        assert request0.request_time == datetime(2026, 1, 1)  # sent at the start
    err = (tmp_path / "client1.err").read_text().splitlines()
    assert err[0] == "client: connected to 127.0.0.1:8888"
    assert err[-4] == "client: stopping (supervisor closed stdin): 0 requests in flight"
    assert err[-3].startswith("client: stopped after ")
    # The simulator's instants are exact: its timers are never late.
    assert err[-2].startswith("client: send lateness p50 0.00 p99 0.00 max 0.00 ms (n=")
    assert err[-1].startswith("client: timeout lateness p50 0.00 p99 0.00 max 0.00 ms (n=")
    server_err = (tmp_path / "server.err").read_text().splitlines()
    assert server_err[0] == "server: stopping (supervisor closed stdin)"
    assert server_err[2].startswith("server: stopped after ")


def test_log_files_hold_little_and_write_whole_lines(tmp_path: Path) -> None:
    simulate(tmp_path / "big", duration=60)
    (tmp_path / "small").mkdir()
    files = LogFiles(tmp_path / "small", limit=100)  # writes out all the time
    start = DEFAULT_START.replace(tzinfo=timezone.utc).timestamp()
    Simulation(SimulatedRunSettings(duration=60, seed=7), files, start=start).run()
    for log in LOGS:
        assert (tmp_path / "small" / log).read_bytes() == (tmp_path / "big" / log).read_bytes()


# -- faults, one at a time -------------------------------------------------------------


def test_a_cut_connection_is_made_again_with_a_new_client_number(tmp_path: Path) -> None:
    description = simulate(tmp_path, [Cut(30, 1, down=0.5)], duration=60)
    assert findings(description) == []
    err = (tmp_path / "client1.err").read_text()
    assert "connection lost (connection error: connection reset by peer); reconnecting" in err
    assert "cannot connect to 127.0.0.1:8888 (network is unreachable); retrying in" in err
    numbers = [
        r.response.client
        for r in client_records(tmp_path, 1)
        if isinstance(r, Answered | Unpaired) and isinstance(r.response, Pong)
    ]
    assert numbers[0] == 1
    assert numbers[-1] == 3  # the third connection the server saw
    (outage,) = description["simulation"]["outages"]["1"]
    assert outage["kind"] == "lost"
    assert outage["start"] == "2026-01-01T00:00:30.000"
    assert outage["connection"] == 1


def test_a_client_that_stops_reading_gets_its_answers_late(tmp_path: Path) -> None:
    description = simulate(
        tmp_path, [Stall(20, 2, duration=6.0)], duration=60, interval_ms=MsRange(300, 300)
    )
    assert findings(description) == []
    records = client_records(tmp_path, 2)
    late = [r for r in records if isinstance(r, Unpaired) and isinstance(r.response, Pong)]
    assert late  # answers that came after their requests had timed out
    assert all(r.response_time.second == 26 for r in late)  # all read when it read again
    timed_out = [r for r in records if isinstance(r, TimedOut)]
    assert len(timed_out) > len(late) / 2


def test_garbage_is_reported_and_nothing_else_happens(tmp_path: Path) -> None:
    faults: list[Fault] = [
        Inject(10, 1, b"hello\n"),
        Inject(11, 1, b"\xff\xfe PING\n"),
        Inject(12, 2, b"garbage\n", to_server=False),
    ]
    description = simulate(tmp_path, faults, duration=30)
    assert findings(description) == []
    assert description["simulation"]["outages"] == {}
    server_err = (tmp_path / "server.err").read_text()
    assert "server: client 1: not a request: 'hello'; not answered" in server_err
    assert "server: client 1: not ASCII: b'\\xff\\xfe PING'; not answered" in server_err
    assert "client: not a response: 'garbage'; skipped" in (tmp_path / "client2.err").read_text()


def test_an_overlong_line_ends_the_connection_on_either_side(tmp_path: Path) -> None:
    faults: list[Fault] = [Inject(10, 1, OVERLONG), Inject(12, 2, OVERLONG, to_server=False)]
    description = simulate(tmp_path, faults, duration=30)
    assert findings(description) == []
    server_err = (tmp_path / "server.err").read_text()
    assert "server: client 1: line longer than 1024 bytes; closing the connection" in server_err
    assert "server: client 1: closed (line too long)" in server_err
    assert (
        "connection lost (closed by the server); reconnecting"
        in (tmp_path / "client1.err").read_text()
    )
    client2 = (tmp_path / "client2.err").read_text()
    assert "connection lost (line longer than 1024 bytes); reconnecting" in client2


def test_a_server_stopped_mid_request_answers_it_first(tmp_path: Path) -> None:
    settings: dict[str, Any] = {"duration": 20, "delay_ms": MsRange(900, 900), "ignore": 0.0}
    simulate(tmp_path / "calm", **settings)  # the same run, up to the stop
    calm = server_records(tmp_path / "calm")
    answer = next(r for r in calm if isinstance(r, Answered) and r.request_time.second >= 5)
    stop_at = (answer.request_time - datetime(2026, 1, 1)).total_seconds() + 0.3
    description = simulate(tmp_path / "stop", [ServerStop(stop_at)], **settings)
    assert findings(description) == []
    server_err = (tmp_path / "stop" / "server.err").read_text().splitlines()
    stopping = server_err.index("server: stopping (fault: server stop)")
    assert server_err[stopping + 1].startswith("server: stopping: 2 connections, ")
    assert not server_err[stopping + 1].endswith(" 0 answers still to send")
    stopped = server_records(tmp_path / "stop")
    assert answer in stopped  # sent, after the stop, as it would have been
    assert answer.response_time > datetime(2026, 1, 1) + timedelta(seconds=stop_at)
    client_err = (tmp_path / "stop" / "client1.err").read_text()
    assert "(connection refused); retrying in 1.00 s" in client_err


def test_the_checker_accepts_only_what_the_outages_explain(tmp_path: Path) -> None:
    faults: list[Fault] = [Cut(30, 1, down=2.0), Stall(50, 2, duration=5.0)]
    assert findings(simulate(tmp_path, faults, duration=90, seed=2)) == []
    meta = json.loads((tmp_path / "run.json").read_text())
    del meta["simulation"]["outages"]
    (tmp_path / "run.json").write_text(json.dumps(meta))
    failed = {rule.name for rule in check_run(tmp_path).rules if not rule.ok}
    assert failed == {"timeouts ignored", "intervals"}


# -- the property sweep -----------------------------------------------------------------


def sweep_case(seed: int) -> list[str]:
    """The ``pingpong simulate`` options of sweep case ``seed``: settings, network, faults."""
    draw = random.Random(f"sweep {seed}")
    clients = draw.randint(1, 6)
    duration = round(draw.uniform(5, 60), 3)
    faults = {
        "cuts": draw.randint(0, 4),
        "stalls": draw.randint(0, 3),
        "garbage": draw.randint(0, 6),
        "overlong": draw.randint(0, 3),
        "server_stop": int(draw.random() < 0.25),
    }
    return [
        "--seed", str(seed), "--clients", str(clients), "--duration", repr(duration),
        "--interval-ms", draw.choice(["300-3000", "10-300", "50-50"]),
        "--delay-ms", draw.choice(["100-1000", "0-0", "0-1000", "1000-1000"]),
        "--ignore", draw.choice(["0.1", "0", "0.5", "1"]),
        "--keepalive-s", draw.choice(["5", "0.5", "0.1"]),
        "--timeout-ms", "2000",
        "--latency-ms", draw.choice(["0.05", "1", "20"]),
        "--jitter-ms", draw.choice(["0.02", "0", "5"]),
        "--faults", ",".join(f"{kind}={count}" for kind, count in faults.items()),
    ]  # fmt: skip


def run_case(options: list[str], folder: Path) -> list[str]:
    values = dict(zip(options[::2], options[1::2], strict=True))
    settings = SimulatedRunSettings(
        clients=int(values["--clients"]),
        duration=float(values["--duration"]),
        interval_ms=MsRange(*map(int, values["--interval-ms"].split("-"))),
        delay_ms=MsRange(*map(int, values["--delay-ms"].split("-"))),
        ignore=float(values["--ignore"]),
        keepalive_s=float(values["--keepalive-s"]),
        timeout_ms=int(values["--timeout-ms"]),
        seed=int(values["--seed"]),
    )
    counts = {k: int(v) for k, v in (part.split("=") for part in values["--faults"].split(","))}
    faults = random_faults(
        random.Random(f"faults {settings.seed}"), settings.clients, settings.duration, **counts
    )
    network = Network(float(values["--latency-ms"]), float(values["--jitter-ms"]))
    return findings(simulate_run(settings, folder, network=network, faults=faults))


SWEEP_FIRST = int(os.environ.get("PINGPONG_SIM_FIRST", "0"))
SWEEP_SEEDS = int(os.environ.get("PINGPONG_SIM_SEEDS", "300"))


@pytest.mark.timeout(max(120, SWEEP_SEEDS))  # a longer sweep takes longer
def test_sweep_every_seeded_run_passes_the_check(tmp_path: Path) -> None:
    failures = []
    for seed in range(SWEEP_FIRST, SWEEP_FIRST + SWEEP_SEEDS):
        options = sweep_case(seed)
        found = run_case(options, tmp_path / str(seed))
        if found:
            failures.append(
                f"seed {seed}: {found[:3]}\n  replay: pingpong simulate {' '.join(options)}"
            )
    assert not failures, "\n".join(failures)


def test_a_sweep_case_is_replayed_exactly_by_its_command(tmp_path: Path) -> None:
    options = sweep_case(11)
    run_case(options, tmp_path / "sweep")
    assert main(["simulate", *options, "--log-dir", str(tmp_path / "cli")]) == 0
    for log in ("server.log", "client1.log", "server.err"):
        assert (tmp_path / "sweep" / log).read_bytes() == (tmp_path / "cli" / log).read_bytes()


# -- the command line ---------------------------------------------------------------------


def test_simulate_command_writes_a_run_the_dashboard_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert main(["simulate", "--duration", "20", "--seed", "5", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "2 clients for 20 s, simulated (seed 5)" in out
    assert "check: PASS" in out
    (run,) = list_runs(runs)
    assert run["simulated"] is True
    assert run["check"]["ok"] is True
    assert run["logs"][:3] == ["server.log", "client1.log", "client2.log"]
    assert main(["check", str(runs / run["id"])]) == 0


def test_simulated_time_starts_where_asked(tmp_path: Path) -> None:
    options = ["--duration", "5", "--seed", "1", "--start", "2030-12-31T23:59:58"]
    assert main(["simulate", *options, "--log-dir", str(tmp_path)]) == 0
    lines = (tmp_path / "client1.log").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("2030-12-31;23:59:58.000;[0] PING;")
    assert lines[-1].startswith("2031-01-01;")  # across midnight, as a real run would
    assert json.loads((tmp_path / "run.json").read_text())["started_at"] == (
        "2030-12-31T23:59:58.000"
    )


def test_simulate_without_a_seed_draws_and_records_one(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    assert main(["simulate", "--duration", "5", "--log-dir", str(folder), "--no-check"]) == 0
    meta = json.loads((folder / "run.json").read_text())
    assert isinstance(meta["settings"]["seed"], int)
    assert meta["check"] is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--clients", "0"], "argument --clients: must be a whole number from 1 to 1000000"),
        (["--timeout-ms", "500"], "argument --timeout-ms: must be above the server delay maximum"),
        (["--faults", "floods=1"], "argument --faults: unknown fault 'floods'"),
        (["--latency-ms", "-1"], "argument --latency-ms: must be between 0 and 60000, got -1"),
        (["--jitter-ms", "nan"], "argument --jitter-ms: must be between 0 and 60000, got nan"),
        (["--delay-ms", "900-100"], "argument --delay-ms: min must not be above max"),
        (["--start", "2026-05-01T10:00:00+02:00"], "argument --start: the simulated local time"),
    ],
)
def test_invalid_options_exit_2_with_one_line(
    options: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["simulate", "--runs-dir", str(tmp_path / "runs"), *options])
    except SystemExit as exit:  # what argparse itself refuses
        code = exit.code  # type: ignore[assignment]
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # nothing started


def test_the_dashboard_serves_a_simulated_run_like_any_other(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert main(["simulate", "--duration", "20", "--seed", "5", "--runs-dir", str(runs)]) == 0
    with TestClient(create_app(runs), base_url="http://localhost") as client:
        (listed,) = client.get("/api/runs").json()
        assert listed["simulated"] is True
        detail = client.get(f"/api/runs/{listed['id']}").json()
        assert detail["check"]["ok"] is True
        assert detail["summary"]["server"]["requests"] > 0
        log = client.get(f"/api/runs/{listed['id']}/logs/client2.log")
        assert log.status_code == 200
        assert log.text.startswith("2026-01-01;00:00:00.000;[0] PING;")
        assert client.get("/").status_code == 200


def test_an_outage_excuses_nothing_outside_it(tmp_path: Path) -> None:
    description = simulate(tmp_path, [Cut(30, 1, down=2.0)], duration=90, seed=2)
    assert findings(description) == []
    # A timeout of client 2, which had no outage, whose ignored request is taken away.
    records = client_records(tmp_path, 2)
    timed_out = next(r for r in records if isinstance(r, TimedOut))
    lines = (tmp_path / "server.log").read_text(encoding="utf-8").splitlines(keepends=True)
    ignored = f";{timed_out.request};(проигнорировано);(проигнорировано)\n"
    (index,) = [
        n
        for n, line in enumerate(lines)
        if line.endswith(ignored)
        and isinstance(record := parse_server_line(line), Ignored)
        and 0 <= (record.request_time - timed_out.request_time).total_seconds() < 1
    ]
    del lines[index]
    (tmp_path / "server.log").write_text("".join(lines), encoding="utf-8")
    failed = {rule.name: rule.findings for rule in check_run(tmp_path).rules if not rule.ok}
    assert list(failed) == ["timeouts ignored"]
    (finding,) = failed["timeouts ignored"]
    assert finding.startswith("client2.log:")
    assert finding.endswith(f"{timed_out.request} timed out but the server did not ignore it")


def test_past_the_in_flight_cap_the_server_reads_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_session, "MAX_IN_FLIGHT", 2)
    description = simulate(
        tmp_path,
        clients=1,
        duration=2,
        interval_ms=MsRange(50, 50),
        delay_ms=MsRange(120, 120),
        ignore=0.0,
    )
    assert findings(description) == []
    received = {
        r.request.request: r.request_time
        for r in server_records(tmp_path)
        if isinstance(r, Answered)
    }
    sent = {r.request.request: r.request_time for r in client_records(tmp_path, 1)}
    waited = [(received[n] - sent[n]).total_seconds() for n in sent]
    assert max(waited) > 0.02  # read once answers made room, not when it arrived
    assert len(received) == len(sent)  # and none lost


def test_clients_start_in_turn_so_client_k_is_number_k(tmp_path: Path) -> None:
    # Client 1's first attempt fails: the others wait for it, as pingpong run makes them.
    description = simulate(tmp_path, [Cut(0.0, 1, down=0.5)], clients=3, duration=10)
    assert findings(description) == []
    out = (tmp_path / "server.out").read_text().splitlines()
    assert out[1:4] == [f"client {n} connected from simulated client {n}" for n in (1, 2, 3)]
    assert "(network is unreachable); retrying in" in (tmp_path / "client1.err").read_text()
