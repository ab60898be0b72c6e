"""The server's stdout lines that the runner and the dashboard follow."""

from __future__ import annotations

import pytest

from pingpong.core.diagnostics import (
    ClientConnected,
    ClientDisconnected,
    Diagnostic,
    Listening,
    format_diagnostic,
    parse_diagnostic,
)


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (Listening("127.0.0.1", 8888), "listening on 127.0.0.1:8888\n"),
        (Listening("::1", 8888), "listening on ::1:8888\n"),
        (ClientConnected(3, "127.0.0.1:51234"), "client 3 connected from 127.0.0.1:51234\n"),
        (ClientDisconnected(3), "client 3 disconnected\n"),
    ],
)
def test_round_trip(event: Diagnostic, line: str) -> None:
    assert format_diagnostic(event) == line
    assert parse_diagnostic(line) == event


def test_other_lines_are_not_events() -> None:
    assert parse_diagnostic("server: stopping (duration reached)") is None
    assert parse_diagnostic("") is None
