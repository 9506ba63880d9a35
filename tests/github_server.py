"""A local fake of GitHub's REST API: the two calls the service makes, as GitHub answers them.

``POST /repos/{owner}/{repo}/issues`` answers 201 with the issue (``number``, ``html_url``,
``labels`` as objects, a ``Location``); ``GET /repos/{owner}/{repo}`` the repository with its
``default_branch``. It is served under ``/api/v3`` as GitHub Enterprise Server serves it, and
refuses as GitHub does, with GitHub's bodies (``message``, ``documentation_url``, ``status``;
``errors`` on 422) and headers (``x-ratelimit-*`` on every answer, ``retry-after`` on a
secondary limit): no token or a wrong one (401), no ``User-Agent`` (403), an unknown API
version (400), a repository the token cannot see (404), a title it refuses (422), a label
``refused_labels`` names (422). ``refuse_next`` plays a given refusal on the next request.

    fake = FakeGitHub()
    with serve_github(fake) as api_url:  # http://127.0.0.1:<port>/api/v3
        ...
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feature_planner.serving import BackgroundServer

__all__ = [
    "OWNER_REPO",
    "TOKEN",
    "FakeGitHub",
    "Refusal",
    "Seen",
    "bad_credentials",
    "no_permission",
    "rate_limited",
    "secondary_rate_limit",
    "serve_github",
    "validation_failed",
]

TOKEN = "ghp_FAKEt0kenForTestsOnly0123456789abcdef"  # the shape of a classic PAT
OWNER_REPO = "acme/shop"
_DOCS = "https://docs.github.com/rest/issues/issues#create-an-issue"
_VERSIONS = ("2022-11-28", "2026-03-10")
_LIMIT = 5000


@dataclass(frozen=True)
class Refusal:
    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request the fake received."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any


def bad_credentials() -> Refusal:
    return Refusal(
        401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
    )


def no_permission() -> Refusal:
    return Refusal(
        403,
        {
            "message": "Resource not accessible by personal access token",
            "documentation_url": _DOCS,
            "status": "403",
        },
    )


def rate_limited(reset_at: int, status: int = 403) -> Refusal:
    """The primary rate limit, used up until ``reset_at`` (epoch seconds)."""
    return Refusal(
        status,
        {
            "message": "API rate limit exceeded for user ID 1.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        },
        {
            "x-ratelimit-limit": str(_LIMIT),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": str(_LIMIT),
            "x-ratelimit-reset": str(reset_at),
            "x-ratelimit-resource": "core",
        },
    )


def secondary_rate_limit(retry_after_s: int) -> Refusal:
    return Refusal(
        403,
        {
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
            "before you try again. If you reach out to GitHub Support for help, please include "
            "the request ID ABCD:1234:5678.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        },
        {"retry-after": str(retry_after_s)},
    )


def validation_failed(*errors: Mapping[str, Any]) -> Refusal:
    return Refusal(
        422,
        {
            "message": "Validation Failed",
            "errors": list(errors),
            "documentation_url": _DOCS,
            "status": "422",
        },
    )


def _not_found() -> Refusal:
    return Refusal(404, {"message": "Not Found", "documentation_url": _DOCS, "status": "404"})


class FakeGitHub:
    """Issues filed in ``repository``; every request is kept in ``seen``."""

    def __init__(
        self,
        *,
        token: str = TOKEN,
        repository: str = OWNER_REPO,
        default_branch: str = "trunk",
        create_delay_s: float = 0.0,
    ) -> None:
        self.token = token
        self.repository = repository
        self.default_branch = default_branch
        self.create_delay_s = create_delay_s
        self.refused_labels: set[str] = set()
        self.issues: list[dict[str, Any]] = []
        self.seen: list[Seen] = []
        self._refusals: deque[Refusal] = deque()
        self._web = ""  # set from the first request: http://127.0.0.1:<port>
        self.app = Starlette(
            routes=[
                Route("/api/v3/repos/{owner}/{repo}", self._repository, methods=["GET"]),
                Route("/api/v3/repos/{owner}/{repo}/issues", self._create, methods=["POST"]),
            ]
        )

    def refuse_next(self, refusal: Refusal) -> None:
        self._refusals.append(refusal)

    @property
    def created(self) -> list[Seen]:
        """The issue creations asked for (refused ones included)."""
        return [seen for seen in self.seen if seen.method == "POST"]

    async def _repository(self, request: Request) -> Response:
        refusal = await self._check(request)
        if refusal is not None:
            return self._answer(refusal)
        owner, name = self.repository.split("/")
        return self._json(
            200,
            {
                "id": 1296269,
                "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
                "name": name,
                "full_name": self.repository,
                "owner": {"login": owner, "id": 1, "type": "Organization"},
                "private": True,
                "html_url": f"{self._web}/{self.repository}",
                "default_branch": self.default_branch,
                "has_issues": True,
            },
        )

    async def _create(self, request: Request) -> Response:
        refusal = await self._check(request)
        if refusal is not None:
            return self._answer(refusal)
        payload = self.seen[-1].body
        problem = self._invalid(payload)
        if problem is not None:
            return self._answer(problem)
        if self.create_delay_s:
            await asyncio.sleep(self.create_delay_s)
        number = len(self.issues) + 1
        url = f"{self._web}/{self.repository}/issues/{number}"
        api = f"{self._web}/api/v3/repos/{self.repository}/issues/{number}"
        issue = {
            "id": 1000 + number,
            "node_id": f"I_kwDOfake{number}",
            "url": api,
            "repository_url": f"{self._web}/api/v3/repos/{self.repository}",
            "html_url": url,
            "number": number,
            "state": "open",
            "title": payload["title"],
            "body": payload.get("body"),
            "user": {"login": "feature-planner-bot", "id": 2, "type": "User"},
            "labels": [
                {"id": n, "name": label, "color": "ededed", "default": False}
                for n, label in enumerate(payload.get("labels") or [], start=1)
            ],
            "assignees": [],
            "comments": 0,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.issues.append(issue)
        return self._json(201, issue, {"location": api})

    async def _check(self, request: Request) -> Refusal | None:
        """Record the request; the refusal GitHub would answer it with, if any."""
        raw = await request.body()
        self._web = f"{request.url.scheme}://{request.url.netloc}"
        body = json.loads(raw) if raw else None
        self.seen.append(Seen(request.method, request.url.path, dict(request.headers), body))
        if self._refusals:
            return self._refusals.popleft()
        if not request.headers.get("user-agent"):
            return Refusal(
                403,
                {
                    "message": "Request forbidden by administrative rules. Please make sure "
                    "your request has a User-Agent header"
                },
            )
        version = request.headers.get("x-github-api-version")
        if version is not None and version not in _VERSIONS:
            return Refusal(
                400,
                {
                    "message": f"API version {version} is not supported.",
                    "documentation_url": "https://docs.github.com/rest/overview/api-versions",
                },
            )
        authorization = request.headers.get("authorization", "")
        scheme, _, credential = authorization.partition(" ")
        if not authorization:
            return Refusal(401, {"message": "Requires authentication", "documentation_url": _DOCS})
        if scheme.lower() not in ("bearer", "token") or credential != self.token:
            return bad_credentials()
        owner, repo = request.path_params["owner"], request.path_params["repo"]
        if f"{owner}/{repo}".lower() != self.repository.lower():
            return _not_found()
        return None

    def _invalid(self, payload: Any) -> Refusal | None:
        if not isinstance(payload, dict) or not isinstance(payload.get("title"), str):
            return validation_failed(
                {"resource": "Issue", "code": "missing_field", "field": "title"}
            )
        if len(payload["title"]) > 256:
            return validation_failed(
                {
                    "resource": "Issue",
                    "code": "custom",
                    "field": "title",
                    "message": "title is too long (maximum is 256 characters)",
                }
            )
        if len(payload.get("body") or "") > 65536:
            return validation_failed(
                {
                    "resource": "Issue",
                    "code": "custom",
                    "field": "body",
                    "message": "body is too long (maximum is 65536 characters)",
                }
            )
        refused = [label for label in payload.get("labels") or [] if label in self.refused_labels]
        if refused:
            return validation_failed(
                *(
                    {"value": label, "resource": "Label", "field": "name", "code": "invalid"}
                    for label in refused
                )
            )
        return None

    def _answer(self, refusal: Refusal) -> Response:
        return self._json(refusal.status, dict(refusal.body), dict(refusal.headers))

    def _json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
        used = len(self.seen)
        standard = {
            "x-github-media-type": "github.v3; format=json",
            "x-github-api-version-selected": _VERSIONS[0],
            "x-github-request-id": f"FAKE:{used:04d}",
            "x-ratelimit-limit": str(_LIMIT),
            "x-ratelimit-remaining": str(_LIMIT - used),
            "x-ratelimit-used": str(used),
            "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-ratelimit-resource": "core",
        }
        return JSONResponse(body, status, {**standard, **(headers or {})})


@contextmanager
def serve_github(fake: FakeGitHub) -> Iterator[str]:
    """Run the fake on a free port; yields the API URL (``…/api/v3``, as GitHub Enterprise)."""
    with BackgroundServer(fake.app) as server:
        yield f"{server.url}/api/v3"
