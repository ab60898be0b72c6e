"""Every setting of a run, a server and a client, described once; the CLI, the API and the page
are built from these descriptions.

A :class:`Setting` is one field: its name (as the API and ``run.json`` spell it; the
command-line option is the same with dashes), type, default, bounds, unit, help text,
and the words that tell a person what a valid value looks like. A :class:`Schema` is
the fields of one command plus the rules that tie two fields together. From them:

* ``pingpong run | server | client`` build their options (:mod:`pingpong.__main__`),
* the runner builds each child's command line (:meth:`ServerSettings.argv`),
* the dashboard's API validates a request (:meth:`RunSettings.from_json`), and
* the page builds its form and checks it (``RUN.to_json()`` is in its snapshot).

The bounds: ``clients`` 1–100; ``duration`` 1–86400 s; ``interval_ms`` and
``delay_ms`` pairs of whole milliseconds up to 60000, ``min`` not above ``max``,
interval ``min`` at least 10; ``ignore`` 0–1; ``keepalive_s`` 0.1–3600;
``timeout_ms`` 1–3600000 and above the delay maximum (else every slow answer would
count as lost); ``seed`` 0 to 2**53 − 1 (the page's numbers are exact only that far)
or nothing; ``port`` 0–65535, where 0 lets the system pick a free port.

Messages are written for a person, in one place: they never repeat the field's name
(the CLI puts the option before them, the API puts the field in ``loc``, the page shows
them beside the field) and never echo the value, so the page can show the very same
words without asking the server. A rule between two fields adds the other field's value
(``must be above the server delay maximum (1000 ms)``): the page, which has both values,
adds it the same way.

A rule between two fields (the timeout above the delay maximum) is reported on the
field the person changed: the fields of the rule that the caller set, ``given`` (the
options on the command line, the keys of an API request, the field last edited on the
page); when the caller set none of them, or does not say, on every field of the rule.
So an API request that sets both ``delay_ms`` and ``timeout_ms`` hears about both.
"""

from __future__ import annotations

import ipaddress
import math
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar

from . import runfolder

__all__ = [
    "CLIENT",
    "DEFAULTS",
    "REMOTE_BIND_ENV",
    "RUN",
    "SERVER",
    "SIMULATE",
    "Below",
    "ClientSettings",
    "MsRange",
    "RunSettings",
    "Schema",
    "ServerSettings",
    "Setting",
    "SettingsError",
    "SettingsErrors",
    "SimulatedRunSettings",
    "address_error",
]

T = TypeVar("T")
Kind = Literal["integer", "number", "range", "string"]

MAX_MS = 60_000
MAX_CLIENTS = 100
MAX_SIMULATED_CLIENTS = 1_000_000  # no processes: as many as memory and patience allow
MAX_DURATION_S = 86_400
MAX_TIMEOUT_MS = 3_600_000
MAX_SEED = 2**53 - 1  # the largest integer a browser's numbers hold exactly

#: The dashboard lets a run listen beyond loopback only when started with this set to 1.
REMOTE_BIND_ENV = "PINGPONG_ALLOW_REMOTE_BIND"


class SettingsError(ValueError):
    """One invalid setting: ``field`` is its name as the API spells it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class SettingsErrors(SettingsError):
    """Every invalid setting at once; ``field`` and ``message`` are the first one's."""

    def __init__(self, errors: list[SettingsError]) -> None:
        super().__init__(errors[0].field, errors[0].message)
        self.args = ("; ".join(str(error) for error in errors),)
        self.errors = errors


@dataclass(frozen=True, slots=True)
class MsRange:
    """An inclusive range of milliseconds, ``low`` ≤ ``high``, drawn from uniformly."""

    low: int
    high: int

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)


