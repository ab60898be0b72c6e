"""Settings: one description per field, the checks and messages shared by the CLI, the API and
the page."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from typing import Any

import pytest

from pingpong.core.settings import (
    CLIENT,
    DEFAULTS,
    RUN,
    SERVER,
    ClientSettings,
    MsRange,
    RunSettings,
    Schema,
    ServerSettings,
    SettingsError,
    SettingsErrors,
    address_error,
)

MAX_SEED = 2**53 - 1


def errors_of(body: dict[str, Any], **options: bool) -> dict[str, str]:
    with pytest.raises(SettingsErrors) as caught:
        RunSettings.from_json(body, **options)
    return {error.field: error.message for error in caught.value.errors}


def test_defaults_are_the_documented_ones() -> None:
    assert DEFAULTS == {
        "clients": 2, "duration": 300.0, "interval_ms": [300, 3000], "delay_ms": [100, 1000],
        "ignore": 0.1, "keepalive_s": 5.0, "timeout_ms": 2000, "seed": None,
        "host": "127.0.0.1", "port": 0,
    }  # fmt: skip
    assert ServerSettings().port == ClientSettings().port == 8888
    assert ServerSettings().duration is None


@pytest.mark.parametrize(
    ("kind", "schema"), [(RunSettings, RUN), (ServerSettings, SERVER), (ClientSettings, CLIENT)]
)
def test_each_class_is_its_schema(kind: type[Any], schema: Schema) -> None:
    """The dataclasses hold exactly the schema's fields, in order, with its defaults."""
    assert [f.name for f in fields(kind)] == schema.names
    assert [f.default for f in fields(kind)] == [s.default for s in schema.settings]
    for setting in schema.settings:  # the page and a later model generator read these
        assert setting.type in ("integer", "number", "range", "string")
        assert setting.description
        if setting.type in ("integer", "number", "range"):
            assert setting.minimum is not None


def test_schema_as_json() -> None:
    schema = json.loads(json.dumps(RUN.to_json()))
    assert {f["name"]: f["default"] for f in schema["fields"]} == DEFAULTS
    timeout = next(f for f in schema["fields"] if f["name"] == "timeout_ms")
    assert timeout | {"messages": None} == {
        "name": "timeout_ms", "type": "integer", "default": 2000, "minimum": 1,
        "maximum": 3600000, "unit": "ms", "nullable": False, "none": "", "label": "Timeout",
        "description": timeout["description"], "flag": "--timeout-ms", "form": True,
        "messages": None,
    }  # fmt: skip
    assert schema["rules"] == [
        {"kind": "below", "low": "delay_ms", "high": "timeout_ms",
         "messages": {"delay_ms": "max must be below the timeout",
                      "timeout_ms": "must be above the server delay maximum"},
         "unit": "ms"}
    ]  # fmt: skip
    assert [f["name"] for f in schema["fields"] if f["form"]] == [
        "clients", "duration", "interval_ms", "delay_ms", "ignore", "keepalive_s", "timeout_ms",
        "seed",
    ]  # fmt: skip


def test_json_round_trip() -> None:
    settings = RunSettings(clients=5, interval_ms=MsRange(10, 20), seed=3)
    assert RunSettings.from_json(settings.to_json()) == settings
    assert RunSettings.from_json({}) == RunSettings()
    assert RunSettings.from_json({"duration": 60}).duration == 60.0
    assert isinstance(RunSettings.from_json({"duration": 60}).duration, float)


