"""Counts in words."""

from __future__ import annotations

from pingpong.core.words import counted


def test_counted() -> None:
    assert counted(1, "client") == "1 client"
    assert counted(0, "client") == "0 clients"
    assert counted(2, "keepalive") == "2 keepalives"
    assert counted(1, "finding") == "1 finding"
    assert counted(3, "copy", "copies") == "3 copies"
