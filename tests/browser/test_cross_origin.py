"""A page on another origin runs the whole two-phase flow, as the issue's "Done when" asks.

The page is served by a small HTTP server of its own (another port, so another origin). Its
script does what a Clerk-protected app would do: it POSTs Phase 1 with the Clerk session
token as ``Authorization: Bearer`` (a CORS preflight happens), then follows the job with a
plain ``new EventSource(streamUrl + "?token=" + streamToken)`` — no cookie, no header. The
service checks the token against a JWKS served by a stand-in identity provider.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect

from tests.conftest import API, VALID_BODY, LiveServer, ServerFactory
from tests.identity import ISSUER, JwksServer, SigningKey, TokenMinter

from .conftest import ARTIFACTS, PageProblems, _failed
from .helpers import expected_text

# The other site's page. Its script records every event it receives in `window.__events`
# and in the list `#events`, so that a failure screenshot shows what the page got.
PAGE_HTML = b"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Another site</title><link rel="icon" href="data:,">
<script src="/flow.js"></script></head>
<body><h1>Another site</h1><ol id="events"></ol></body>
</html>
"""

FLOW_JS = b"""
window.__events = [];

function record(name, data) {
  window.__events.push({ name, data });
  const item = document.createElement('li');
  item.dataset.event = name;
  item.textContent = name + ' ' + JSON.stringify(data);
  document.getElementById('events').append(item);
}

// Phase 1, with the identity provider's session token. What the script can see of the
// answer, or the error `fetch` rejected with.
async function createJob(service, token, body) {
  try {
    const response = await fetch(service + '/api/feature-planner/suggest-feature', {
      method: 'POST',
      headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  } catch (error) {
    return { error: { name: error.name, message: error.message } };
  }
}

// Phase 2 with a plain EventSource (no credentials): every event until `complete`, an
// `error` event from the server, or a failed connection; then it is closed.
function follow(url, timeoutMs) {
  return new Promise((resolve) => {
    const events = [];
    const source = new EventSource(url);
    let timer = null;
    const finish = (outcome) => {
      const readyState = source.readyState;
      source.close();
      clearTimeout(timer);
      resolve({ outcome, readyState, events });
    };
    timer = setTimeout(() => finish('timeout'), timeoutMs);
    const keep = (name) => (event) => {
      const data = JSON.parse(event.data);
      events.push({ name, data, id: event.lastEventId });
      record(name, data);
    };
    source.addEventListener('connected', keep('connected'));
    source.addEventListener('delta', keep('delta'));
    source.addEventListener('complete', (event) => {
      keep('complete')(event);
      finish('complete');
    });
    source.addEventListener('error', (event) => {
      if (typeof event.data === 'string') {
        keep('error')(event);  // the server's own `error` event
        finish('error-event');
      } else {
        record('connection-error', { readyState: source.readyState });
        finish('connection-error');
      }
    });
  });
}

// The whole flow, as a page of another site would run it.
async function runFlow({ service, token, body, timeoutMs }) {
  const created = await createJob(service, token, body);
  if (created.status !== 201) return { created };
  const { streamUrl, streamToken } = created.body.data;
  const url = service + streamUrl + '?token=' + encodeURIComponent(streamToken);
  return { created, ...(await follow(url, timeoutMs)) };
}

Object.assign(window, { createJob, follow, runFlow });
"""

FOLLOW_TIMEOUT_MS = 15_000
EVENT_SOURCE_CLOSED = 2
ELSEWHERE = "http://elsewhere.example.test"


# -- the other site --------------------------------------------------------------------


