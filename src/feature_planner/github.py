"""A suggestion as a GitHub issue: the issue's text, and the one REST call that files it.

httpx directly, not a GitHub client library: the service makes two calls (create an issue;
read the repository's default branch when the planned repository is not a git checkout), and
what matters is how each refusal reaches the user, which is ours to write either way.
githubkit would bring GitHub's whole generated schema; PyGithub is synchronous and retries
by itself, rate limits included, where a user is better told at once when to try again.

What the issue says comes from a model and from the repository; GitHub would turn an
``@name`` in it into a notification and a ``#12`` into a link (and a back-reference on that
issue). ``neutralise`` breaks both with a zero-width joiner, invisible in the rendered issue.
The token is sent in one header and never written anywhere else: not in a message, not in a
log line.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx

from . import __version__
from .errors import NotConfiguredError, UpstreamError
from .models import Evidence, Suggestion, SuggestionRequest

__all__ = [
    "API_VERSION",
    "FiledIssue",
    "GitHubIssues",
    "IssueDraft",
    "issue_draft",
    "neutralise",
    "permalink",
    "web_url",
]

logger = logging.getLogger("feature_planner.github")

API_VERSION: Final = "2022-11-28"
NOT_CONFIGURED: Final = (
    "Filing issues is not configured on this server: set FEATURE_PLANNER_GITHUB_TOKEN and "
    "FEATURE_PLANNER_GITHUB_REPOSITORY (owner/name)"
)
_MAX_TITLE = 256  # GitHub refuses longer titles (422)
_MAX_BODY = 65_536  # and longer bodies
_GIT_TIMEOUT_S = 5.0
_ZWJ = "\u200d"
# An @mention (of a user or a team; GitHub sees none after a letter or digit, as in an
# e-mail address) or an issue reference (#12, GH-12, owner/name#12): the characters GitHub
# starts one with, followed by what makes it one.
_REFERENCES = re.compile(r"(?<![A-Za-z0-9_])@(?=[A-Za-z0-9])|#(?=\d)|\bGH-(?=\d)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FiledIssue:
    number: int
    url: str  # the issue's page (html_url)


@dataclass(frozen=True, slots=True)
class IssueDraft:
    title: str
    body: str
    labels: tuple[str, ...]


def neutralise(text: str) -> str:
    """``text`` as it reads, but pinging nobody and linking no issue: a zero-width joiner
    after each ``@`` of a mention and each ``#``/``GH-`` of an issue reference."""
    return _REFERENCES.sub(lambda match: match.group(0) + _ZWJ, text)


def web_url(api_url: str) -> str:
    """GitHub's web address for its REST API's: ``https://api.github.com`` (and
    ``https://api.SUBDOMAIN.ghe.com``) → the host without ``api.``; GitHub Enterprise
    Server's ``https://HOST/api/v3`` → ``https://HOST``."""
    parts = urlsplit(api_url.rstrip("/"))
    host, path = parts.netloc, parts.path
    if path.endswith("/api/v3"):
        path = path.removesuffix("/api/v3")
    elif not path and host.startswith("api."):
        host = host.removeprefix("api.")
    return f"{parts.scheme}://{host}{path}"


def permalink(blob_url: str, evidence: Evidence, prefix: str = "") -> str:
    """``<blob_url>/<path>#L<start>-L<end>``; ``prefix`` is where the planned repository
    lies inside its git checkout. The path is percent-encoded (an ``@`` or ``#`` in it
    neither mentions nor cuts the link)."""
    path = quote(prefix + evidence.path.lstrip("/"), safe="/-_.~")
    return f"{blob_url}/{path}#L{evidence.start_line}-L{evidence.end_line}"


