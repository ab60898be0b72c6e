"""Words for people: a count with its noun, singular or plural."""

from __future__ import annotations

__all__ = ["counted"]


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 keepalive``, ``2 keepalives``, ``0 clients``; ``plural`` when not noun + "s"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