class OtherSite:
    """Serves the page at ``/`` and its script at ``/flow.js`` from its own port."""

    def __init__(self) -> None:
        files = {
            "/": ("text/html; charset=utf-8", PAGE_HTML),
            "/flow.js": ("text/javascript; charset=utf-8", FLOW_JS),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                content_type, body = files.get(self.path, ("text/plain", b"not found"))
                self.send_response(200 if self.path in files else 404)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.send_header("cache-control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OtherSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@dataclass
class OtherPage:
    """The other site's page in a fresh browser context, and what the browser fetched."""

    page: Page
    origin: str
    responses: list[Response] = field(default_factory=list)

    def run_flow(self, server: LiveServer, token: str) -> dict[str, Any]:
        result: dict[str, Any] = self.page.evaluate(
            "args => runFlow(args)",
            {
                "service": server.url,
                "token": token,
                "body": VALID_BODY,
                "timeoutMs": FOLLOW_TIMEOUT_MS,
            },
        )
        return result

    def create_job(self, server: LiveServer, token: str) -> dict[str, Any]:
        result: dict[str, Any] = self.page.evaluate(
            "([service, token, body]) => createJob(service, token, body)",
            [server.url, token, VALID_BODY],
        )
        return result

    def follow(self, url: str) -> dict[str, Any]:
        result: dict[str, Any] = self.page.evaluate(
            "([url, timeoutMs]) => follow(url, timeoutMs)", [url, FOLLOW_TIMEOUT_MS]
        )
        return result

    def responses_to(self, job_id: str) -> list[Response]:
        """The browser's responses from the job's stream URL (any query)."""
        return [r for r in self.responses if r.url.split("?")[0].endswith(f"{API}/{job_id}")]


OpenOtherPage = Callable[[], OtherPage]


@pytest.fixture
def other_site() -> Iterator[OtherSite]:
    with OtherSite() as site:
        yield site


@pytest.fixture
def open_other_page(
    browser: Browser,
    other_site: OtherSite,
    page_problems: PageProblems,
    request: pytest.FixtureRequest,
) -> Iterator[OpenOtherPage]:
    """``open_other_page()``: the other site's page, loaded. What goes wrong on it is
    recorded in ``page_problems`` (answers of 400 or more count for the other site's own
    requests; the service's refusals show as console errors), and a failing test leaves a
    screenshot in ``test-artifacts/``."""
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    def open_() -> OtherPage:
        context = browser.new_context()
        contexts.append(context)
        context.set_default_timeout(10_000)
        page_problems.watch_context(context)
        page = context.new_page()
        pages.append(page)
        page_problems.watch(page, [other_site.origin])
        other = OtherPage(page, other_site.origin)
        page.on("response", lambda response: other.responses.append(response))
        page.goto(other_site.origin + "/")
        expect(page.get_by_role("heading", name="Another site")).to_be_visible()
        return other

    yield open_

    page_problems.stop(pages)
    if _failed(request.node):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        for index, page in enumerate(pages):
            suffix = "" if index == 0 else f"-{index + 1}"
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / f"{name}{suffix}.png"), full_page=True)
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()


# -- the identity provider -------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return SigningKey.rsa()


@pytest.fixture
def jwks(signing_key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer([signing_key]).running() as server:
        yield server


@pytest.fixture
def minter(signing_key: SigningKey, other_site: OtherSite) -> TokenMinter:
    """Clerk-style session tokens whose ``azp`` is the other site's origin, as Clerk's are
    for a page of that site."""
    return TokenMinter(signing_key, authorized_party=other_site.origin)


@pytest.fixture
def start_service(
    make_server: ServerFactory, jwks: JwksServer, other_site: OtherSite
) -> Callable[..., LiveServer]:
    """The service in ``oidc`` mode; CORS allows the other site unless told otherwise."""

    def start(**overrides: Any) -> LiveServer:
        options: dict[str, Any] = {
            "auth": "oidc",
            "oidc_issuer": ISSUER,
            "oidc_jwks_url": jwks.url,
            "oidc_authorized_parties": other_site.origin,
            "cors_origins": other_site.origin,
            **overrides,
        }
        return make_server(**options)

    return start


def jobs_created(server: LiveServer) -> float:
    value = server.service.metrics.registry.get_sample_value("feature_planner_jobs_created_total")
    return value or 0.0


def preflight_headers(origin: str) -> dict[str, str]:
    """What Chromium sends before the page's create call."""
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }


def stream_url(server: LiveServer, job_id: str, token: str | None = None) -> str:
    url = f"{server.url}{API}/{job_id}"
    return url if token is None else f"{url}?{httpx.QueryParams(token=token)}"


# -- the tests -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_page_on_another_origin_runs_the_whole_flow(
    open_other_page: OpenOtherPage,
    start_service: Callable[..., LiveServer],
    minter: TokenMinter,
) -> None:
    server = start_service()
    other = open_other_page()
    assert other.origin != server.url  # another port: another origin

    result = other.run_flow(server, minter.mint("user_alice"))

    created = result["created"]
    assert created.get("status") == 201, created
    data = created["body"]["data"]
    assert data["streamUrl"] == f"{API}/{data['jobId']}"
    assert data["streamToken"]

    names = [event["name"] for event in result["events"]]
    assert result["outcome"] == "complete", names
    assert names[0] == "connected"
    assert names[-1] == "complete"
    assert len(names) >= 3
    assert set(names[1:-1]) == {"delta"}, names
    events = result["events"]
    deltas = "".join(event["data"]["text"] for event in events if event["name"] == "delta")
    assert deltas == expected_text(server.settings)
    suggestions = result["events"][-1]["data"]["suggestions"]
    assert len(suggestions) >= 3
    expect(other.page.locator("#events li")).to_have_count(len(names))

    # The browser's preflight for that POST, asked directly: this origin may send both
    # headers. The browser got both answers with CORS headers for the page's origin.
    preflight = server.http.options(API, headers=preflight_headers(other.origin))
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == other.origin
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type"} <= {h.strip() for h in allowed.split(",")}
    create_response = next(r for r in other.responses if r.request.method == "POST")
    assert create_response.status == 201
    assert create_response.headers.get("access-control-allow-origin") == other.origin
    (stream_response,) = other.responses_to(data["jobId"])
    assert stream_response.request.resource_type == "eventsource"
    assert stream_response.status == 200
    assert stream_response.headers.get("access-control-allow-origin") == other.origin
    assert stream_response.headers["content-type"].startswith("text/event-stream")

    # The job ran once, for the token's `sub`: another user of the same provider may not
    # follow it.
    assert server.service.executions == 1
    bob = {"authorization": f"Bearer {minter.mint('user_bob')}"}
    assert server.http.get(data["streamUrl"], headers=bob).status_code == 403


