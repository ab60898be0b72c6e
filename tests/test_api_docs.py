"""The API's own description: /openapi.json, the WebSocket's JSON Schema, /docs offline.

The models only document (the routes send their JSON as they build it), so these tests
hold the two together: the document is valid OpenAPI, it names every setting with the
bounds the validation really enforces, and real responses and messages of a real run
match their models and schema exactly, no field more or less.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from openapi_spec_validator import validate as validate_openapi
from playwright.sync_api import Browser, Route, sync_playwright
from pydantic import TypeAdapter

from app import models
from app.main import create_app
from pingpong.core.settings import DEFAULTS, MAX_SEED, MAX_TIMEOUT_MS, RunSettings, SettingsErrors

from .conftest import Dashboard
from .test_browser import ARGS, CHROMIUM, Watch

RUN = {"clients": 2, "duration": 30, "interval_ms": [50, 200], "delay_ms": [10, 100],
       "timeout_ms": 300, "keepalive_s": 0.5}  # fmt: skip


@pytest.fixture
def client(tmp_path: Path, no_stray_processes: None) -> Iterator[TestClient]:
    with TestClient(create_app(tmp_path / "runs"), base_url="http://localhost") as test_client:
        yield test_client


@pytest.fixture
def openapi(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def test_the_openapi_document_is_valid(openapi: dict[str, Any]) -> None:
    validate_openapi(openapi)  # raises on any error
    assert openapi["info"]["title"] == "pingpong dashboard"


def test_every_route_is_documented(client: TestClient, openapi: dict[str, Any]) -> None:
    app = client.app
    every: list[Any] = []
    for route in app.routes:  # type: ignore[attr-defined]
        # An included APIRouter (the run API's) is one entry holding its own routes.
        included = getattr(route, "original_router", None)
        every += included.routes if included is not None else [route]
    routes = [r for r in every if isinstance(r, APIRoute) and r.include_in_schema]
    assert {r.path for r in routes} == set(openapi["paths"])
    for route in routes:
        for method in route.methods or ():
            operation = openapi["paths"][route.path][method.lower()]
            assert operation.get("description"), (method, route.path)
            # A summary of our own, not FastAPI's from the function's name ("Runs List").
            generated = route.name.replace("_", " ").title()
            assert operation.get("summary") not in (None, generated), (method, route.path)
            (success,) = [code for code in operation["responses"] if code.startswith("2")]
            content = operation["responses"][success]["content"]
            assert all(media["schema"] for media in content.values()), (route.path, content)


def _schema(openapi: dict[str, Any], ref: str) -> dict[str, Any]:
    name = ref.rsplit("/", 1)[1]
    schema: dict[str, Any] = openapi["components"]["schemas"][name]
    return schema


def test_start_documents_every_setting(openapi: dict[str, Any]) -> None:
    body = openapi["paths"]["/api/start"]["post"]["requestBody"]
    assert body["required"] is False
    settings = _schema(openapi, body["content"]["application/json"]["schema"]["$ref"])
    assert settings["additionalProperties"] is False  # an unknown setting is refused
    properties = settings["properties"]
    assert list(properties) == [f.name for f in dataclasses.fields(RunSettings)]
    for name, field in properties.items():
        assert field["description"], name
        assert field["default"] == DEFAULTS[name], name
    assert properties["clients"] | {"description": "", "title": ""} == {
        "type": "integer", "minimum": 1, "maximum": 100, "default": 2, "description": "",
        "title": "",
    }  # fmt: skip
    assert properties["seed"]["anyOf"] == [
        {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
        {"type": "null"},
    ]
    assert properties["seed"]["default"] is None
    assert properties["host"]["type"] == "string"
    for pair in ("interval_ms", "delay_ms"):
        assert properties[pair]["type"] == "array"
        assert properties[pair]["minItems"] == properties[pair]["maxItems"] == 2
        assert properties[pair]["items"]["type"] == "integer"
    assert "Must be above the server delay maximum." in properties["timeout_ms"]["description"]
    assert "Max must be below the timeout." in properties["delay_ms"]["description"]


def _refused(name: str, value: object) -> bool:
    """Whether the settings' own validation refuses ``value`` for ``name``."""
    # The other field of the rule between them (timeout above the delay maximum) kept clear.
    partners: dict[str, dict[str, object]] = {
        "timeout_ms": {"delay_ms": [0, 0]},
        "delay_ms": {"timeout_ms": MAX_TIMEOUT_MS},
    }
    partner = partners.get(name, {})
    data: dict[str, object] = {name: value, **partner}
    try:
        RunSettings.from_json(data)
    except SettingsErrors as errors:
        return name in {error.field for error in errors.errors}
    return False


