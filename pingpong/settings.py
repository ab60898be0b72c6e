"""Settings of a run, a server and a client: defaults, bounds and validation in one place.

The command line and the dashboard's API accept the same settings and must refuse
the same values with the same words, so both go through this module. Every check
names the field it is about (``SettingsError.field``), which the CLI prints and
the API turns into FastAPI's per-field ``detail`` list.

Bounds (SPEC §3, §9): ``clients`` 1–100; ``duration`` 1–86400 s; ``interval_ms``
and ``delay_ms`` pairs with 0 ≤ min ≤ max ≤ 60000, interval min ≥ 10;
``ignore`` 0–1; ``keepalive_s`` 0.1–3600; ``timeout_ms`` greater than the delay
maximum (else every slow answer would count as lost) and at most 3600000;
``seed`` an integer or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

__all__ = [
    "DEFAULTS",
    "ClientSettings",
    "MsRange",
    "RunSettings",
    "ServerSettings",
    "SettingsError",
    "SettingsErrors",
    "SimulatedRunSettings",
    "parse_range",
]

MAX_MS = 60_000
MIN_INTERVAL_MS = 10
MAX_CLIENTS = 100
MAX_SIMULATED_CLIENTS = 1_000_000
MAX_DURATION_S = 86_400.0
MAX_TIMEOUT_MS = 3_600_000


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


def _collect(*checks: Callable[[], None]) -> None:
    """Run every check; raise all their errors together."""
    errors: list[SettingsError] = []
    for check in checks:
        try:
            check()
        except SettingsErrors as many:
            errors += many.errors
        except SettingsError as error:
            errors.append(error)
    if errors:
        raise SettingsErrors(errors)


@dataclass(frozen=True, slots=True)
class MsRange:
    """An inclusive range of milliseconds, ``low`` ≤ ``high``, drawn from uniformly."""

    low: int
    high: int

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


def parse_range(text: str, name: str) -> MsRange:
    """``"100-1000"`` → ``MsRange(100, 1000)``; a single number means both ends."""
    low, sep, high = text.partition("-")
    try:
        result = MsRange(int(low), int(high if sep else low))
    except ValueError:
        raise SettingsError(name, f"expected MIN-MAX in milliseconds, got {text!r}") from None
    _check_range(result, name, minimum=0)
    return result


def _check_range(value: MsRange, name: str, *, minimum: int) -> None:
    if not minimum <= value.low <= value.high <= MAX_MS:
        raise SettingsError(
            name, f"must satisfy {minimum} <= min <= max <= {MAX_MS}, got {value.low}-{value.high}"
        )


def _check_number(value: float, name: str, low: float, high: float) -> None:
    if not low <= value <= high:
        raise SettingsError(name, f"must be between {low:g} and {high:g}, got {value:g}")


def _check_port(port: int) -> None:
    if not 0 <= port <= 65535:
        raise SettingsError("port", f"must be between 0 and 65535, got {port}")


def _check_duration(duration: float | None) -> None:
    if duration is not None:
        _check_number(duration, "duration", 1, MAX_DURATION_S)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8888
    log_file: str = "server.log"
    duration: float | None = None
    seed: int | None = None
    delay_ms: MsRange = field(default_factory=lambda: MsRange(100, 1000))
    ignore: float = 0.1
    keepalive_s: float = 5.0

    def __post_init__(self) -> None:
        _collect(
            lambda: _check_port(self.port),
            lambda: _check_duration(self.duration),
            lambda: _check_range(self.delay_ms, "delay_ms", minimum=0),
            lambda: _check_number(self.ignore, "ignore", 0, 1),
            lambda: _check_number(self.keepalive_s, "keepalive_s", 0.1, 3600),
        )


@dataclass(frozen=True, slots=True)
class ClientSettings:
    host: str = "127.0.0.1"
    port: int = 8888
    log_file: str = "client1.log"
    duration: float | None = None
    seed: int | None = None
    interval_ms: MsRange = field(default_factory=lambda: MsRange(300, 3000))
    timeout_ms: int = 2000

    def __post_init__(self) -> None:
        _collect(
            lambda: _check_port(self.port),
            lambda: _check_duration(self.duration),
            lambda: _check_range(self.interval_ms, "interval_ms", minimum=MIN_INTERVAL_MS),
            lambda: _check_number(self.timeout_ms, "timeout_ms", 1, MAX_TIMEOUT_MS),
        )


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What a run is started with: ``pingpong run`` options and the API's JSON body."""

    max_clients: ClassVar[int] = MAX_CLIENTS

    clients: int = 2
    duration: float = 300.0
    interval_ms: MsRange = field(default_factory=lambda: MsRange(300, 3000))
    delay_ms: MsRange = field(default_factory=lambda: MsRange(100, 1000))
    ignore: float = 0.1
    keepalive_s: float = 5.0
    timeout_ms: int = 2000
    seed: int | None = None
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        _collect(
            lambda: _check_number(self.clients, "clients", 1, self.max_clients),
            lambda: _check_duration(self.duration),
            lambda: _check_range(self.interval_ms, "interval_ms", minimum=MIN_INTERVAL_MS),
            lambda: _check_range(self.delay_ms, "delay_ms", minimum=0),
            lambda: _check_number(self.ignore, "ignore", 0, 1),
            lambda: _check_number(self.keepalive_s, "keepalive_s", 0.1, 3600),
            self._check_timeout,
            lambda: _check_port(self.port),
        )

    def _check_timeout(self) -> None:
        if not self.delay_ms.high < self.timeout_ms <= MAX_TIMEOUT_MS:
            raise SettingsError(
                "timeout_ms",
                f"must be greater than the delay maximum ({self.delay_ms.high}) "
                f"and at most {MAX_TIMEOUT_MS}, got {self.timeout_ms}",
            )

    def server(self, log_file: str, port: int | None = None) -> ServerSettings:
        """The server's settings in this run (no duration: the runner stops it)."""
        return ServerSettings(
            host=self.host,
            port=self.port if port is None else port,
            log_file=log_file,
            seed=self.seed,
            delay_ms=self.delay_ms,
            ignore=self.ignore,
            keepalive_s=self.keepalive_s,
        )

    def client(self, number: int, log_file: str, port: int) -> ClientSettings:
        """Client ``number``'s settings; its seed is the run's plus its number."""
        return ClientSettings(
            host=self.host,
            port=port,
            log_file=log_file,
            seed=None if self.seed is None else self.seed + number,
            interval_ms=self.interval_ms,
            timeout_ms=self.timeout_ms,
        )

    def to_json(self) -> dict[str, Any]:
        """The settings as the API and ``run.json`` spell them."""
        data = asdict(self)
        data["interval_ms"] = [self.interval_ms.low, self.interval_ms.high]
        data["delay_ms"] = [self.delay_ms.low, self.delay_ms.high]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSettings:
        """Validate a JSON object of settings; every field is optional.

        Raises :class:`SettingsErrors` listing every invalid field, type errors
        included (``true`` is not a number of clients, ``2.5`` is not one either).
        """
        errors: list[SettingsError] = []
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            if name not in known:
                errors.append(SettingsError(name, "unknown setting"))
                continue
            try:
                kwargs[name] = _convert(name, value)
            except SettingsError as error:
                errors.append(error)
        if not errors:
            return cls(**kwargs)  # raises SettingsErrors for values out of bounds
        # Also report the bounds of the fields that did convert.
        try:
            cls(**kwargs)
        except SettingsErrors as bounds:
            errors += [e for e in bounds.errors if e.field not in {x.field for x in errors}]
        raise SettingsErrors(errors)


