"""The shape of one row of the route table (``routes.py``): everything the router, the fast
path and the OpenAPI document need to know about a route, said once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from ..errors import FeaturePlannerError
from .state import AppState

__all__ = ["Access", "Answer", "Endpoint", "EventStream", "Handler", "Param"]

Handler = Callable[[AppState, Request], Awaitable[Response]]

# Who may call a route: anybody; a user (bearer token or session cookie); or, on a job's own
# routes, also the job-scoped stream token that Phase 1 answers.
Access = Literal["public", "user", "job"]


@dataclass(frozen=True, slots=True)
class Param:
    """A path, query or header parameter. ``type`` is an annotation whose constraints are the
    parameter's rules: pydantic writes its schema from them."""

    name: str
    location: Literal["path", "query", "header"]
    description: str
    type: Any
    required: bool = False


@dataclass(frozen=True, slots=True)
class EventStream:
    """The body of a ``text/event-stream`` answer: the events it may carry, by name."""

    events: Mapping[str, type[BaseModel]]


@dataclass(frozen=True, slots=True)
class Answer:
    """A success answer. ``body``: a type the JSON body is (inside ``{"success": true,
    "data": …}`` when ``envelope``), an ``EventStream``, ``str`` for text (of
    ``media_type``), or None for no body at all."""

    status: int
    description: str
    body: Any = None
    envelope: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)  # name: description
    media_type: str = "text/plain"  # of a ``str`` body


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One method of one path.

    ``errors`` are the refusals the route itself may answer (the request guard's, which
    every route may answer, are added to the document for all). ``tag`` groups the route in
    the OpenAPI document; a route without one (the page, the login link) is not described
    there. ``fast`` routes are answered ahead of the framework's layers (``FastPath``).
    """

    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE"]
    path: str
    handler: Handler
    summary: str
    answers: tuple[Answer, ...] = ()
    errors: tuple[type[FeaturePlannerError], ...] = ()
    body: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    access: Access = "user"
    tag: str | None = None
    description: str | None = None
    fast: bool = False
