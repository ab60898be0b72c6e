"""Packaging: the wheel builds without a setuptools warning and ships the dashboard's files.

The build runs the real backend (``pip wheel``, build isolation, like ``pip install .``),
so it needs setuptools from the package index or pip's cache, as ``pip install -e .``
did; it takes a few seconds. It builds from a copy of the sources, so the checkout gets
no ``build/`` or ``*.egg-info`` folders.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pingpong.core.settings import ClientSettings, ServerSettings

from .conftest import ROOT

_SOURCES = ["pyproject.toml", "README.md", "LICENSE", "pingpong", "app", "templates", "static"]
# A Python warning as printed: "…/build_py.py:215: BuildBackendWarning: Package …",
# "_Warning: …", "SetuptoolsDeprecationWarning: …" (not distutils' lowercase "warning:").
_WARNING = re.compile(r"Warning: ")


def _files(folder: Path) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_wheel_builds_without_warnings_and_ships_templates_and_static(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in _SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.is_file():
            shutil.copy2(path, source / name)
    out = tmp_path / "wheel"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--verbose"]
    build = subprocess.run(
        [*pip_wheel, "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=100,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    output = build.stdout + build.stderr
    assert build.returncode == 0, output[-3000:]
    warnings = [line.strip() for line in output.splitlines() if _WARNING.search(line)]
    assert not warnings, "\n".join(warnings)

    (wheel,) = out.glob("pingpong-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    expected = {f"app/static/{name}" for name in _files(ROOT / "static")}
    expected |= {f"app/templates/{name}" for name in _files(ROOT / "templates")}
    assert "app/static/vendor/uplot-1.6.32/uPlot.iife.min.js" in expected
    assert "app/static/vendor/swagger-ui-dist-5.35.0/swagger-ui-bundle.js" in expected
    assert "app/static/vendor/swagger-ui-dist-5.35.0/LICENSE" in expected
    assert expected <= shipped, sorted(expected - shipped)
    assert {"pingpong/py.typed", "app/py.typed", "pingpong/__main__.py"} <= shipped


@pytest.mark.skipif(shutil.which("git") is None, reason="asks git")
def test_the_logs_of_a_lone_server_or_client_are_ignored_by_git() -> None:
    # `pingpong server` and `pingpong client` write server.log and client1.log into the
    # folder they run in; run from the checkout, they are not the project's files.
    names = [ServerSettings().log_file, ClientSettings().log_file, "client12.log"]
    ignored = subprocess.run(
        ["git", "check-ignore", *names], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if ignored.returncode == 128:
        pytest.skip(f"not a git checkout: {ignored.stderr.strip()}")
    assert ignored.stdout.split() == names
    # Only at the root: a log in the sources would still show.
    kept = subprocess.run(["git", "check-ignore", "tests/server.log"], cwd=ROOT, check=False)
    assert kept.returncode == 1


@pytest.mark.skipif(shutil.which("bash") is None, reason="the script is a bash script")
def test_dashboard_script_says_it_is_setting_up_before_it_does(tmp_path: Path) -> None:
    shutil.copy(ROOT / "dashboard", tmp_path / "dashboard")
    stub = tmp_path / "bin" / "python3"  # stands for Python: says what it was asked, fails
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\necho "python3 $*" >&2\nexit 3\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(tmp_path / "dashboard")], env=env, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        "setting up .venv with the project and its dependencies (about a minute)…",
        "python3 -m venv .venv",
    ]