@dataclass(frozen=True, slots=True)
class SimulatedRunSettings(RunSettings):
    """A simulated run's settings (``pingpong simulate``): no processes, so up to a
    million clients; the rest as :class:`RunSettings`."""

    max_clients: ClassVar[int] = MAX_SIMULATED_CLIENTS


_INTEGERS = {"clients", "timeout_ms", "port"}
_NUMBERS = {"duration", "ignore", "keepalive_s"}
_RANGES = {"interval_ms", "delay_ms"}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _convert(name: str, value: object) -> object:
    if name in _INTEGERS:
        if not _is_int(value):
            raise SettingsError(name, f"must be an integer, got {value!r}")
        return value
    if name in _NUMBERS:
        if not (_is_int(value) or isinstance(value, float)):
            raise SettingsError(name, f"must be a number, got {value!r}")
        return float(value)  # type: ignore[arg-type]
    if name in _RANGES:
        if not (isinstance(value, list) and len(value) == 2 and all(map(_is_int, value))):
            raise SettingsError(name, f"must be a pair of integers [min, max], got {value!r}")
        result = MsRange(value[0], value[1])
        _check_range(result, name, minimum=MIN_INTERVAL_MS if name == "interval_ms" else 0)
        return result
    if name == "seed":
        if value is not None and not _is_int(value):
            raise SettingsError(name, f"must be an integer or null, got {value!r}")
        return value
    if name == "host":
        if not isinstance(value, str) or not value:
            raise SettingsError(name, "must be a non-empty string")
        return value
    raise SettingsError(name, "unknown setting")  # pragma: no cover - guarded by the caller


#: The defaults of every run setting, as JSON (the page's form starts from these).
DEFAULTS: dict[str, Any] = RunSettings().to_json()