def test_command_line_values() -> None:
    assert RUN["delay_ms"].parse("100-1000") == MsRange(100, 1000)
    assert RUN["delay_ms"].parse("0") == MsRange(0, 0)
    assert str(MsRange(1, 2)) == "1-2"
    assert RUN["ignore"].parse("0.25") == 0.25
    with pytest.raises(SettingsError, match="MIN-MAX in milliseconds, like 100-1000"):
        RUN["delay_ms"].parse("abc")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"clients": 0}, "clients", "must be a whole number from 1 to 100"),
        ({"clients": 101}, "clients", "must be a whole number from 1 to 100"),
        ({"clients": True}, "clients", "must be a whole number from 1 to 100"),
        ({"clients": 2.5}, "clients", "must be a whole number from 1 to 100"),
        ({"duration": 0.5}, "duration", "must be a number of seconds from 1 to 86400"),
        ({"duration": "10"}, "duration", "must be a number of seconds from 1 to 86400"),
        ({"interval_ms": [5, 10]}, "interval_ms",
         "min and max must be whole numbers of milliseconds from 10 to 60000"),
        ({"interval_ms": [3000, 300]}, "interval_ms", "min must not be above max"),
        ({"delay_ms": [0, 60001]}, "delay_ms",
         "min and max must be whole numbers of milliseconds from 0 to 60000"),
        ({"delay_ms": [1, 2, 3]}, "delay_ms",
         "must be a pair [min, max] of whole numbers of milliseconds from 0 to 60000"),
        ({"delay_ms": "100-1000"}, "delay_ms",
         "must be a pair [min, max] of whole numbers of milliseconds from 0 to 60000"),
        ({"ignore": -0.1}, "ignore", "must be a number from 0 to 1"),
        ({"ignore": float("nan")}, "ignore", "must be a number from 0 to 1"),
        ({"ignore": float("inf")}, "ignore", "must be a number from 0 to 1"),
        ({"keepalive_s": 0.05}, "keepalive_s", "must be a number of seconds from 0.1 to 3600"),
        ({"timeout_ms": 1000}, "timeout_ms", "must be above the server delay maximum (1000 ms)"),
        ({"timeout_ms": 0}, "timeout_ms",
         "must be a whole number of milliseconds from 1 to 3600000"),
        ({"seed": "x"}, "seed",
         "must be a whole number from 0 to 9007199254740991, or nothing for a random seed"),
        ({"seed": -1}, "seed",
         "must be a whole number from 0 to 9007199254740991, or nothing for a random seed"),
        ({"port": 65536}, "port", "must be a whole number from 0 to 65535"),
        ({"port": -1}, "port", "must be a whole number from 0 to 65535"),
        ({"port": "80"}, "port", "must be a whole number from 0 to 65535"),
        ({"host": ""}, "host", "must not be empty"),
        ({"host": 5}, "host", "must not be empty"),
        ({"speed": 3}, "speed", "is not a setting; the settings are clients, duration, "
         "interval_ms, delay_ms, ignore, keepalive_s, timeout_ms, seed, host, port"),
    ],
)  # fmt: skip
def test_invalid_fields_are_named_in_plain_words(
    body: dict[str, Any], field: str, message: str
) -> None:
    assert errors_of(body) == {field: message}


def test_every_message_reads_like_a_sentence() -> None:
    """No notation from code: no operators, no null/None, no repr of the value."""
    for schema in (RUN, SERVER, CLIENT):
        texts = [m for s in schema.settings for m in s.messages.values()]
        texts += [m for rule in schema.rules for m in rule.messages.values()]
        for text in texts:
            assert not re.search(r"<=|>=|<|null|None|got|e\+", text), text


@pytest.mark.parametrize(
    "body",
    [
        {"duration": int("1" + "0" * 400)},  # OverflowError once, converted to float first
        {"ignore": int("1" + "0" * 400)},
        {"keepalive_s": -int("1" + "0" * 400)},
        {"timeout_ms": int("1" + "0" * 400)},
        {"seed": 10**23},  # a 23-digit seed
        {"seed": 1e23},
        {"seed": MAX_SEED + 1},
    ],
)
def test_huge_numbers_are_invalid_not_errors(body: dict[str, Any]) -> None:
    (message,) = errors_of(body).values()
    assert "e+" not in message
    assert "must be" in message


