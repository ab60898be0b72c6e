"""The wire protocol on bytes and strings: exact forms, strictness, framing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong.core.protocol import (
    MAX_DIGITS,
    MAX_LINE,
    Keepalive,
    LineSplitter,
    LineTooLong,
    Ping,
    Pong,
    ProtocolError,
    encode,
    parse_request,
    parse_response,
)

numbers = st.integers(min_value=0, max_value=10**MAX_DIGITS - 1)


def test_exact_bytes() -> None:
    assert encode(Ping(0)) == b"[0] PING\n"
    assert encode(Pong(11, 4, 2)) == b"[11/4] PONG (2)\n"
    assert encode(Keepalive(12)) == b"[12] keepalive\n"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"[0] PING", Ping(0)),
        (b"[4] PING\n", Ping(4)),
        (b"[4] PING\r\n", Ping(4)),
        (b"[123456789] PING", Ping(123456789)),
        (b"[999999999999999999] PING", Ping(10**18 - 1)),  # 18 digits: the most
        ("[7] PING", Ping(7)),
    ],
)
def test_requests_accepted(line: bytes | str, message: Ping) -> None:
    assert parse_request(line) == message


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"\n",
        b"\r\n",
        b"[01] PING",
        b"[-1] PING",
        b"[+1] PING",
        b"[1]  PING",
        b" [1] PING",
        b"[1] PING ",
        b"[1] ping",
        b"[1]PING",
        b"[] PING",
        b"[1] PING\r\r",
        b"[1] PONG",
        b"[1/2] PONG (3)",
        b"[1] keepalive",
        b"[\xd9\xa1] PING",  # Arabic-Indic digit one: not ASCII
        b"[1] PING\xff",
        "[１] PING".encode(),  # fullwidth digit
        b"[1] PING\x00",
        b"[1] PING\n[2] PING",
        b"A" * 2000,
        b"[1000000000000000000] PING",  # 19 digits
        b"[" + b"1" * 1017 + b"] PING",  # 1024 bytes, whose PONG would be over the limit
    ],
)
def test_requests_refused(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_request(line)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"[11/4] PONG (2)", Pong(11, 4, 2)),
        (b"[0/0] PONG (1)\r\n", Pong(0, 0, 1)),
        (b"[12] keepalive", Keepalive(12)),
        (b"[0] keepalive\n", Keepalive(0)),
    ],
)
def test_responses_accepted(line: bytes, message: Pong | Keepalive) -> None:
    assert parse_response(line) == message


@pytest.mark.parametrize(
    "line",
    [b"[1] PING", b"[1/2] PONG(3)", b"[1/02] PONG (3)", b"[1] KEEPALIVE", b"[1/2] PONG (3) ", b"",
     b"[1/1000000000000000000] PONG (3)", b"[1000000000000000000] keepalive"],
)  # fmt: skip
def test_responses_refused(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_response(line)


@given(numbers)
def test_request_round_trip(n: int) -> None:
    assert parse_request(encode(Ping(n))) == Ping(n)


@given(numbers, numbers, numbers)
def test_pong_round_trip(s: int, r: int, c: int) -> None:
    assert parse_response(encode(Pong(s, r, c))) == Pong(s, r, c)


@given(numbers)
def test_keepalive_round_trip(s: int) -> None:
    assert parse_response(encode(Keepalive(s))) == Keepalive(s)


@given(st.binary(max_size=2000))
def test_garbage_raises_only_protocol_error(data: bytes) -> None:
    for parse in (parse_request, parse_response):
        with contextlib.suppress(ProtocolError):
            parse(data)


@given(st.text(max_size=200))
def test_garbage_text_raises_only_protocol_error(text: str) -> None:
    for parse in (parse_request, parse_response):
        with contextlib.suppress(ProtocolError):
            parse(text)


def test_splitter_holds_partial_lines() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"[0] PI") == []
    assert splitter.pending == b"[0] PI"
    assert splitter.feed(b"NG\n[1] PING\n[2]") == [b"[0] PING", b"[1] PING"]
    assert splitter.feed(b" PING\n") == [b"[2] PING"]
    assert splitter.pending == b""


@given(st.lists(st.binary(max_size=50).filter(lambda b: b"\n" not in b), max_size=20), st.data())
def test_splitter_any_chunking(lines: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    splitter = LineSplitter()
    out: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += splitter.feed(stream[start:end])
    assert out == lines


def test_splitter_refuses_overlong_line_without_newline() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"x" * MAX_LINE) == []  # may still end here
    with pytest.raises(LineTooLong):
        splitter.feed(b"y")  # the 1025th byte before any newline


@pytest.mark.parametrize("length", [1023, 1024, 1025, 1026])
def test_one_limit_for_splitter_and_parser(length: int) -> None:
    """A line is the bytes before its newline, a carriage return included: 1024 at most."""
    for line in (b"x" * length, b"x" * (length - 1) + b"\r"):
        if length <= MAX_LINE:
            assert LineSplitter().feed(line + b"\n") == [line]
            with pytest.raises(ProtocolError, match="not a request"):
                parse_request(line)
        else:
            with pytest.raises(LineTooLong):
                LineSplitter().feed(line + b"\n")
            with pytest.raises(ProtocolError, match="longer than 1024 bytes"):
                parse_request(line)


def test_the_longest_message_is_far_within_the_limit() -> None:
    biggest = 10**MAX_DIGITS - 1
    assert len(encode(Pong(biggest, biggest, biggest))) == 66


def test_splitter_hands_over_the_lines_before_an_overlong_one() -> None:
    with pytest.raises(LineTooLong) as caught:
        LineSplitter().feed(b"[0] PING\n[1] PING\n" + b"x" * 2000)
    assert caught.value.lines == [b"[0] PING", b"[1] PING"]
