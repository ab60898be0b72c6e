"""Settings: defaults, bounds and per-field errors shared by the CLI and the API."""

from __future__ import annotations

from typing import Any

import pytest

from pingpong.settings import DEFAULTS, MsRange, RunSettings, SettingsErrors, parse_range


def test_defaults_are_the_spec() -> None:
    assert DEFAULTS == {
        "clients": 2, "duration": 300.0, "interval_ms": [300, 3000], "delay_ms": [100, 1000],
        "ignore": 0.1, "keepalive_s": 5.0, "timeout_ms": 2000, "seed": None,
        "host": "127.0.0.1", "port": 0,
    }  # fmt: skip


def test_json_round_trip() -> None:
    settings = RunSettings(clients=5, interval_ms=MsRange(10, 20), seed=3)
    assert RunSettings.from_json(settings.to_json()) == settings
    assert RunSettings.from_json({}) == RunSettings()


def test_parse_range() -> None:
    assert parse_range("100-1000", "delay_ms") == MsRange(100, 1000)
    assert parse_range("0", "delay_ms") == MsRange(0, 0)
    assert str(MsRange(1, 2)) == "1-2"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"clients": 0}, "clients", "between 1 and 100"),
        ({"clients": 101}, "clients", "between 1 and 100"),
        ({"clients": True}, "clients", "must be an integer"),
        ({"clients": 2.5}, "clients", "must be an integer"),
        ({"duration": 0.5}, "duration", "between 1 and 86400"),
        ({"duration": "10"}, "duration", "must be a number"),
        ({"interval_ms": [5, 10]}, "interval_ms", "10 <= min <= max <= 60000"),
        ({"interval_ms": [3000, 300]}, "interval_ms", "min <= max"),
        ({"delay_ms": [0, 60001]}, "delay_ms", "<= 60000"),
        ({"delay_ms": [1, 2, 3]}, "delay_ms", "pair of integers"),
        ({"delay_ms": "100-1000"}, "delay_ms", "pair of integers"),
        ({"ignore": -0.1}, "ignore", "between 0 and 1"),
        ({"ignore": float("nan")}, "ignore", "between 0 and 1"),
        ({"keepalive_s": 0.05}, "keepalive_s", "between 0.1 and 3600"),
        ({"timeout_ms": 1000}, "timeout_ms", "greater than the delay maximum (1000)"),
        ({"delay_ms": [0, 5000]}, "timeout_ms", "greater than the delay maximum (5000)"),
        ({"seed": "x"}, "seed", "integer or null"),
        ({"speed": 3}, "speed", "unknown setting"),
    ],
)
def test_invalid_fields_are_named(body: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(SettingsErrors) as caught:
        RunSettings.from_json(body)
    assert [error.field for error in caught.value.errors] == [field]
    assert words in caught.value.errors[0].message


def test_every_invalid_field_is_reported_at_once() -> None:
    with pytest.raises(SettingsErrors) as caught:
        RunSettings.from_json({"clients": 0, "ignore": 2, "seed": 1.5})
    assert sorted(e.field for e in caught.value.errors) == ["clients", "ignore", "seed"]


def test_client_seeds_derive_from_the_run_seed() -> None:
    settings = RunSettings(seed=10)
    assert settings.client(3, "c.log", 1234).seed == 13
    assert settings.server("s.log").seed == 10
    assert RunSettings().client(1, "c.log", 1).seed is None
