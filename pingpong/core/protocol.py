"""The wire protocol: messages, their exact bytes, and line framing — no I/O.

Every message is one ASCII line ended by a single ``\\n`` (docs/protocol.md §2)::

    client -> server   [R] PING             R: the client's request number
    server -> client   [S/R] PONG (C)       S: response number, C: client number
    server -> client   [S] keepalive

Rules this module enforces, in both directions:

* Numbers are decimal, unsigned, with no leading zeros (``0`` itself is fine), and
  at most :data:`MAX_DIGITS` (18) digits, so every one fits a signed 64-bit integer.
  ``[01] PING``, ``[+1] PING`` and a request number of 19 digits are malformed.
* We are strict in what we send (``encode`` writes exactly the forms above) and
  tolerant in what we accept: one trailing ``\\r`` before the ``\\n`` is dropped.
* Anything else — other words, extra spaces, non-ASCII bytes, an empty line — is a
  :class:`ProtocolError`, the only exception the parsers raise, whatever the input.
* A line's length is the number of bytes before its ``\n`` (a tolerated ``\r``
  counts). Up to :data:`MAX_LINE` (1024) is a line, valid or not; a longer one
  ends the connection: :class:`LineSplitter` refuses it with :class:`LineTooLong`
  as soon as its 1025th byte arrives, so a peer cannot make us buffer without bound.
  With the digit cap, the longest message anyone sends, ``[S/R] PONG (C)`` with
  three 18-digit numbers, is 65 bytes: nothing we send is ever near the limit.

The messages are small frozen dataclasses; nothing here reads a clock, draws a
random number or touches a socket. The server and the client feed bytes in and
get messages out, and the log format reuses :func:`parse_request` and friends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "MAX_DIGITS",
    "MAX_LINE",
    "Keepalive",
    "LineSplitter",
    "LineTooLong",
    "Ping",
    "Pong",
    "ProtocolError",
    "Response",
    "encode",
    "parse_request",
    "parse_response",
]

#: Longest line in bytes, counting everything before its ``\n`` (a ``\r`` too): 1 KiB.
MAX_LINE = 1024
#: Most digits a number may have: 18 fit a signed 64-bit integer.
MAX_DIGITS = 18


class ProtocolError(ValueError):
    """A line that is not a valid message of the direction it was read in."""


class LineTooLong(ProtocolError):
    """A line exceeded :data:`MAX_LINE` bytes; the connection should be closed.

    ``lines`` holds the complete lines that came before it in the same chunk:
    they are valid framing and deserve to be handled before the connection ends.
    """

    def __init__(self, lines: list[bytes]) -> None:
        super().__init__(f"line longer than {MAX_LINE} bytes")
        self.lines = lines


@dataclass(frozen=True, slots=True)
class Ping:
    """``[R] PING``: request number ``request`` of one client."""

    request: int

    def __str__(self) -> str:
        return f"[{self.request}] PING"


@dataclass(frozen=True, slots=True)
class Pong:
    """``[S/R] PONG (C)``: response ``response`` answers request ``request`` of ``client``."""

    response: int
    request: int
    client: int

    def __str__(self) -> str:
        return f"[{self.response}/{self.request}] PONG ({self.client})"


@dataclass(frozen=True, slots=True)
class Keepalive:
    """``[S] keepalive``: response ``response``, sent to one connected client."""

    response: int

    def __str__(self) -> str:
        return f"[{self.response}] keepalive"


#: Anything the server sends.
Response = Pong | Keepalive

_NUMBER = rf"(0|[1-9][0-9]{{0,{MAX_DIGITS - 1}}})"
_PING = re.compile(rf"\[{_NUMBER}\] PING")
# The hot path of the server: a well-formed request as bytes, matched without decoding.
# A bytes pattern's [0-9] matches ASCII digits only, so this accepts nothing _PING refuses.
_PING_BYTES = re.compile(rf"\[{_NUMBER}\] PING\r?\n?".encode("ascii"))
_PONG = re.compile(rf"\[{_NUMBER}/{_NUMBER}\] PONG \({_NUMBER}\)")
_KEEPALIVE = re.compile(rf"\[{_NUMBER}\] keepalive")


def encode(message: Ping | Pong | Keepalive) -> bytes:
    """The exact bytes of ``message`` on the wire, terminator included."""
    return f"{message}\n".encode("ascii")


def _text(line: bytes | str) -> str:
    """Validate the common rules (ASCII, length, optional ``\\r``) and return the text."""
    if isinstance(line, bytes):
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError(f"not ASCII: {line[:40]!r}") from None
    else:
        text = line
        if not text.isascii():
            raise ProtocolError(f"not ASCII: {text[:40]!r}")
    if text.endswith("\n"):
        text = text[:-1]
    if len(text) > MAX_LINE:  # ASCII: characters are bytes
        raise ProtocolError(f"line longer than {MAX_LINE} bytes")
    if text.endswith("\r"):
        text = text[:-1]
    if not text:
        raise ProtocolError("empty line")
    return text


def parse_request(line: bytes | str) -> Ping:
    """Parse one client → server line (with or without its ``\\n``)."""
    if isinstance(line, bytes):
        fast = _PING_BYTES.fullmatch(line)
        if fast is not None:
            return Ping(int(fast[1]))
    text = _text(line)
    match = _PING.fullmatch(text)
    if match is None:
        raise ProtocolError(f"not a request: {text[:60]!r}")
    return Ping(int(match[1]))


def parse_response(line: bytes | str) -> Response:
    """Parse one server → client line (with or without its ``\\n``)."""
    text = _text(line)
    match = _PONG.fullmatch(text)
    if match is not None:
        return Pong(int(match[1]), int(match[2]), int(match[3]))
    match = _KEEPALIVE.fullmatch(text)
    if match is not None:
        return Keepalive(int(match[1]))
    raise ProtocolError(f"not a response: {text[:60]!r}")


class LineSplitter:
    """Cut a byte stream into lines, holding at most :data:`MAX_LINE` bytes of a partial line.

    ``feed(data)`` returns the complete lines found so far, each without its
    ``\\n``. A partial line waits for the next ``feed``. When a line, complete or
    not, grows past the limit, ``feed`` raises :class:`LineTooLong` (carrying the
    lines before it) and the splitter must not be used again: the stream has no
    trustworthy framing left.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + data if self._buffer else data
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        for index, line in enumerate(lines):
            if len(line) > MAX_LINE:
                raise LineTooLong(lines[:index])
        if len(self._buffer) > MAX_LINE:
            raise LineTooLong(lines)
        return lines

    @property
    def pending(self) -> bytes:
        """The bytes of the unfinished last line (lost if the stream ends now)."""
        return self._buffer