@pytest.mark.parametrize("cors_origins", [None, ELSEWHERE], ids=["cors-off", "other-origin"])
def test_without_cors_for_its_origin_the_page_cannot_create_a_job(
    open_other_page: OpenOtherPage,
    start_service: Callable[..., LiveServer],
    minter: TokenMinter,
    page_problems: PageProblems,
    cors_origins: str | None,
) -> None:
    server = start_service(cors_origins=cors_origins)
    # Chromium says why it did not send the POST, and counts it as a failed request.
    page_problems.expect_console_error(
        r"^Access to fetch at '[^']*/suggest-feature' from origin '[^']*' has been blocked by "
        r"CORS policy: Response to preflight request doesn't pass access control check"
    )
    page_problems.expect_request_failed(API, "net::ERR_FAILED")
    assert server.settings.cors_origins == ([ELSEWHERE] if cors_origins else [])
    other = open_other_page()
    token = minter.mint("user_alice")

    result = other.create_job(server, token)

    # The preflight is refused, so the POST is never sent: `fetch` rejects with TypeError.
    assert "status" not in result, result
    assert result["error"]["name"] == "TypeError", result
    assert jobs_created(server) == 0
    assert server.service.executions == 0
    # The preflight itself, as the browser sent it: no permission for this origin.
    preflight = server.http.options(API, headers=preflight_headers(other.origin))
    assert preflight.status_code >= 400
    assert "access-control-allow-origin" not in preflight.headers
    # The same token is good without a browser: it was CORS, not authentication.
    direct = server.http.post(API, json=VALID_BODY, headers={"authorization": f"Bearer {token}"})
    assert direct.status_code == 201, direct.text
    assert jobs_created(server) == 1


def test_a_stream_token_for_another_job_gets_an_error_and_no_events(
    open_other_page: OpenOtherPage,
    start_service: Callable[..., LiveServer],
    minter: TokenMinter,
    page_problems: PageProblems,
) -> None:
    server = start_service()
    other = open_other_page()
    token = minter.mint("user_alice")
    first = other.create_job(server, token)
    second = other.create_job(server, token)
    assert (first.get("status"), second.get("status")) == (201, 201), (first, second)
    job_id = first["body"]["data"]["jobId"]
    wrong_token = second["body"]["data"]["streamToken"]
    page_problems.expect_refusal(401, f"{API}/{job_id}")

    result = other.follow(stream_url(server, job_id, wrong_token))

    assert result["events"] == []
    assert result["outcome"] == "connection-error"
    # A refused EventSource is not retried: it stays closed.
    assert result["readyState"] == EVENT_SOURCE_CLOSED
    (refused,) = other.responses_to(job_id)
    assert refused.status == 401
    # The same request without a browser: 401, and it says why.
    direct = httpx.get(
        stream_url(server, job_id, wrong_token), headers={"origin": other.origin}, timeout=10
    )
    assert direct.status_code == 401, direct.text
    assert "another job" in direct.json()["error"]["message"]
    assert server.service.executions == 0
    # The right token follows that job to the end.
    right = other.follow(stream_url(server, job_id, first["body"]["data"]["streamToken"]))
    assert right["outcome"] == "complete", right["events"]
    assert server.service.executions == 1


def test_an_event_source_without_a_token_gets_no_events(
    open_other_page: OpenOtherPage,
    start_service: Callable[..., LiveServer],
    minter: TokenMinter,
    page_problems: PageProblems,
) -> None:
    server = start_service()
    other = open_other_page()
    created = other.create_job(server, minter.mint("user_alice"))
    assert created.get("status") == 201, created
    job_id = created["body"]["data"]["jobId"]
    page_problems.expect_refusal(401, f"{API}/{job_id}")

    result = other.follow(stream_url(server, job_id))

    assert result["events"] == []
    assert result["outcome"] == "connection-error"
    assert result["readyState"] == EVENT_SOURCE_CLOSED
    (refused,) = other.responses_to(job_id)
    assert refused.status == 401
    direct = httpx.get(stream_url(server, job_id), headers={"origin": other.origin}, timeout=10)
    assert direct.status_code == 401, direct.text
    assert server.service.executions == 0
