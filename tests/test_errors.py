"""The error tree: complete, drawn truly in its docstring, and the same on both sides of
the wire (the server answers with a class; the client maps the answer back to it)."""

from __future__ import annotations

import inspect
import re
from typing import Any

import httpx
import pytest

from feature_planner import errors
from feature_planner.client import error_from_response
from feature_planner.errors import (
    ERRORS_BY_CODE,
    ClientSideError,
    FeaturePlannerError,
    MethodNotAllowedError,
    RateLimitedError,
    RequestValidationError,
)
from feature_planner.web.responses import error_response

# One line of the drawing: its indent (the tree's glyphs), the class, its status and code.
TREE_LINE = re.compile(
    r"^(?P<indent>[│├└─ ]*)(?P<name>[A-Z]\w+)(?:\s+(?P<status>\d{3}) (?P<code>[A-Z_]+))?"
)


def defined_classes() -> dict[str, type[FeaturePlannerError]]:
    return {
        name: value
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, FeaturePlannerError)
    }


def drawn_tree() -> list[tuple[int, str, int | None, str | None]]:
    """The docstring's drawing: (depth, class name, status, code) per line."""
    doc = errors.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    lines = []
    for line in block.splitlines():
        match = TREE_LINE.match(line[4:])  # the block is indented by 4
        assert match is not None, line
        depth = len(match["indent"]) // 4
        status = int(match["status"]) if match["status"] else None
        lines.append((depth, match["name"], status, match["code"]))
    return lines


def test_the_docstring_draws_exactly_the_classes_that_exist() -> None:
    drawn = [name for _, name, _, _ in drawn_tree()]
    assert len(drawn) == len(set(drawn)), drawn
    assert set(drawn) == set(defined_classes())


def test_the_drawing_shows_each_class_under_its_parent_with_its_status_and_code() -> None:
    classes = defined_classes()
    parents: list[str] = []
    for depth, name, status, code in drawn_tree():
        cls = classes[name]
        del parents[depth:]
        if parents:
            assert cls.__bases__ == (classes[parents[-1]],), name
        else:
            assert cls is FeaturePlannerError
        parents.append(name)
        if status is not None:
            assert (status, code) == (cls.status, cls.code), name


def test_every_code_a_server_sends_maps_to_its_class() -> None:
    sent = {
        cls
        for cls in defined_classes().values()
        if cls is not FeaturePlannerError
        and "code" in vars(cls)
        and not issubclass(cls, ClientSideError)
    }
    assert set(ERRORS_BY_CODE.values()) == sent
    for code, cls in ERRORS_BY_CODE.items():
        assert cls.code == code
    assert "UNEXPECTED_RESPONSE" not in ERRORS_BY_CODE  # the client's own: never sent


def test_a_second_class_with_a_taken_code_is_refused() -> None:
    before = dict(ERRORS_BY_CODE)
    with pytest.raises(TypeError, match="JOB_NOT_FOUND"):

        class AnotherNotFound(FeaturePlannerError):
            status = 404
            code = "JOB_NOT_FOUND"

    assert dict(ERRORS_BY_CODE) == before


def test_every_class_says_what_it_means() -> None:
    for name, cls in defined_classes().items():
        assert cls.__doc__ and cls.__doc__.strip(), name


def sample(cls: type[FeaturePlannerError]) -> FeaturePlannerError:
    """An instance of ``cls`` with whatever it carries beside its message."""
    if cls is RequestValidationError:
        return cls([{"field": "priorityLevel", "message": "is required"}])
    if issubclass(cls, RateLimitedError):
        return cls(42)
    if cls is MethodNotAllowedError:
        return cls(["GET", "DELETE"])
    return cls("what went wrong")


def carried(error: FeaturePlannerError) -> dict[str, Any]:
    return {
        name: getattr(error, name)
        for name in ("message", "fields", "retry_after", "allow")
        if hasattr(error, name)
    }


@pytest.mark.parametrize("cls", sorted(ERRORS_BY_CODE.values(), key=lambda cls: cls.code))
def test_the_client_reads_back_what_the_server_answers(cls: type[FeaturePlannerError]) -> None:
    sent = sample(cls)
    answer = error_response(sent)
    response = httpx.Response(answer.status_code, headers=answer.headers, content=answer.body)
    received = error_from_response(response)
    assert type(received) is cls
    assert carried(received) == carried(sent)


@pytest.mark.parametrize("cls", sorted(ERRORS_BY_CODE.values(), key=lambda cls: cls.code))
def test_status_headers_and_body_come_from_the_class(cls: type[FeaturePlannerError]) -> None:
    error = sample(cls)
    answer = error_response(error)
    assert answer.status_code == cls.status
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-type"] == "application/json"
    body = httpx.Response(200, content=answer.body).json()
    assert body == error.to_wire()
    assert body["success"] is False
    assert body["error"]["code"] == cls.code
    assert body["error"]["message"] == error.message


def test_the_headers_each_refusal_needs() -> None:
    assert error_response(errors.AuthenticationError()).headers["www-authenticate"] == "Bearer"
    assert error_response(RateLimitedError(7)).headers["retry-after"] == "7"
    assert error_response(errors.ServerDrainingError()).headers["retry-after"] == "1"
    assert error_response(MethodNotAllowedError(["GET", "PUT"])).headers["allow"] == "GET, PUT"
    assert "retry-after" not in error_response(errors.TooManyStreamsError()).headers


def test_the_body_carries_the_details_of_its_class() -> None:
    assert RateLimitedError(7).to_wire()["error"]["retryAfter"] == 7
    fields = [{"field": "x", "message": "is required"}]
    assert RequestValidationError(fields).to_wire()["error"]["fields"] == fields
    assert set(errors.JobNotFoundError().to_wire()["error"]) == {"code", "message"}
