"""The benchmark's load generators against an in-process server on a real socket."""

from __future__ import annotations

from pathlib import Path

from pingpong.benchmarking.loadgen import measure_answers, run_fleet

from .conftest import run, serving


def test_windowed_connections_count_answers(tmp_path: Path) -> None:
    async def scenario() -> float:
        async with serving(tmp_path) as s:
            return await measure_answers(s.port, connections=3, window=5, seconds=0.3)

    assert run(scenario()) > 100


def test_a_fleet_of_simulated_clients(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, int]:
        async with serving(tmp_path, delay_ms=(10, 50), keepalive_s=0.5) as s:
            fleet = await run_fleet(s.port, clients=20, seconds=2)
            return fleet.sent, fleet.answered, fleet.timeouts

    sent, answered, timeouts = run(scenario())
    assert sent > 5
    assert answered == sent  # every request answered, none timed out
    assert timeouts == 0