def test_the_documented_bounds_are_the_enforced_ones(openapi: dict[str, Any]) -> None:
    properties = _schema(openapi, "#/components/schemas/RunSettings")["properties"]
    checked = 0
    for name, field in properties.items():
        if field.get("type") == "array":  # a [min, max] pair of integers
            low, high = int(field["items"]["minimum"]), int(field["items"]["maximum"])
            assert not _refused(name, [low, low]), name
            assert not _refused(name, [high, high]), name
            assert _refused(name, [low - 1, low]), name
            assert _refused(name, [high, high + 1]), name
            checked += 1
            continue
        field = field["anyOf"][0] if "anyOf" in field else field  # seed: integer or null
        integer = field["type"] == "integer"
        for bound, outward in (("minimum", -1), ("maximum", +1)):
            if bound in field:
                at = int(field[bound]) if integer else field[bound]
                assert not _refused(name, at), (name, bound)
                assert _refused(name, at + outward * (1 if integer else 0.01)), (name, bound)
                checked += 1
    assert checked == 2 + 2 * 7  # the two pairs; both bounds of seven numbers


def _validate(model: Any, data: Any) -> None:
    """``data`` fits ``model`` exactly: every field documented, every type as declared."""
    TypeAdapter(model).validate_json(json.dumps(data), strict=True)


def test_real_responses_and_messages_match_their_models(client: TestClient, tmp_path: Path) -> None:
    validator = Draft202012Validator(client.get(models.WS_SCHEMA_PATH).json())
    Draft202012Validator.check_schema(validator.schema)
    (tmp_path / "runs" / "2020-01-01_00-00-00").mkdir()  # a folder without run.json
    _validate(models.Status, client.get("/api/status").json())
    _validate(models.Error, client.post("/api/stop").json())
    invalid = client.post("/api/start", json={"clients": 0, "colour": "red"})
    assert invalid.status_code == 422
    _validate(models.ValidationErrors, invalid.json())
    started = client.post("/api/start", json=RUN)
    assert started.status_code == 202
    _validate(models.Run, started.json())
    _validate(models.Error, client.post("/api/start", json=RUN).json())
    messages = []
    with client.websocket_connect("ws://localhost/ws") as ws:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            messages.append(ws.receive_json())
            live = messages[-1]["live"]
            if live is not None and live["exchanges"] and len(messages) > 5:
                break
        status = client.get("/api/status").json()
        _validate(models.Status, status)
        assert status["state"] == "running"
        assert client.post("/api/stop").status_code == 202
        while messages[-1]["state"] not in ("finished", "failed"):
            messages.append(ws.receive_json())
    assert messages[0]["type"] == "snapshot"
    assert {m["type"] for m in messages[1:]} == {"update"}
    for message in messages:
        errors = [e.message for e in validator.iter_errors(message)]
        assert errors == [], message
        _validate(models.WsMessage, message)
    runs = client.get("/api/runs").json()
    assert [run["state"] for run in runs] == ["finished", "unknown"]
    _validate(list[models.StoredRun | models.UnreadableRun], runs)
    _validate(models.StoredRun, client.get(f"/api/runs/{runs[0]['id']}").json())
    _validate(models.UnreadableRun, client.get("/api/runs/2020-01-01_00-00-00").json())
    _validate(models.Error, client.get("/api/runs/nope").json())
    _validate(models.Status, client.get("/api/status").json())


def test_undocumented_fields_are_caught() -> None:
    """The check above can fail: an extra or mistyped field does not fit."""
    status = {"state": "idle", "run": None, "counters": None}
    _validate(models.Status, status)
    with pytest.raises(ValueError, match="Extra inputs"):
        _validate(models.Status, {**status, "extra": 1})
    exchange = {"id": "1", "time": "13:01:02.977", "client": 1, "request": 1,
                "response": 2, "round_trip_ms": 3.0, "outcome": "answered"}  # fmt: skip
    with pytest.raises(ValueError, match="valid integer"):
        _validate(models.Exchange, exchange)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def test_docs_work_offline_and_show_every_route(browser: Browser, dashboard: Dashboard) -> None:
    page = browser.new_page()
    watch = Watch(page)
    left: list[str] = []

    def local_only(route: Route) -> None:
        if route.request.url.startswith(dashboard.url + "/"):
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    page.goto(dashboard.url)
    page.wait_for_selector("#connection[data-status=live]")
    page.wait_for_function("!document.querySelector('#history').textContent.includes('loading')")
    page.click("text=API docs")
    page.wait_for_url(f"{dashboard.url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = {
        (e.text_content() or "").strip() for e in page.query_selector_all(".opblock-summary-path")
    }
    assert paths >= {
        "/api/status", "/api/start", "/api/stop", "/api/runs", "/api/runs/{run_id}",
        "/api/runs/{run_id}/logs/{name}", "/metrics", models.WS_SCHEMA_PATH,
    }  # fmt: skip
    # The settings in the request body's schema: types, bounds, and a description.
    page.click("#operations-default-start_api_start_post .opblock-summary")
    body = page.locator("#operations-default-start_api_start_post .opblock-section-request-body")
    body.get_by_role("tab", name="Schema").click()
    text = body.text_content() or ""
    for shown in ("clientsExpand allinteger[1, 100]", "interval_msExpand allarray<integer>",
                  "ignoreExpand allnumber[0, 1]", "seedExpand all(integer | null)",
                  "timeout_msExpand allinteger[1, 3600000]"):  # fmt: skip
        assert shown in text
    body.locator(".json-schema-2020-12-accordion", has_text="timeout_ms").click()
    body.get_by_text("Must be above the server delay maximum").wait_for()
    assert left == []
    assert watch.problems == []
    page.close()
