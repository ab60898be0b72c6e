"""The documents: links stay inside the repository and resolve; examples are real messages."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from pingpong.logformat import LogFormatError, parse_client_line, parse_server_line
from pingpong.protocol import parse_request, parse_response

from .conftest import ROOT

DOCUMENTS = sorted(
    [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", *ROOT.glob("docs/*.md")]
)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _anchors(document: Path) -> set[str]:
    """GitHub's ids for the headings of a Markdown file."""
    text = _FENCE.sub("", document.read_text(encoding="utf-8"))
    ids = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        ids.add(slug)
    return ids


def broken_links(text: str, base: Path) -> list[str]:
    """Links in ``text``, a Markdown file in ``base``, that leave the repository or lead nowhere."""
    problems = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # https://…, mailto:…
        path_text, _hash, anchor = target.partition("#")
        path = (base / path_text).resolve()
        if not path.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
        elif not path.exists():
            problems.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            problems.append(f"{target}: no such heading")
    return problems


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_links_stay_inside_the_repository_and_resolve(document: Path) -> None:
    assert broken_links(document.read_text(encoding="utf-8"), document.parent) == []


def test_broken_links_are_found() -> None:
    text = (
        "[spec](../shared/SPEC.md), [gone](docs/gone.md), "
        "[heading](docs/protocol.md#10-no-such-heading), "
        "[fine](docs/protocol.md#10-what-check-verifies), [web](https://example.org/x)"
    )
    assert broken_links(text, ROOT) == [
        "../shared/SPEC.md: outside the repository",
        "docs/gone.md: no such file",
        "docs/protocol.md#10-no-such-heading: no such heading",
    ]


def _code_lines(document: Path) -> list[str]:
    return [
        line
        for block in _FENCE.findall(document.read_text(encoding="utf-8"))
        for line in block.splitlines()
    ]


@pytest.mark.parametrize("document", [ROOT / "README.md", ROOT / "docs" / "protocol.md"])
def test_log_examples_are_real_log_lines(document: Path) -> None:
    examples = [
        line for line in _code_lines(document) if re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2};", line)
    ]
    assert len(examples) >= 6
    for line in examples:
        parsed = []
        for parse in (parse_server_line, parse_client_line):
            with contextlib.suppress(LogFormatError):
                parsed.append(parse(line))
        assert parsed, f"{document.name}: not a line of either log: {line}"


def test_wire_examples_are_real_messages() -> None:
    exchange = [
        line for line in _code_lines(ROOT / "docs" / "protocol.md") if line[:2] in ("→ ", "← ")
    ]
    assert len(exchange) >= 5
    for line in exchange:
        message = line[2:].split("  ")[0]
        if line.startswith("→"):
            parse_request(message)
        else:
            parse_response(message)