def issue_draft(
    request: SuggestionRequest,
    suggestion: Suggestion,
    *,
    blob_url: str,
    prefix: str = "",
    job_id: str,
    index: int,
) -> IssueDraft:
    """The issue for one suggestion: its title; a body with the description, rationale,
    considerations, effort, impact and evidence (permalinks under ``blob_url``, one a line,
    which GitHub shows as the code they point at); labels from type and priority."""
    title = neutralise(" ".join(suggestion.title.split()))
    if len(title) > _MAX_TITLE:
        title = title[: _MAX_TITLE - 1] + "…"
    sections = [
        neutralise(suggestion.description.strip()),
        "### Why",
        neutralise(suggestion.rationale.strip()),
    ]
    if suggestion.implementation_considerations:
        sections += [
            "### Implementation considerations",
            "\n".join(
                f"- {neutralise(' '.join(item.split()))}"
                for item in suggestion.implementation_considerations
            ),
        ]
    sizes = [
        f"**{name}:** {value.value}"
        for name, value in (("Effort", suggestion.effort), ("Impact", suggestion.impact))
        if value is not None
    ]
    if sizes:
        sections.append(" · ".join(sizes))
    if suggestion.evidence:
        sections += [
            "### Evidence",
            *(permalink(blob_url, item, prefix) for item in suggestion.evidence),
        ]
    target = neutralise(" ".join(request.page_or_component.split()))
    sections.append(
        f"<sub>Suggested by Feature Planner for “{target}” "
        f"({request.feature_type.value}, {request.priority_level.value} priority): "
        f"job {job_id}, suggestion {index + 1}.</sub>"
    )
    body = "\n\n".join(sections) + "\n"
    if len(body) > _MAX_BODY:
        body = body[: _MAX_BODY - 20] + "\n\n*(cut short)*\n"
    labels = (request.feature_type.value, f"priority: {request.priority_level.value}")
    return IssueDraft(title, body, labels)


class GitHubIssues:
    """Files issues in ``repository`` (``owner/name``) with ``token``, through the REST API at
    ``api_url``. ``checkout`` is the planned repository: its current commit makes the
    evidence's permalinks. Each call has ``timeout_s``; nothing is retried but a refusal of
    the labels alone (below)."""

    def __init__(
        self,
        *,
        token: str | None,
        repository: str | None,
        api_url: str,
        checkout: Path,
        timeout_s: float = 10.0,
    ) -> None:
        self._token = token
        self._repository = repository
        self._api_url = api_url.rstrip("/")
        self._web_url = web_url(api_url)
        self._checkout = checkout
        self._timeout = httpx.Timeout(timeout_s)

    @property
    def configured(self) -> bool:
        return bool(self._token) and bool(self._repository)

    @property
    def repository(self) -> str:
        if not self._repository:
            raise NotConfiguredError(NOT_CONFIGURED)
        return self._repository

    async def file(
        self, request: SuggestionRequest, suggestion: Suggestion, *, job_id: str, index: int
    ) -> FiledIssue:
        """Create the issue; ``UpstreamError`` with GitHub's own words when it refuses.

        Labels GitHub does not have are made by GitHub as it files the issue; when it
        refuses the labels themselves (422 naming them), the issue is filed without them,
        as the issue matters more than its labels."""
        if not self.configured:
            raise NotConfiguredError(NOT_CONFIGURED)
        async with httpx.AsyncClient(
            base_url=self._api_url,
            headers=self._headers(),
            timeout=self._timeout,
            follow_redirects=False,
        ) as client:
            ref, prefix = await _checkout_commit(self._checkout)
            if ref is None:
                ref = await self._default_branch(client)
            blob_url = f"{self._web_url}/{self.repository}/blob/{quote(ref, safe='/')}"
            draft = issue_draft(
                request, suggestion, blob_url=blob_url, prefix=prefix, job_id=job_id, index=index
            )
            payload: dict[str, Any] = {
                "title": draft.title,
                "body": draft.body,
                "labels": list(draft.labels),
            }
            response = await self._call(client, "POST", f"/repos/{self.repository}/issues", payload)
            if response.status_code == 422 and _refuses_labels(response):
                logger.warning(
                    "GitHub refused the labels %s (%s); filing the issue without them",
                    ", ".join(draft.labels),
                    _message(response),
                )
                del payload["labels"]
                response = await self._call(
                    client, "POST", f"/repos/{self.repository}/issues", payload
                )
            if response.status_code != 201:
                raise self._refusal(response)
            issue = _json(response)
            number, url = issue.get("number"), issue.get("html_url")
            if not isinstance(number, int) or not isinstance(url, str):
                raise UpstreamError("GitHub answered 201 without the issue's number and html_url")
            logger.info("issue filed: %s#%d for job %s", self.repository, number, job_id)
            return FiledIssue(number, url)

    async def _default_branch(self, client: httpx.AsyncClient) -> str:
        """The branch the permalinks point at when the planned repository is no git
        checkout: the GitHub repository's default branch."""
        response = await self._call(client, "GET", f"/repos/{self.repository}")
        if response.status_code != 200:
            raise self._refusal(response)
        branch = _json(response).get("default_branch")
        return branch if isinstance(branch, str) and branch else "main"

    def _headers(self) -> dict[str, str]:
        return {
            "accept": "application/vnd.github+json",
            "x-github-api-version": API_VERSION,
            "authorization": f"Bearer {self._token}",
            "user-agent": f"feature-planner/{__version__}",
        }

    async def _call(
        self, client: httpx.AsyncClient, method: str, path: str, payload: Any = None
    ) -> httpx.Response:
        try:
            return await client.request(method, path, json=payload)
        except httpx.TimeoutException:
            raise self._failed(f"did not answer within {self._timeout.read:g} s") from None
        except httpx.HTTPError as exc:
            raise self._failed(f"could not be reached ({type(exc).__name__})") from None

    def _failed(self, why: str) -> UpstreamError:
        logger.warning("GitHub's API at %s %s", self._api_url, why)
        return UpstreamError(f"GitHub's API at {self._api_url} {why}; try again shortly")

    def _refusal(self, response: httpx.Response) -> UpstreamError:
        """What GitHub said, with what the user can do about it."""
        status, said = response.status_code, _message(response)
        headers = response.headers
        if status in (403, 429) and headers.get("x-ratelimit-remaining") == "0":
            message = f"GitHub's rate limit is used up ({said}); {_resets(headers)}"
        elif status in (403, 429) and "retry-after" in headers:
            message = (
                f"GitHub's secondary rate limit was hit ({said}); try again in "
                f"{headers['retry-after']} s"
            )
        elif status == 401:
            message = f"GitHub refused the token ({said}): check FEATURE_PLANNER_GITHUB_TOKEN"
        elif status == 403:
            message = (
                f"GitHub refused to file the issue ({said}): the token needs permission to "
                f"create issues in {self._repository}"
            )
        elif status == 404:
            message = (
                f"GitHub has no repository {self._repository} this token can see ({said}): "
                "check FEATURE_PLANNER_GITHUB_REPOSITORY and the token's access"
            )
        elif status == 410:
            message = f"GitHub refused: {said} ({self._repository})"
        elif status == 422:
            message = f"GitHub refused the issue: {said}"
        else:
            message = f"GitHub answered {status}: {said}"
        logger.warning("GitHub refused an issue request (%d): %s", status, message)
        return UpstreamError(message)