def _show(number: float) -> str:
    """A bound as a person writes it: ``100``, ``0.1``, ``3600000``."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


_UNIT_WORDS = {"ms": "milliseconds", "s": "seconds"}


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One field. ``minimum``/``maximum`` bound a number, or both ends of a range;
    ``none`` says what leaving a ``nullable`` field out means."""

    name: str
    type: Kind
    default: T
    label: str
    description: str
    unit: str | None = None  # "ms" or "s"
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    none: str = ""
    form: bool = True  # on the dashboard's form
    value_name: str = ""  # the command line's name for a value, when not N, S, MS or MIN-MAX

    # -- names and words -------------------------------------------------------------

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def metavar(self) -> str:
        if self.value_name or self.type == "string":
            return self.value_name or self.name.upper()
        if self.type == "range":
            return "MIN-MAX"
        return {"ms": "MS", "s": "S"}.get(self.unit or "", "N")

    def _bounds(self) -> str:
        low = "" if self.minimum is None else _show(self.minimum)
        if self.maximum is None:
            return f", {low} or more" if low else ""
        return f" from {low} to {_show(self.maximum)}"

    @property
    def message(self) -> str:
        """What a valid value is, as the error says it."""
        return self._describe("")

    def _describe(self, shape: str) -> str:
        of_unit = f" of {_UNIT_WORDS[self.unit]}" if self.unit else ""
        if self.type == "integer":
            text = f"must be a whole number{of_unit}{self._bounds()}"
        elif self.type == "number":
            text = f"must be a number{of_unit}{self._bounds()}"
        elif self.type == "range":
            text = f"{shape or 'min and max must be'} whole numbers{of_unit}{self._bounds()}"
        else:
            text = "must not be empty"
        return f"{text}, or nothing for {self.none}" if self.nullable else text

    @property
    def messages(self) -> dict[str, str]:
        """Every message of the field by what went wrong: ``invalid``; for a range also
        ``order`` (min above max), ``pair`` (JSON not ``[min, max]``) and ``text``
        (command line not ``MIN-MAX``)."""
        found = {"invalid": self.message}
        if self.type == "range":
            found["order"] = "min must not be above max"
            found["pair"] = self._describe("must be a pair [min, max] of")
            found["text"] = f"must be MIN-MAX in milliseconds, like {self.default}"
        return found

    def show(self, value: object) -> str:
        """A value as the command line writes it (``None`` as what it means)."""
        if value is None:
            return self.none
        if isinstance(value, float):
            return _show(value)
        return str(value)

    # -- values ----------------------------------------------------------------------

    def check(self, value: object) -> str | None:
        """The message if ``value`` (a Python value of this field) is invalid, else ``None``."""
        if value is None:
            return None if self.nullable else self.message
        if self.type == "range":
            if not isinstance(value, MsRange):
                return self.messages["pair"]
            if not (self._within(value.low) and self._within(value.high)):
                return self.message
            return None if value.low <= value.high else self.messages["order"]
        if self.type == "string":
            return None if isinstance(value, str) and value else self.message
        valid = _is_int(value) if self.type == "integer" else _is_number(value)
        return None if valid and self._within(value) else self.message

    def _within(self, value: object) -> bool:
        # int against float compares exactly, so a huge int never overflows here; NaN fails.
        if not _is_int(value) and not (self.type == "number" and isinstance(value, float)):
            return False
        assert isinstance(value, int | float)
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        return low <= value <= high

    def from_json(self, value: object) -> object:
        """A JSON value as this field's Python value (a range from ``[min, max]``), unchecked."""
        if self.type == "range":
            if isinstance(value, list) and len(value) == 2:
                return MsRange(value[0], value[1])
            raise SettingsError(self.name, self.messages["pair"])
        return value

    def parse(self, text: str) -> object:
        """A command-line value as this field's Python value, unchecked; raises SettingsError."""
        try:
            if self.type == "integer":
                return int(text)
            if self.type == "number":
                return float(text)
        except ValueError:
            raise SettingsError(self.name, self.message) from None
        if self.type == "range":
            low, sep, high = text.partition("-")
            try:
                return MsRange(int(low), int(high if sep else low))
            except ValueError:
                raise SettingsError(self.name, self.messages["text"]) from None
        return text

    def normal(self, value: object) -> Any:
        """A valid value in its one spelling: numbers as floats."""
        if self.type == "number" and _is_int(value):
            assert isinstance(value, int)
            return float(value)
        return value

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": [self.default.low, self.default.high]
            if isinstance(self.default, MsRange)
            else self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "unit": self.unit,
            "nullable": self.nullable,
            "none": self.none,
            "label": self.label,
            "description": self.description,
            "flag": self.flag,
            "form": self.form,
            "messages": self.messages,
        }


