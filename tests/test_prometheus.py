"""A real Prometheus (Debian's package) scrapes a real dashboard during a run.

It is started from the README's own ``prometheus.yml`` (pointed at this test's uvicorn,
scraping every second) on a free port, with its data in the test's folder, and stopped
whether the test passes or not. The README's queries then have to give the run's
own totals, as the page shows them.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, Dashboard

PROMETHEUS = shutil.which("prometheus")
RUN = {"clients": 2, "duration": 6, "interval_ms": [50, 200], "delay_ms": [100, 400],
       "timeout_ms": 600, "keepalive_s": 0.5}  # fmt: skip

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="needs Debian's prometheus (.ci/run installs it)"
)


def readme_monitoring() -> tuple[str, list[str]]:
    """The README's prometheus.yml and its PromQL queries, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Monitoring with Prometheus", 1)[1].split("\n## ", 1)[0]
    config = re.findall(r"^```yaml\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    queries = re.findall(r"^```promql\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert len(config) == 1
    return config[0], [query.strip() for query in queries]


class Prometheus:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> dict[str, float]:
        """An instant query: each series' value, keyed by its labels as text."""
        data = self.get("/api/v1/query", query=promql)
        assert data["resultType"] == "vector", data
        return {_labels(item["metric"]): float(item["value"][1]) for item in data["result"]}

    def query_range(self, promql: str, start: float, end: float) -> dict[str, list[float]]:
        data = self.get("/api/v1/query_range", query=promql, start=start, end=end, step=0.5)
        return {_labels(item["metric"]): [float(v) for _t, v in item["values"]]
                for item in data["result"]}  # fmt: skip

    def wait_for(self, promql: str, expected: dict[str, float], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        got: dict[str, float] = {}
        while time.monotonic() < deadline:
            got = self.query(promql)
            if got == expected:
                return
            time.sleep(0.2)
        raise AssertionError(f"{promql}: {got}, expected {expected}")


def _labels(metric: dict[str, str]) -> str:
    keep = {k: v for k, v in metric.items() if k not in ("__name__", "job", "instance")}
    return ",".join(f"{k}={v}" for k, v in sorted(keep.items()))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def prometheus(dashboard: Dashboard, tmp_path: Path) -> Iterator[Prometheus]:
    assert PROMETHEUS is not None
    config, _queries = readme_monitoring()
    assert '"localhost:8000"' in config
    assert "scrape_interval: 5s" in config
    config = config.replace('"localhost:8000"', f'"127.0.0.1:{dashboard.port}"')
    config = config.replace("scrape_interval: 5s", "scrape_interval: 1s")
    (tmp_path / "prometheus.yml").write_text(config, encoding="utf-8")
    port = _free_port()
    log = tmp_path / "prometheus.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        server = Prometheus(port)
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{server.url}/-/ready", timeout=5) as response,
            ):
                if response.status == 200:
                    break
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_prometheus_scrapes_a_run_and_the_readme_queries_give_its_totals(
    dashboard: Dashboard, prometheus: Prometheus
) -> None:
    _config, (answers_per_s, ignored_share, p95_ms) = readme_monitoring()
    # Scraped while idle: the state set says so, and the target is healthy.
    prometheus.wait_for(
        'pingpong_run_state{pingpong_run_state="idle"}', {"pingpong_run_state=idle": 1}
    )
    (target,) = prometheus.get("/api/v1/targets")["activeTargets"]
    assert target["health"] == "up", target

    code, run = dashboard.request("POST", "/api/start", RUN)
    assert code == 202
    began = time.time()
    prometheus.wait_for(
        'pingpong_run_state{pingpong_run_state="running"}', {"pingpong_run_state=running": 1}
    )
    status = dashboard.wait_for_state("finished", "failed", timeout=60)
    assert status["state"] == "finished"
    summary = status["run"]["summary"]
    server = summary["server"]

    # Prometheus catches up with the run's end: every counter as the summary says.
    prometheus.wait_for(
        "pingpong_server_requests_total",
        {"outcome=answered": server["answered"], "outcome=ignored": server["ignored"]},
    )
    clients = {str(c["client"]): c for c in summary["clients"]}
    prometheus.wait_for(
        "pingpong_client_requests_total",
        {f"client={n},outcome={o}": c[o] for n, c in clients.items()
         for o in ("answered", "timed_out")},
    )  # fmt: skip
    assert prometheus.query("pingpong_server_keepalives_total") == {"": server["keepalives"]}
    assert prometheus.query("pingpong_server_last_response_number") == {"": server["last_response"]}
    assert prometheus.query("pingpong_client_keepalives_total") == {
        f"client={n}": c["keepalives"] for n, c in clients.items()
    }
    assert prometheus.query("pingpong_client_late_responses_total") == {
        f"client={n}": c["late"] for n, c in clients.items()
    }
    assert prometheus.query("pingpong_client_round_trip_seconds_count") == {
        f"client={n}": c["answered"] for n, c in clients.items()
    }
    averages = prometheus.query(
        "1000 * pingpong_client_round_trip_seconds_sum / pingpong_client_round_trip_seconds_count"
    )
    for n, c in clients.items():
        assert averages[f"client={n}"] == pytest.approx(c["round_trip_ms"]["avg"], abs=0.051)
    (info,) = prometheus.get("/api/v1/query", query="pingpong_run_info")["result"]
    assert info["metric"]["run"] == run["id"]
    prometheus.wait_for(
        'pingpong_run_state{pingpong_run_state="finished"}', {"pingpong_run_state=finished": 1}
    )
    assert prometheus.query("pingpong_runs_ended_total") == {"state=failed": 0, "state=finished": 1}

    # The README's queries give the page's numbers.
    share = prometheus.query(ignored_share)
    assert share == {"": pytest.approx(100 * server["ignored"] / server["requests"])}
    assert share[""] == pytest.approx(server["ignored_pct"], abs=0.005)
    p95 = prometheus.query(p95_ms)
    assert set(p95) == {f"client={n}" for n in clients}
    for n, c in clients.items():
        # histogram_quantile interpolates inside the bucket holding the exact p95.
        assert abs(p95[f"client={n}"] - c["round_trip_ms"]["p95"]) <= 50, (p95, c)
    (rate,) = prometheus.query(answers_per_s).values()
    assert 0 < rate * 60 <= server["answered"] * 1.2  # a minute's increase, extrapolated

    # Counters rose during the run and never went back; no reset within it.
    # (Up to a second past now: the steps stop at the end, the last scrape may be after one.)
    rises = prometheus.query_range("sum(pingpong_server_requests_total)", began, time.time() + 1)
    (values,) = rises.values()
    assert values == sorted(values)
    assert len(set(values)) > 3, values
    assert values[-1] == server["requests"]
    resets = prometheus.query("resets(pingpong_client_requests_total[5m])")
    assert set(resets.values()) == {0}