def test_the_largest_seed_a_page_holds_exactly_is_valid() -> None:
    assert RunSettings.from_json({"seed": MAX_SEED}).seed == MAX_SEED
    assert RunSettings.from_json({"seed": 0}).seed == 0
    # A lone client's seed is the run's plus its number: no upper bound there.
    assert RunSettings(seed=MAX_SEED).client(100, "c.log", 1).seed == MAX_SEED + 100


def test_a_rule_between_two_fields_is_reported_on_the_one_given() -> None:
    # Raising the delay maximum past the timeout: the delay is what changed.
    assert errors_of({"delay_ms": [0, 2500]}) == {
        "delay_ms": "max must be below the timeout (2000 ms)"
    }
    # Lowering the timeout below the delay maximum: the timeout is what changed. The
    # message says the other field's value, which the person may not have in view.
    assert errors_of({"timeout_ms": 500}) == {
        "timeout_ms": "must be above the server delay maximum (1000 ms)"
    }
    # Both given: both hear about it.
    assert errors_of({"delay_ms": [0, 2500], "timeout_ms": 2000}) == {
        "delay_ms": "max must be below the timeout (2000 ms)",
        "timeout_ms": "must be above the server delay maximum (2500 ms)",
    }
    # Not said (built in Python): both.
    with pytest.raises(SettingsErrors) as caught:
        RunSettings(delay_ms=MsRange(0, 5000))
    assert sorted(e.field for e in caught.value.errors) == ["delay_ms", "timeout_ms"]
    # A field that is itself invalid does not also fail the rule.
    assert list(errors_of({"delay_ms": "x", "timeout_ms": 500})) == ["delay_ms"]
    assert RunSettings.from_json({"delay_ms": [0, 1999]}).delay_ms == MsRange(0, 1999)


def test_every_invalid_field_is_reported_at_once() -> None:
    found = errors_of({"clients": 0, "ignore": 2, "seed": 1.5, "colour": "red"})
    assert sorted(found) == ["clients", "colour", "ignore", "seed"]


def test_client_seeds_derive_from_the_run_seed() -> None:
    settings = RunSettings(seed=10)
    assert settings.client(3, "c.log", 1234).seed == 13
    assert settings.server("s.log").seed == 10
    assert RunSettings().client(1, "c.log", 1).seed is None


def test_child_command_lines_come_from_the_settings() -> None:
    settings = RunSettings(seed=7, delay_ms=MsRange(0, 0), ignore=0.25, keepalive_s=0.5)
    assert settings.server("s.log").argv() == [
        "server", "--host", "127.0.0.1", "--port", "0", "--log-file", "s.log",
        "--seed", "7", "--delay-ms", "0-0", "--ignore", "0.25", "--keepalive-s", "0.5",
    ]  # fmt: skip
    assert settings.client(2, "c.log", 4242).argv() == [
        "client", "--host", "127.0.0.1", "--port", "4242", "--log-file", "c.log",
        "--seed", "9", "--interval-ms", "300-3000", "--timeout-ms", "2000",
    ]  # fmt: skip


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    assert address_error(host, loopback_only=True) is None
    assert RunSettings.from_json({"host": host}, resolve=True, loopback_only=True).host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "8.8.8.8"])
def test_other_hosts_need_the_opt_in(host: str) -> None:
    message = errors_of({"host": host}, resolve=True, loopback_only=True)["host"]
    assert message.startswith("must be a loopback address")
    assert "PINGPONG_ALLOW_REMOTE_BIND=1" in message
    assert RunSettings.from_json({"host": host}, resolve=True).host == host


@pytest.mark.parametrize("host", ["999.1.1.1", "no-such-host.invalid", "a" * 300, "a\0b"])
def test_unresolvable_hosts_are_invalid(host: str) -> None:
    assert errors_of({"host": host}, resolve=True) == {
        "host": "is not an address or a name this machine can resolve"
    }