@dataclass(frozen=True)
class Below:
    """A rule between two fields: ``low`` (its ``max`` if a range) must be below ``high``."""

    low: str
    high: str
    messages: Mapping[str, str]  # field → what it says when the rule fails
    unit: str  # of both fields

    def _values(self, values: Mapping[str, object]) -> tuple[float, float]:
        low, high = values[self.low], values[self.high]
        top = low.high if isinstance(low, MsRange) else low
        assert isinstance(top, int | float)
        assert isinstance(high, int | float)
        return top, high

    def holds(self, values: Mapping[str, object]) -> bool:
        top, high = self._values(values)
        return top < high

    def message(self, name: str, values: Mapping[str, object]) -> str:
        """What the rule says on field ``name``, with the other field's value:
        ``must be above the server delay maximum (1000 ms)``."""
        top, high = self._values(values)
        other = high if name == self.low else top
        return f"{self.messages[name]} ({other:g} {self.unit})"

    def to_json(self) -> dict[str, Any]:
        """The page adds the other field's value and the unit, as :meth:`message` does."""
        return {
            "kind": "below",
            "low": self.low,
            "high": self.high,
            "messages": dict(self.messages),
            "unit": self.unit,
        }


@dataclass(frozen=True)
class Schema:
    """The fields of one command, in order, and the rules between them."""

    settings: tuple[Setting[Any], ...]
    rules: tuple[Below, ...] = ()

    def __getitem__(self, name: str) -> Setting[Any]:
        for setting in self.settings:
            if setting.name == name:
                return setting
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [setting.name for setting in self.settings]

    def unknown(self, name: str) -> SettingsError:
        return SettingsError(name, f"is not a setting; the settings are {', '.join(self.names)}")

    def errors(
        self,
        values: Mapping[str, object],
        given: Collection[str] | None = None,
        unknown: Collection[str] = (),
    ) -> list[SettingsError]:
        """Every problem of a full set of Python values; a rule's on the fields ``given``.

        The fields in ``unknown`` are not checked, nor the rules that involve them.
        """
        errors = [
            SettingsError(s.name, message)
            for s in self.settings
            if s.name not in unknown and (message := s.check(values[s.name])) is not None
        ]
        failed = {error.field for error in errors} | set(unknown)
        for rule in self.rules:
            if {rule.low, rule.high} & failed or rule.holds(values):
                continue
            targets = [n for n in (rule.low, rule.high) if given is not None and n in given]
            errors += [
                SettingsError(n, rule.message(n, values)) for n in targets or (rule.low, rule.high)
            ]
        return errors

    def validate(
        self, values: Mapping[str, object], given: Collection[str] | None = None
    ) -> dict[str, Any]:
        """``values`` (defaults fill the gaps) checked and normalized; raises SettingsErrors."""
        for name in values:
            if name not in self.names:
                raise SettingsErrors([self.unknown(name)])
        full = {s.name: values.get(s.name, s.default) for s in self.settings}
        errors = self.errors(full, given)
        if errors:
            raise SettingsErrors(errors)
        return {s.name: s.normal(full[s.name]) for s in self.settings}

    def to_json(self) -> dict[str, Any]:
        """The schema as the page receives it (and as a generator of models would read it)."""
        return {
            "fields": [setting.to_json() for setting in self.settings],
            "rules": [rule.to_json() for rule in self.rules],
        }


