"""The route table, and what is derived from it: the router, the fast path, the document."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from referencing import Registry, Resource
from starlette.requests import Request
from starlette.routing import Mount, Route

from feature_planner import errors
from feature_planner.config import load_settings
from feature_planner.jobs.service import is_uuid4
from feature_planner.web import params
from feature_planner.web.answers import ErrorBody
from feature_planner.web.app import create_app
from feature_planner.web.application import PlannerApp
from feature_planner.web.fast_path import FastPath
from feature_planner.web.guard import GUARD_ERRORS
from feature_planner.web.params import JOB_ID
from feature_planner.web.paths import JOB_PATH
from feature_planner.web.routes import ROUTES
from tests.test_errors import sample

DESCRIBED = [route for route in ROUTES if route.tag is not None]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> PlannerApp:
    repository = tmp_path_factory.mktemp("repository")
    return create_app(
        load_settings(
            provider="scripted",
            users="alice=token-alice",
            repository=str(repository),
            database_url="sqlite://",
        )
    )


@pytest.fixture(scope="module")
def document(app: PlannerApp) -> dict[str, Any]:
    return app.openapi()


def test_each_method_of_each_path_is_one_row() -> None:
    rows = [(route.method, route.path) for route in ROUTES]
    assert len(rows) == len(set(rows))


def test_the_document_describes_exactly_the_described_rows(document: dict[str, Any]) -> None:
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert operations == {(route.method, route.path) for route in DESCRIBED}
    ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    ]
    assert len(ids) == len(set(ids))


def test_each_operation_lists_its_answers_and_every_refusal(document: dict[str, Any]) -> None:
    for route in DESCRIBED:
        operation = document["paths"][route.path][route.method.lower()]
        statuses = {answer.status for answer in route.answers}
        statuses |= {error.status for error in (*route.errors, *GUARD_ERRORS)}
        assert set(operation["responses"]) == {str(status) for status in statuses}, route.path
        for error in route.errors:
            assert f"`{error.code}`" in operation["responses"][str(error.status)]["description"]


def test_the_router_serves_every_row_once_per_path(app: PlannerApp) -> None:
    served: dict[str, set[str]] = {}
    for route in app.router.routes:
        if isinstance(route, Route):
            assert route.path not in served, route.path
            served[route.path] = set(route.methods or ())
    expected: dict[str, set[str]] = {}
    for row in ROUTES:
        expected.setdefault(row.path, set()).add(row.method)
    assert served == expected  # no implicit HEAD: a HEAD on a stream would start the job
    assert [r.path for r in app.router.routes if isinstance(r, Mount)] == ["/static"]


def test_the_fast_path_matches_the_fast_rows_only() -> None:
    async def handler(request: Any) -> Any:
        raise AssertionError

    fast = FastPath(
        app=None,  # type: ignore[arg-type]
        routes=[(row.method, row.path, handler) for row in ROUTES if row.fast],
    )
    job = str(uuid.uuid4())
    collection = next(row.path for row in ROUTES if row.fast and "{" not in row.path)
    for method, path, served in [
        ("POST", collection, True),
        ("GET", collection, False),
        ("GET", f"{collection}/{job}", True),
        ("DELETE", f"{collection}/{job}", True),
        ("HEAD", f"{collection}/{job}", False),
        ("PUT", f"{collection}/{job}", False),
        ("GET", f"{collection}/", False),
        ("GET", f"{collection}/{job}/more", False),
        ("GET", "/healthz", False),
    ]:
        scope: dict[str, Any] = {"type": "http", "method": method, "path": path}
        assert (fast._match(scope) is not None) == served, (method, path)
        if served and "{" in path:
            assert scope["path_params"] == {JOB_ID.name: job}


def test_the_fast_path_refuses_a_path_it_cannot_match() -> None:
    with pytest.raises(ValueError, match="one trailing parameter"):
        FastPath(app=None, routes=[("GET", "/a/{x}/b", None)])  # type: ignore[arg-type,list-item]


def test_every_reference_resolves_and_every_schema_is_valid(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name
    references = list(_references(document))
    assert references
    for reference in references:
        assert reference.removeprefix("#/components/schemas/") in schemas, reference


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def test_every_refusal_matches_the_described_error_body(document: dict[str, Any]) -> None:
    registry: Registry[Any] = Registry().with_resource(
        "urn:document",
        Resource.from_contents(
            {**document, "$schema": jsonschema.Draft202012Validator.META_SCHEMA["$id"]}
        ),
    )
    schema = {"$ref": "urn:document#/components/schemas/ErrorBody"}
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    for cls in errors.ERRORS_BY_CODE.values():
        body = sample(cls).to_wire()
        validator.validate(body)
        ErrorBody.model_validate(body)


UUIDS = st.uuids().map(str)
JOB_IDS = (
    UUIDS
    | UUIDS.map(str.upper)
    | UUIDS.map(lambda value: value.replace("-", ""))
    | UUIDS.map(lambda value: value + "\n")
    | st.builds(
        lambda value, index, char: value[:index] + char + value[index + 1 :],
        UUIDS,
        st.integers(0, 35),
        st.sampled_from("0489abfgAF-\n "),
    )
    | st.text(max_size=40)
)


@settings(max_examples=500, database=None)
@given(value=JOB_IDS)
def test_the_documented_job_id_rule_is_the_one_enforced(value: str) -> None:
    """The document's pattern (as a fuzzer reads it), the route's check and the job
    service's check accept exactly the same ids."""
    pattern = TypeAdapter(JOB_ID.type).json_schema()["pattern"]
    documented = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
    request = Request({"type": "http", "path_params": {JOB_ID.name: value}})
    try:
        enforced = params.job_id(request) == value
    except errors.InvalidJobIdError:
        enforced = False
    assert documented.is_valid(value) == enforced == is_uuid4(value), value


def test_the_documented_event_id_limit_is_the_one_enforced(document: dict[str, Any]) -> None:
    stream = document["paths"][JOB_PATH]["get"]
    limits = {p["name"]: p["schema"]["maximum"] for p in stream["parameters"] if p["in"] != "path"}
    assert set(limits) == {"Last-Event-ID", "lastEventId", "wait"}
    assert limits["wait"] == 30
    highest = limits["Last-Event-ID"]
    assert limits["lastEventId"] == highest
    for raw, accepted in [(str(highest), True), (str(highest + 1), False), ("0", True)]:
        request = Request({"type": "http", "headers": [(b"last-event-id", raw.encode())]})
        try:
            assert params.last_event_id(request) == int(raw)
        except errors.InvalidLastEventIdError:
            assert not accepted, raw
        else:
            assert accepted, raw


def test_the_document_names_the_models_the_server_offers(
    app: PlannerApp, document: dict[str, Any]
) -> None:
    body = document["components"]["schemas"]["SuggestionRequest"]
    models = list(app.state.planner.service.provider.models)
    choices = body["properties"]["customModel"]["anyOf"]
    assert choices[-1] == {"type": "null"}
    assert choices[:-1] == ([{"type": "string", "enum": models}] if models else [])
