"""Running a run: child processes, ordering and stop, run.json, the status line, the report."""