# -- the fields ------------------------------------------------------------------------

CLIENTS: Setting[int] = Setting(
    "clients", "integer", 2, "Clients", "how many clients the run starts",
    minimum=1, maximum=MAX_CLIENTS,
)  # fmt: skip
SIMULATED_CLIENTS: Setting[int] = Setting(
    "clients", "integer", 2, "Clients", "how many clients the simulation runs",
    minimum=1, maximum=MAX_SIMULATED_CLIENTS,
)  # fmt: skip
DURATION: Setting[float] = Setting(
    "duration", "number", 300.0, "Duration", "how long the run lasts, in seconds",
    unit="s", minimum=1, maximum=MAX_DURATION_S,
)  # fmt: skip
PROCESS_DURATION: Setting[float | None] = Setting(
    "duration", "number", None, "Duration", "stop after this many seconds",
    unit="s", minimum=1, maximum=MAX_DURATION_S, nullable=True, none="no time limit",
)  # fmt: skip
INTERVAL: Setting[MsRange] = Setting(
    "interval_ms", "range", MsRange(300, 3000), "Send interval",
    "time from one request to the next, start to start: random between MIN and MAX",
    unit="ms", minimum=10, maximum=MAX_MS,
)  # fmt: skip
DELAY: Setting[MsRange] = Setting(
    "delay_ms", "range", MsRange(100, 1000), "Server delay",
    "how long the server waits before it answers: random between MIN and MAX",
    unit="ms", minimum=0, maximum=MAX_MS,
)  # fmt: skip
IGNORE: Setting[float] = Setting(
    "ignore", "number", 0.1, "Ignore probability",
    "probability that the server ignores a request", minimum=0, maximum=1, value_name="P",
)  # fmt: skip
KEEPALIVE: Setting[float] = Setting(
    "keepalive_s", "number", 5.0, "Keepalive", "time between the server's keepalive rounds",
    unit="s", minimum=0.1, maximum=3600,
)  # fmt: skip
TIMEOUT: Setting[int] = Setting(
    "timeout_ms", "integer", 2000, "Timeout",
    "how long a client waits for an answer; above the server delay maximum",
    unit="ms", minimum=1, maximum=MAX_TIMEOUT_MS,
)  # fmt: skip
SEED: Setting[int | None] = Setting(
    "seed", "integer", None, "Seed",
    "makes every random choice repeatable; client K uses SEED + K",
    minimum=0, maximum=MAX_SEED, nullable=True, none="a random seed",
)  # fmt: skip
# A lone server or client is only ever started from the command line, and client K's
# seed is the run's plus K: no upper bound there.
PROCESS_SEED: Setting[int | None] = Setting(
    "seed", "integer", None, "Seed", "makes every random choice repeatable",
    minimum=0, nullable=True, none="a random seed",
)  # fmt: skip
RUN_HOST: Setting[str] = Setting(
    "host", "string", "127.0.0.1", "Host",
    "address the server listens on and the clients connect to", form=False,
)  # fmt: skip
SERVER_HOST: Setting[str] = Setting(
    "host", "string", "127.0.0.1", "Host", "address to listen on", form=False
)
CLIENT_HOST: Setting[str] = Setting(
    "host", "string", "127.0.0.1", "Host", "address of the server", form=False
)
RUN_PORT: Setting[int] = Setting(
    "port", "integer", 0, "Port", "TCP port of the server; 0 lets the system pick a free one",
    minimum=0, maximum=65535, form=False,
)  # fmt: skip
SERVER_PORT: Setting[int] = Setting(
    "port", "integer", 8888, "Port", "TCP port to listen on; 0 lets the system pick a free one",
    minimum=0, maximum=65535, form=False,
)  # fmt: skip
CLIENT_PORT: Setting[int] = Setting(
    "port", "integer", 8888, "Port", "TCP port of the server",
    minimum=1, maximum=65535, form=False,
)  # fmt: skip
SERVER_LOG: Setting[str] = Setting(
    "log_file", "string", runfolder.SERVER_LOG, "Log file", "file to append the log to",
    form=False, value_name="FILE",
)  # fmt: skip
CLIENT_LOG: Setting[str] = Setting(
    "log_file", "string", runfolder.client_log_name(1), "Log file", "file to append the log to",
    form=False, value_name="FILE",
)  # fmt: skip