async def _checkout_commit(checkout: Path) -> tuple[str | None, str]:
    """The checkout's current commit and the planned repository's place in it (``src/`` when
    it is a folder of the checkout); ``(None, "")`` when it is no git checkout."""
    argv = ["git", "-C", str(checkout), "rev-parse", "--show-prefix", "--verify", "HEAD"]
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            argv,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None, ""
    lines = done.stdout.split("\n")
    if done.returncode != 0 or len(lines) < 2 or not re.fullmatch(r"[0-9a-f]{40,64}", lines[1]):
        return None, ""
    return lines[1], lines[0]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _message(response: httpx.Response) -> str:
    """GitHub's ``message``, with each of its validation ``errors`` said too."""
    data = _json(response)
    message = data.get("message")
    text = message if isinstance(message, str) and message else response.reason_phrase
    details = [_error_text(error) for error in data.get("errors") or [] if isinstance(error, dict)]
    details = [detail for detail in details if detail]
    return f"{text}: {'; '.join(details)}" if details else text


def _error_text(error: Mapping[str, Any]) -> str:
    if isinstance(error.get("message"), str):
        return str(error["message"])
    parts = [str(error[key]) for key in ("resource", "field", "code") if key in error]
    value = f" {error['value']!r}" if "value" in error else ""
    return " ".join(parts) + value


def _refuses_labels(response: httpx.Response) -> bool:
    errors = _json(response).get("errors") or []
    return any(
        isinstance(error, dict)
        and (error.get("resource") == "Label" or error.get("field") == "labels")
        for error in errors
    )


def _resets(headers: httpx.Headers) -> str:
    reset = headers.get("x-ratelimit-reset", "")
    if not reset.isdigit():
        return "try again later"
    at = datetime.fromtimestamp(int(reset), UTC)
    wait_s = max(0, int(reset) - int(datetime.now(UTC).timestamp()))
    return f"it resets at {at:%Y-%m-%d %H:%M:%S} UTC (in {wait_s} s)"
