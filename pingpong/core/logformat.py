"""The two log formats (``server.log``, ``clientN.log``): records, exact text, parsing — no I/O.

Both logs share one shape, five fields separated by ``;`` with nothing added::

    DATE;REQUEST_TIME;REQUEST;RESPONSE_TIME;RESPONSE

``DATE`` is ``YYYY-MM-DD`` and times are ``HH:MM:SS.mmm`` (local time, milliseconds
truncated, exactly three digits). On the server the request time is when the request
arrived and the response time when the answer was sent; on a client the request
time is when the request was sent and the response time when the answer (or the
timeout) came. A record is one of four kinds:

=============  ====================================================================
``Answered``   ``2026-11-26;13:01:02.345;[4] PING;13:01:02.977;[11/4] PONG (2)``
``Ignored``    ``2026-11-26;13:01:03.100;[5] PING;(проигнорировано);(проигнорировано)``
               — server log only.
``TimedOut``   ``2026-11-26;13:01:03.099;[5] PING;13:01:05.099;(таймаут)``
               — client logs only.
``Unpaired``   ``2026-11-26;;;13:01:05.000;[12] keepalive`` — a response with no
               request: a keepalive (both logs), or on a client a PONG that came
               after its request timed out or that answers nothing pending.
=============  ====================================================================

``DATE`` is the date of the first time on the line (the response time for
``Unpaired``). A response time earlier in the day than its request time belongs to
the next day: a request straddling midnight keeps both instants right.

Formatting and parsing round-trip exactly for any record whose instants are whole
milliseconds; :func:`parse_server_line` and :func:`parse_client_line` raise only
:class:`LogFormatError`. The ``*_line`` functions make the same lines from
**stamps** (``YYYY-MM-DD;HH:MM:SS.mmm``, :func:`stamp`) instead of records, for the
sessions' hot paths; :func:`format_record` is made of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from .protocol import (
    Keepalive,
    Ping,
    Pong,
    ProtocolError,
    Response,
    parse_request,
    parse_response,
)

__all__ = [
    "IGNORED",
    "TIMED_OUT",
    "Answered",
    "ClientRecord",
    "Ignored",
    "LogFormatError",
    "Record",
    "ServerRecord",
    "TimedOut",
    "Unpaired",
    "answered_line",
    "format_record",
    "format_time",
    "ignored_line",
    "parse_client_line",
    "parse_server_line",
    "stamp",
    "timed_out_line",
    "truncate_ms",
    "unpaired_line",
]

#: Marker of an ignored request in both response fields of the server log.
IGNORED = "(проигнорировано)"
#: Marker of a timed-out request in the response field of a client log.
TIMED_OUT = "(таймаут)"


class LogFormatError(ValueError):
    """A log line that is not a valid record of its log."""


@dataclass(frozen=True, slots=True)
class Answered:
    """A request and the PONG that answered it."""

    request_time: datetime
    request: Ping
    response_time: datetime
    response: Pong


@dataclass(frozen=True, slots=True)
class Ignored:
    """Server only: a request the server chose not to answer."""

    request_time: datetime
    request: Ping


@dataclass(frozen=True, slots=True)
class TimedOut:
    """Client only: a request whose answer did not come within the timeout."""

    request_time: datetime
    request: Ping
    response_time: datetime


@dataclass(frozen=True, slots=True)
class Unpaired:
    """A response with no request: a keepalive, or a late or unknown PONG (client only)."""

    response_time: datetime
    response: Response


ServerRecord = Answered | Ignored | Unpaired
ClientRecord = Answered | TimedOut | Unpaired
Record = Answered | Ignored | TimedOut | Unpaired


def truncate_ms(instant: datetime) -> datetime:
    """``instant`` cut to whole milliseconds, as the logs show it."""
    return instant.replace(microsecond=instant.microsecond - instant.microsecond % 1000)


def format_time(instant: datetime) -> str:
    """``HH:MM:SS.mmm``, milliseconds truncated."""
    return instant.isoformat(timespec="milliseconds")[11:23]


def stamp(instant: datetime) -> str:
    """``YYYY-MM-DD;HH:MM:SS.mmm``, milliseconds truncated, in one C call."""
    return instant.isoformat(";", "milliseconds")[:23]


def answered_line(request_stamp: str, request: Ping, response_stamp: str, response: Pong) -> str:
    """The line of an :class:`Answered` record, from the stamps of its two instants."""
    return f"{request_stamp};{request};{response_stamp[11:]};{response}\n"


def ignored_line(request_stamp: str, request: Ping) -> str:
    """The line of an :class:`Ignored` record."""
    return f"{request_stamp};{request};{IGNORED};{IGNORED}\n"


def timed_out_line(request_stamp: str, request: Ping, response_stamp: str) -> str:
    """The line of a :class:`TimedOut` record."""
    return f"{request_stamp};{request};{response_stamp[11:]};{TIMED_OUT}\n"


def unpaired_line(response_stamp: str, response: Response) -> str:
    """The line of an :class:`Unpaired` record: the date is the response's."""
    return f"{response_stamp[:10]};;;{response_stamp[11:]};{response}\n"