TIMEOUT_ABOVE_DELAY = Below(
    "delay_ms", "timeout_ms",
    {"delay_ms": "max must be below the timeout",
     "timeout_ms": "must be above the server delay maximum"},
    "ms",
)  # fmt: skip

#: ``pingpong run``, the API's ``POST /api/start`` body and the page's form.
RUN = Schema(
    (CLIENTS, DURATION, INTERVAL, DELAY, IGNORE, KEEPALIVE, TIMEOUT, SEED, RUN_HOST, RUN_PORT),
    (TIMEOUT_ABOVE_DELAY,),
)
#: ``pingpong simulate`` and a simulated run's ``run.json``: a run's settings, with far
#: more clients and no address (nothing listens).
SIMULATE = Schema(
    (SIMULATED_CLIENTS, DURATION, INTERVAL, DELAY, IGNORE, KEEPALIVE, TIMEOUT, SEED),
    (TIMEOUT_ABOVE_DELAY,),
)
#: ``pingpong server``.
SERVER = Schema(
    (SERVER_HOST, SERVER_PORT, SERVER_LOG, PROCESS_DURATION, PROCESS_SEED, DELAY, IGNORE, KEEPALIVE)
)
#: ``pingpong client``.
CLIENT = Schema(
    (CLIENT_HOST, CLIENT_PORT, CLIENT_LOG, PROCESS_DURATION, PROCESS_SEED, INTERVAL, TIMEOUT)
)


# -- the settings objects ----------------------------------------------------------------


class _Settings:
    """What the three settings classes share: checked on construction, built from a schema."""

    __slots__ = ()
    schema: ClassVar[Schema]
    command: ClassVar[str]

    def __post_init__(self) -> None:
        errors = self.schema.errors(self.values())
        if errors:
            raise SettingsErrors(errors)

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.schema.names}

    def argv(self) -> list[str]:
        """The command line that starts a process with exactly these settings."""
        argv = [self.command]
        for setting in self.schema.settings:
            value = getattr(self, setting.name)
            if value is not None:
                argv += [setting.flag, setting.show(value)]
        return argv


@dataclass(frozen=True, slots=True)
class ServerSettings(_Settings):
    schema: ClassVar[Schema] = SERVER
    command: ClassVar[str] = "server"

    host: str = SERVER_HOST.default
    port: int = SERVER_PORT.default
    log_file: str = SERVER_LOG.default
    duration: float | None = PROCESS_DURATION.default
    seed: int | None = PROCESS_SEED.default
    delay_ms: MsRange = DELAY.default
    ignore: float = IGNORE.default
    keepalive_s: float = KEEPALIVE.default


@dataclass(frozen=True, slots=True)
class ClientSettings(_Settings):
    schema: ClassVar[Schema] = CLIENT
    command: ClassVar[str] = "client"

    host: str = CLIENT_HOST.default
    port: int = CLIENT_PORT.default
    log_file: str = CLIENT_LOG.default
    duration: float | None = PROCESS_DURATION.default
    seed: int | None = PROCESS_SEED.default
    interval_ms: MsRange = INTERVAL.default
    timeout_ms: int = TIMEOUT.default


