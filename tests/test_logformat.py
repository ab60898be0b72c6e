"""The log formats on strings: the documented examples byte for byte, round trips, refusals."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong.core import logformat
from pingpong.core.logformat import (
    Answered,
    Ignored,
    LogFormatError,
    ServerRecord,
    TimedOut,
    Unpaired,
    format_record,
    parse_client_line,
    parse_server_line,
    truncate_ms,
)
from pingpong.core.protocol import Keepalive, Ping, Pong

T = datetime(2026, 11, 26, 13, 1, 2, 345000)

DOC_SERVER = [
    "2026-11-26;13:01:02.345;[4] PING;13:01:02.977;[11/4] PONG (2)\n",
    "2026-11-26;13:01:03.100;[5] PING;(проигнорировано);(проигнорировано)\n",
    "2026-11-26;;;13:01:05.000;[12] keepalive\n",
]
DOC_CLIENT = [
    "2026-11-26;13:01:02.344;[4] PING;13:01:02.979;[11/4] PONG (2)\n",
    "2026-11-26;13:01:03.099;[5] PING;13:01:05.099;(таймаут)\n",
    "2026-11-26;;;13:01:05.001;[12] keepalive\n",
]


def test_documented_examples_byte_exact() -> None:
    records: list[ServerRecord] = [
        Answered(T, Ping(4), T.replace(microsecond=977000), Pong(11, 4, 2)),
        Ignored(datetime(2026, 11, 26, 13, 1, 3, 100000), Ping(5)),
        Unpaired(datetime(2026, 11, 26, 13, 1, 5), Keepalive(12)),
    ]
    assert [format_record(r) for r in records] == DOC_SERVER
    assert [format_record(r).encode() for r in records][1] == (
        "2026-11-26;13:01:03.100;[5] PING;(проигнорировано);(проигнорировано)\n".encode()
    )


@pytest.mark.parametrize("line", DOC_SERVER)
def test_server_examples_round_trip(line: str) -> None:
    assert format_record(parse_server_line(line)) == line


@pytest.mark.parametrize("line", DOC_CLIENT)
def test_client_examples_round_trip(line: str) -> None:
    assert format_record(parse_client_line(line)) == line


def test_kinds() -> None:
    assert isinstance(parse_server_line(DOC_SERVER[1]), Ignored)
    assert isinstance(parse_client_line(DOC_CLIENT[1]), TimedOut)
    late = parse_client_line("2026-11-26;;;13:01:05.001;[13/5] PONG (2)")
    assert late == Unpaired(datetime(2026, 11, 26, 13, 1, 5, 1000), Pong(13, 5, 2))


def test_milliseconds_are_truncated() -> None:
    record = Unpaired(datetime(2026, 1, 2, 3, 4, 5, 999999), Keepalive(0))
    assert format_record(record) == "2026-01-02;;;03:04:05.999;[0] keepalive\n"


def test_midnight_crossing() -> None:
    record = parse_client_line("2026-12-31;23:59:59.500;[1] PING;00:00:00.200;[2/1] PONG (1)")
    assert isinstance(record, Answered)
    assert record.response_time == datetime(2027, 1, 1, 0, 0, 0, 200000)
    assert format_record(record).startswith("2026-12-31;23:59:59.500;")


@pytest.mark.parametrize(
    "line",
    [
        "",
        "2026-11-26;13:01:02.345;[4] PING;13:01:02.977",
        "2026-11-26;13:01:02.345;[4] PING;13:01:02.977;[11/4] PONG (2);",
        "26-11-2026;13:01:02.345;[4] PING;13:01:02.977;[11/4] PONG (2)",
        "2026-11-26;13:01:02.34;[4] PING;13:01:02.977;[11/4] PONG (2)",
        "2026-11-26;13:01:02;[4] PING;13:01:02.977;[11/4] PONG (2)",
        "2026-13-26;13:01:02.345;[4] PING;13:01:02.977;[11/4] PONG (2)",
        "2026-11-26;25:01:02.345;[4] PING;13:01:02.977;[11/4] PONG (2)",
        "2026-11-26;13:01:02.345;[4] PING;13:01:02.977;[11/5] PONG (2)",
        "2026-11-26;13:01:02.345;[4] PING;13:01:02.977;[12] keepalive",
        "2026-11-26;13:01:02.345; [4] PING;13:01:02.977;[11/4] PONG (2)",
        "2026-11-26;13:01:02.345;[4] PING;(проигнорировано);[11/4] PONG (2)",
        "2026-11-26;;[4] PING;13:01:02.977;[11/4] PONG (2)",
        "2026-11-26;;;;[12] keepalive",
    ],
)
def test_refused_by_both(line: str) -> None:
    with pytest.raises(LogFormatError):
        parse_server_line(line)
    with pytest.raises(LogFormatError):
        parse_client_line(line)


def test_markers_belong_to_their_log() -> None:
    with pytest.raises(LogFormatError):
        parse_client_line(DOC_SERVER[1])
    with pytest.raises(LogFormatError):
        parse_server_line(DOC_CLIENT[1])
    with pytest.raises(LogFormatError):  # a PONG without its request is a client-only record
        parse_server_line("2026-11-26;;;13:01:05.001;[13/5] PONG (2)")


instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 30)).map(
    truncate_ms
)
delays = st.integers(min_value=0, max_value=86_399_999).map(lambda ms: timedelta(milliseconds=ms))
numbers = st.integers(min_value=0, max_value=10**12)


@st.composite
def records(draw: st.DrawFn, server: bool) -> Answered | Ignored | TimedOut | Unpaired:
    start = draw(instants)
    end = start + draw(delays)
    request = draw(numbers)
    kind = draw(st.sampled_from(["answered", "other", "keepalive", "late"]))
    if kind == "answered":
        return Answered(start, Ping(request), end, Pong(draw(numbers), request, draw(numbers)))
    if kind == "other":
        return Ignored(start, Ping(request)) if server else TimedOut(start, Ping(request), end)
    if kind == "late" and not server:
        return Unpaired(start, Pong(draw(numbers), request, draw(numbers)))
    return Unpaired(start, Keepalive(draw(numbers)))


@given(records(server=True))
def test_server_round_trip(record: Answered | Ignored | Unpaired) -> None:
    assert parse_server_line(format_record(record)) == record


@given(records(server=False))
def test_client_round_trip(record: Answered | TimedOut | Unpaired) -> None:
    assert parse_client_line(format_record(record)) == record


@given(st.text(max_size=120))
def test_garbage_raises_only_log_format_error(text: str) -> None:
    for parse in (parse_server_line, parse_client_line):
        with contextlib.suppress(LogFormatError):
            parse(text)


@given(st.lists(st.sampled_from(["2026-11-26", "13:01:02.345", "[4] PING", "[11/4] PONG (2)",
                                 "(таймаут)", "(проигнорировано)", "[3] keepalive", ""]),
                min_size=5, max_size=5))  # fmt: skip
def test_near_misses_raise_only_log_format_error(fields: list[str]) -> None:
    for parse in (parse_server_line, parse_client_line):
        with contextlib.suppress(LogFormatError):
            parse(";".join(fields))


@given(records(server=True) | records(server=False))
def test_the_fast_path_reads_as_the_field_parser(
    record: Answered | Ignored | TimedOut | Unpaired,
) -> None:
    line = format_record(record)
    for text in (line, line[:-1], line.replace(";", ";0", 1), line + "x", line.replace("]", "]]")):
        fast = logformat._fast(text)
        if fast is None:
            continue
        assert fast == logformat._parse_fields(text, server=True)
        assert fast == logformat._parse_fields(text, server=False)
        if text == line:
            assert fast == record


@pytest.mark.parametrize(
    "line",
    [
        "2026-11-26;13:01:02.345;[4] PING;13:01:02.977;[11/4] PONG (2)",
        "2026-12-31;23:59:59.500;[1] PING;00:00:00.200;[2/1] PONG (1)",
        "2026-11-26;;;13:01:05.000;[12] keepalive",
    ],
)
def test_the_fast_path_takes_the_common_lines(line: str) -> None:
    assert logformat._fast(line) == logformat._parse_fields(line, server=False)
    assert logformat._fast(line) is not None


@pytest.mark.parametrize(
    "line",
    [
        "2026-11-26;13:01:02.345;[4] PING;13:01:02.977;[11/5] PONG (2)",  # answers another
        "2026-02-30;13:01:02.345;[4] PING;13:01:02.977;[11/4] PONG (2)",  # no such day
        "2026-11-26;24:01:02.345;[4] PING;13:01:02.977;[11/4] PONG (2)",  # no such hour
        "2026-11-26;13:01:02.345;[4] PING;13:61:02.977;[11/4] PONG (2)",
        "2026-11-26;13:01:02.345;[04] PING;13:01:02.977;[11/4] PONG (2)",  # leading zero
        "2026-11-26;;;13:01:05.000;[012] keepalive",
        "2026-11-26;13:01:02.345;[４] PING;13:01:02.977;[11/4] PONG (2)",  # not ASCII digits
    ],
)
def test_the_fast_path_leaves_bad_lines_to_the_field_parser(line: str) -> None:
    assert logformat._fast(line) is None
    with pytest.raises(LogFormatError):
        parse_client_line(line)