def format_record(record: Record) -> str:
    """The record's log line, ``\\n`` included."""
    if isinstance(record, Answered):
        return answered_line(
            stamp(record.request_time), record.request, stamp(record.response_time), record.response
        )
    if isinstance(record, Ignored):
        return ignored_line(stamp(record.request_time), record.request)
    if isinstance(record, TimedOut):
        return timed_out_line(
            stamp(record.request_time), record.request, stamp(record.response_time)
        )
    return unpaired_line(stamp(record.response_time), record.response)


_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})")


def _parse_date(text: str) -> date:
    match = _DATE.fullmatch(text)
    if match is None:
        raise LogFormatError(f"bad date {text!r}, expected YYYY-MM-DD")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise LogFormatError(f"bad date {text!r}: {exc}") from None


def _parse_time(text: str) -> time:
    match = _TIME.fullmatch(text)
    if match is None:
        raise LogFormatError(f"bad time {text!r}, expected HH:MM:SS.mmm")
    try:
        return time(int(match[1]), int(match[2]), int(match[3]), int(match[4]) * 1000)
    except ValueError as exc:
        raise LogFormatError(f"bad time {text!r}: {exc}") from None


def _after(start: datetime, later: time) -> datetime:
    """The first instant at or after ``start`` whose time of day is ``later``."""
    instant = datetime.combine(start.date(), later)
    return instant if instant >= start else instant + timedelta(days=1)


def _request(text: str) -> Ping:
    try:
        return parse_request(text)
    except ProtocolError as exc:
        raise LogFormatError(f"bad request field: {exc}") from None


def _response(text: str) -> Response:
    try:
        return parse_response(text)
    except ProtocolError as exc:
        raise LogFormatError(f"bad response field: {exc}") from None


_N = "(0|[1-9][0-9]*)"
_D = "([0-9]{4}-[0-9]{2}-[0-9]{2})"
_T = r"([0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3})"
# The two lines that make up most of any log, each matched in one go, their fixed-width
# date and times read by datetime.fromisoformat (the general parser below takes a field
# at a time, which costs four times as much on a long run's logs).
_FAST_ANSWERED = re.compile(rf"{_D};{_T};\[{_N}\] PING;{_T};\[{_N}/{_N}\] PONG \({_N}\)\n?")
_FAST_KEEPALIVE = re.compile(rf"{_D};;;{_T};\[{_N}\] keepalive\n?")


def _fast(line: str) -> Answered | Unpaired | None:
    """A well-formed answered or keepalive line, parsed exactly as :func:`_parse` would;
    ``None`` for anything else, which :func:`_parse` then reads field by field."""
    try:
        match = _FAST_ANSWERED.fullmatch(line)
        if match is not None:
            day, start_text, request, end_text, response, answered, client = match.groups()
            if request != answered:  # no leading zeros: equal numbers are equal strings
                return None
            start = datetime.fromisoformat(f"{day}T{start_text}")
            end = datetime.fromisoformat(f"{day}T{end_text}")
            if end < start:
                end += timedelta(days=1)
            number = int(request)
            return Answered(start, Ping(number), end, Pong(int(response), number, int(client)))
        match = _FAST_KEEPALIVE.fullmatch(line)
        if match is not None:
            day, time_text, response = match.groups()
            instant = datetime.fromisoformat(f"{day}T{time_text}")
            return Unpaired(instant, Keepalive(int(response)))
    except ValueError:  # no such date or time: the general parser says why
        return None
    return None


def _parse(line: str, *, server: bool) -> Record:
    fast = _fast(line)
    if fast is not None:
        return fast
    return _parse_fields(line, server=server)


def _parse_fields(line: str, *, server: bool) -> Record:
    if line.endswith("\n"):
        line = line[:-1]
    fields = line.split(";")
    if len(fields) != 5:
        raise LogFormatError(f"expected 5 fields separated by ';', got {len(fields)}")
    day_text, request_time_text, request_text, response_time_text, response_text = fields
    day = _parse_date(day_text)
    if not request_time_text and not request_text:
        response_time = datetime.combine(day, _parse_time(response_time_text))
        unpaired = _response(response_text)
        if server and isinstance(unpaired, Pong):
            raise LogFormatError("a PONG in the server log must follow its request")
        return Unpaired(response_time, unpaired)
    request_time = datetime.combine(day, _parse_time(request_time_text))
    request = _request(request_text)
    if server and response_time_text == IGNORED:
        if response_text != IGNORED:
            raise LogFormatError(f"an ignored request has {IGNORED} in both response fields")
        return Ignored(request_time, request)
    response_time = _after(request_time, _parse_time(response_time_text))
    if not server and response_text == TIMED_OUT:
        return TimedOut(request_time, request, response_time)
    response = _response(response_text)
    if not isinstance(response, Pong):
        raise LogFormatError("a keepalive cannot answer a request")
    if response.request != request.request:
        raise LogFormatError(f"{response} does not answer {request}")
    return Answered(request_time, request, response_time, response)


def parse_server_line(line: str) -> ServerRecord:
    """Parse one line of ``server.log`` (with or without its ``\\n``)."""
    record = _parse(line, server=True)
    assert not isinstance(record, TimedOut)
    return record


def parse_client_line(line: str) -> ClientRecord:
    """Parse one line of a client log (with or without its ``\\n``)."""
    record = _parse(line, server=False)
    assert not isinstance(record, Ignored)
    return record