@dataclass(frozen=True, slots=True)
class RunSettings(_Settings):
    """What a run is started with: ``pingpong run`` options and the API's JSON body."""

    schema: ClassVar[Schema] = RUN
    command: ClassVar[str] = "run"

    clients: int = CLIENTS.default
    duration: float = DURATION.default
    interval_ms: MsRange = INTERVAL.default
    delay_ms: MsRange = DELAY.default
    ignore: float = IGNORE.default
    keepalive_s: float = KEEPALIVE.default
    timeout_ms: int = TIMEOUT.default
    seed: int | None = SEED.default
    host: str = RUN_HOST.default
    port: int = RUN_PORT.default

    def server(self, log_file: str) -> ServerSettings:
        """The server's settings in this run (no duration: the runner stops it)."""
        return ServerSettings(
            host=self.host, port=self.port, log_file=log_file, seed=self.seed,
            delay_ms=self.delay_ms, ignore=self.ignore, keepalive_s=self.keepalive_s,
        )  # fmt: skip

    def client(self, number: int, log_file: str, port: int) -> ClientSettings:
        """Client ``number``'s settings; its seed is the run's plus its number."""
        return ClientSettings(
            host=self.host, port=port, log_file=log_file,
            seed=None if self.seed is None else self.seed + number,
            interval_ms=self.interval_ms, timeout_ms=self.timeout_ms,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The settings as the API and ``run.json`` spell them."""
        data = self.values()
        data["interval_ms"] = [self.interval_ms.low, self.interval_ms.high]
        data["delay_ms"] = [self.delay_ms.low, self.delay_ms.high]
        return data

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], *, resolve: bool = False, loopback_only: bool = False
    ) -> RunSettings:
        """Validate a JSON object of settings; every field is optional.

        Raises :class:`SettingsErrors` listing every invalid field, type errors
        included (``true`` is not a number of clients, ``2.5`` is not one either).
        With ``resolve``, the host must resolve (a blocking lookup), and with
        ``loopback_only`` only to loopback addresses.
        """
        errors: list[SettingsError] = []
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name not in cls.schema.names:
                errors.append(cls.schema.unknown(name))
                continue
            try:
                values[name] = cls.schema[name].from_json(value)
            except SettingsError as error:
                errors.append(error)
        failed = {error.field for error in errors}
        full: dict[str, Any] = {s.name: values.get(s.name, s.default) for s in cls.schema.settings}
        errors += cls.schema.errors(full, data.keys(), unknown=failed)
        if resolve and not any(error.field == "host" for error in errors):
            message = address_error(str(full["host"]), loopback_only=loopback_only)
            if message is not None:
                errors.append(SettingsError("host", message))
        if errors:
            raise SettingsErrors(errors)
        return cls(**{s.name: s.normal(full[s.name]) for s in cls.schema.settings})


@dataclass(frozen=True, slots=True)
class SimulatedRunSettings(RunSettings):
    """A simulated run's settings (``pingpong simulate``): its host and port are unused."""

    schema: ClassVar[Schema] = SIMULATE
    command: ClassVar[str] = "simulate"


def address_error(host: str, *, loopback_only: bool) -> str | None:
    """Why ``host`` cannot be used as an address, or ``None``; looks the name up (blocking).

    ``loopback_only``: every address the name resolves to must be a loopback one
    (``127.0.0.0/8``, ``::1``), as the dashboard requires unless told otherwise.
    """
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return "is not an address or a name this machine can resolve"
    if loopback_only:
        addresses = {str(info[4][0]).partition("%")[0] for info in found}
        if not all(ipaddress.ip_address(address).is_loopback for address in addresses):
            return (
                "must be a loopback address, such as 127.0.0.1, ::1 or localhost: the dashboard "
                f"starts runs on other addresses only when started with {REMOTE_BIND_ENV}=1"
            )
    return None


#: The defaults of every run setting, as JSON.
DEFAULTS: dict[str, Any] = RunSettings().to_json()
