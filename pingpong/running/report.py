"""``python -m pingpong.running.report RUN_DIR [--slack-ms S]``: a run's check and totals as JSON.

The runner runs this in a child process when a run ends. Checking parses every line
of every log: for a long run that is seconds of work and a hundred MiB of records,
which in the runner's own process would hold up its event loop (the dashboard's
viewers would wait) and leave a long-lived app's memory high.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..checking.check import check_logs, parse_slack
from ..checking.runlogs import load_run
from ..checking.stats import summarize_logs

__all__ = ["main", "report"]


def report(folder: Path, slack_ms: float | None = None) -> dict[str, Any]:
    """``{"check": …, "summary": …}`` for the run in ``folder``, its logs read once."""
    logs = load_run(folder)
    return {"check": check_logs(logs, slack_ms).to_json(), "summary": summarize_logs(logs)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pingpong.running.report")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--slack-ms", type=parse_slack, default=None)
    args = parser.parse_args(argv)
    json.dump(report(args.run_dir, args.slack_ms), sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
