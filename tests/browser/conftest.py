"""Browser fixtures: Debian's Chromium driven by Playwright, and a TCP relay that can cut.

The browser is shared by the session; each test gets fresh contexts (cookies, storage), and
a failing test leaves a screenshot of each of its pages in ``test-artifacts/``.

A page must load and run cleanly: every console error, uncaught script error, failed
request and same-origin answer of 400 or more on a test's pages fails the test
(``PageProblems``), unless the test declared it, one kind of refusal at a time, with
``page_problems.expect_refusal(...)`` and its siblings.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    Request,
    Response,
    sync_playwright,
)
from playwright.sync_api import expect as pw_expect

from feature_planner.serving import free_port
from tests.conftest import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Records every value the page's state machine (`#app[data-state]`) passes through, in
# order, including states that last less than a frame, in `window.__fpStates`; and every
# text the live region (`#announcer`) was given, in `window.__fpAnnounced`.
STATE_RECORDER = """
window.__fpStates = [];
window.__fpAnnounced = [];
document.addEventListener('DOMContentLoaded', () => {
  const app = document.getElementById('app');
  const states = window.__fpStates;
  const push = (s) => {
    if (s !== null && s !== undefined && states[states.length - 1] !== s) states.push(s);
  };
  push(app.dataset.state);
  new MutationObserver((records) => {
    for (const r of records) push(r.oldValue);
    push(app.dataset.state);
  }).observe(app, { attributes: true, attributeFilter: ['data-state'], attributeOldValue: true });
  const announcer = document.getElementById('announcer');
  new MutationObserver(() => {
    if (announcer.textContent) window.__fpAnnounced.push(announcer.textContent);
  }).observe(announcer, { childList: true, characterData: true, subtree: true });
});
"""

# Tells Python (``PageProblems``) each time a page closes an EventSource that is still open.
# Closing a stream the page no longer wants is the page's decision, not a failure; Chromium
# reports it as a failed request (``net::ERR_ABORTED``) when bytes were still on the way,
# e.g. the server's end of the stream right behind the final event.
STREAM_CLOSE_RECORDER = """
(() => {
  const close = EventSource.prototype.close;
  EventSource.prototype.close = function () {
    if (this.readyState !== EventSource.CLOSED) window.__fpStreamClosed(this.url);
    return close.call(this);
  };
})();
"""

# How a failed request of an EventSource that was aborted reads in ``PageProblem.text``.
_STREAM_ABORTED = re.compile(r"^net::ERR_ABORTED GET \(eventsource\)$")

OpenPage = Callable[..., Page]
ProblemKind: TypeAlias = Literal["console", "pageerror", "requestfailed", "response"]


# -- what went wrong on the pages ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageProblem:
    """One thing that went wrong on a page. ``kind`` is ``console`` (an error message),
    ``pageerror`` (an uncaught script error), ``requestfailed`` or ``response`` (a
    same-origin answer of 400 or more); ``url`` is the resource it concerns."""

    kind: ProblemKind
    text: str
    url: str

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def __str__(self) -> str:
        return f"{self.kind}: {self.text} [{self.url}]"


@dataclass(frozen=True, slots=True)
class _Expected:
    kind: ProblemKind
    text: re.Pattern[str]  # searched in ``PageProblem.text``
    path: re.Pattern[str] | None  # matched against the whole URL path

    def excuses(self, problem: PageProblem) -> bool:
        return (
            problem.kind == self.kind
            and self.text.search(problem.text) is not None
            and (self.path is None or self.path.fullmatch(problem.path) is not None)
        )


class PageProblems:
    """Everything that went wrong on a test's pages, and what the test said it provokes.

    ``watch(page, origins)`` records, from the moment the page is opened, its console
    errors, uncaught script errors, failed requests, and answers of 400 or more to requests
    for ``origins``. ``unexpected()`` is what no ``expect_*`` declaration excuses.

    One thing is not a problem: a request that failed with ``net::ERR_ABORTED`` because the
    page itself closed that EventSource (``STREAM_CLOSE_RECORDER``), once per close.
    """

    def __init__(self) -> None:
        self.seen: list[PageProblem] = []
        self._expected: list[_Expected] = []
        self._closed_streams: Counter[str] = Counter()
        self._recording = True

    # -- declarations ------------------------------------------------------------------

    def expect_refusal(self, status: int, path: str, *, method: str = "GET") -> None:
        """The server refuses ``method path`` (``path`` a regular expression for the whole
        URL path) with ``status``, on purpose. Expected with it: the answer, the line
        Chromium writes to the console for it, and, for an EventSource, the abort of the
        refusal's body (an EventSource that is refused gives up at once, and Chromium
        reports ``net::ERR_ABORTED`` when the body was still on the way)."""
        where = re.compile(path)
        self._expected += [
            _Expected("response", re.compile(rf"^{status} {method} "), where),
            _Expected("console", re.compile(rf"status of {status} \("), where),
        ]
        if method == "GET":
            self._expected.append(_Expected("requestfailed", _STREAM_ABORTED, where))

    def expect_console_error(self, pattern: str, *, path: str | None = None) -> None:
        """A console error whose text contains ``pattern`` (a regular expression), about
        a resource whose URL path matches ``path`` when given."""
        where = None if path is None else re.compile(path)
        self._expected.append(_Expected("console", re.compile(pattern), where))

    def expect_request_failed(self, path: str, failure: str) -> None:
        """Requests for ``path`` (a regular expression for the whole URL path) fail with the
        network error ``failure`` (e.g. ``net::ERR_INCOMPLETE_CHUNKED_ENCODING``) on
        purpose: the failures, and the lines Chromium writes to the console for them, are
        expected."""
        where = re.compile(path)
        self._expected.append(
            _Expected("requestfailed", re.compile(rf"^{re.escape(failure)} "), where)
        )
        self._expected.append(
            _Expected(
                "console", re.compile(rf"Failed to load resource: {re.escape(failure)}$"), where
            )
        )

    # -- recording ---------------------------------------------------------------------

    def watch_context(self, context: BrowserContext) -> None:
        """Learn which EventSources the context's pages close themselves."""
        context.expose_binding("__fpStreamClosed", lambda _source, url: self._stream_closed(url))
        context.add_init_script(STREAM_CLOSE_RECORDER)

    def watch(self, page: Page, origins: Iterable[str]) -> None:
        """Record what goes wrong on ``page``; answers count for requests to ``origins``."""
        watched = {_origin(origin) for origin in origins}
        page.on("console", self._console)
        page.on("pageerror", self._page_error)
        page.on("requestfailed", self._request_failed)
        page.on("response", lambda response: self._response(response, watched))

    def stop(self, pages: Iterable[Page]) -> None:
        """Take in what the pages reported so far, then stop recording (closing a page
        aborts its open requests: that is the test's end, not the page's doing)."""
        for page in pages:
            with contextlib.suppress(Error):
                page.evaluate("0")  # a round trip: every event sent before it has arrived
        self._recording = False

    def unexpected(self) -> list[PageProblem]:
        closes = self._closed_streams.copy()
        found = []
        for problem in self.seen:
            if _aborted_stream(problem) and closes[problem.url] > 0:
                closes[problem.url] -= 1  # the page closed that stream itself
            elif not any(expected.excuses(problem) for expected in self._expected):
                found.append(problem)
        return found

    def _add(self, kind: ProblemKind, text: str, url: str) -> None:
        if self._recording:
            self.seen.append(PageProblem(kind, text, url))

    def _stream_closed(self, url: str) -> None:
        self._closed_streams[url] += 1

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self._add("console", message.text, message.location.get("url", ""))

    def _page_error(self, error: Error) -> None:
        self._add("pageerror", str(error), "")

    def _request_failed(self, request: Request) -> None:
        failure = request.failure or "unknown failure"
        self._add(
            "requestfailed", f"{failure} {request.method} ({request.resource_type})", request.url
        )

    def _response(self, response: Response, origins: set[str]) -> None:
        if response.status >= 400 and _origin(response.url) in origins:
            self._add(
                "response",
                f"{response.status} {response.request.method} ({response.request.resource_type})",
                response.url,
            )


def _aborted_stream(problem: PageProblem) -> bool:
    return problem.kind == "requestfailed" and _STREAM_ABORTED.match(problem.text) is not None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# -- failure screenshots ---------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(item: pytest.Item) -> bool:
    return any(
        getattr(item, f"rep_{when}", None) is not None and getattr(item, f"rep_{when}").failed
        for when in ("setup", "call")
    )


# -- the browser -----------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for all the browser tests.

    Package-scoped, not session-scoped: Playwright's sync API keeps its event loop marked as
    running in this thread while it is alive, which breaks every asyncio test run after it.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        pw_expect.set_options(timeout=10_000)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def backend() -> str:
    """The browser tests run on the in-memory job store only.

    They test the page; both job stores are covered by the behavioural suite, and a browser
    run costs seconds. A test that wants both parametrizes ``backend`` itself.
    """
    return "memory"


@pytest.fixture
def page_problems(request: pytest.FixtureRequest) -> Iterator[PageProblems]:
    """What went wrong on the test's pages: anything the test did not declare fails it."""
    problems = PageProblems()
    yield problems
    unexpected = problems.unexpected()
    if not unexpected:
        return
    listed = "\n  ".join(str(problem) for problem in unexpected)
    if _failed(request.node):  # one failure is enough; these may explain it
        request.node.add_report_section("teardown", "unexpected page problems", listed)
    else:
        pytest.fail(f"the page reported problems the test did not expect:\n  {listed}")


@pytest.fixture
def open_page(
    browser: Browser, page_problems: PageProblems, request: pytest.FixtureRequest
) -> Iterator[OpenPage]:
    """``open_page(server, base_url=None, logged_in=True, **context_options)``: a fresh
    context and the page at ``/``, loaded and ready (its configuration fetched).

    ``base_url`` (default ``server.url``) is where the browser goes, e.g. a relay in front of
    the server; the login cookie is set for it. ``context_options`` go to
    ``browser.new_context`` (``viewport``, ``color_scheme``, ``permissions``...). What goes
    wrong on the page is recorded in ``page_problems``.
    """
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    def open_(
        server: LiveServer,
        *,
        base_url: str | None = None,
        logged_in: bool = True,
        **context_options: Any,
    ) -> Page:
        url = base_url or server.url
        context = browser.new_context(base_url=url, **context_options)
        contexts.append(context)
        context.set_default_timeout(10_000)
        context.add_init_script(STATE_RECORDER)
        page_problems.watch_context(context)
        if logged_in:
            cookie = server.login_cookie()["cookie"].split("=", 1)[1]
            context.add_cookies([{"name": "fp_session", "value": cookie, "url": url}])
        page = context.new_page()
        pages.append(page)
        page_problems.watch(page, [url])
        page.goto("/")
        # The form's fieldset stays disabled until the page has fetched its configuration.
        if logged_in:
            pw_expect(page.get_by_test_id("page-input")).to_be_enabled()
            pw_expect(page.get_by_test_id("feature-type").locator("option")).not_to_have_count(0)
        else:
            pw_expect(page.get_by_test_id("notice")).to_be_visible()
        return page

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


@pytest.fixture
def fresh_context(
    browser: Browser, page_problems: PageProblems
) -> Iterator[Callable[..., BrowserContext]]:
    """``fresh_context(server)``: a new browser context with no cookie (nobody logged in),
    watched like ``open_page``'s."""
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    def open_(server: LiveServer, **options: Any) -> BrowserContext:
        context = browser.new_context(base_url=server.url, **options)
        context.set_default_timeout(10_000)
        context.add_init_script(STATE_RECORDER)
        page_problems.watch_context(context)

        def watch(page: Page) -> None:
            pages.append(page)
            page_problems.watch(page, [server.url])

        context.on("page", watch)
        contexts.append(context)
        return context

    yield open_
    page_problems.stop(pages)
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page: OpenPage, server: LiveServer) -> Page:
    """The page at ``/`` of the default scripted server, logged in as alice."""
    return open_page(server)


# -- a TCP relay that can drop every connection ----------------------------------------


class Relay:
    """Forwards TCP connections from ``url`` to ``target``; ``cut()`` closes them all.

    A stand-in for a flaky network or a proxy that drops idle streams: the browser sees its
    connections end mid-response, the server sees its clients go away.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cuts = 0
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.1)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="relay-accept", daemon=True)

    def start(self) -> Relay:
        self._acceptor.start()
        return self

    def cut(self) -> int:
        """Close every current connection, both sides; how many connections were cut."""
        with self._lock:
            sockets = list(self._open)
            self.cuts += 1
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return len(sockets) // 2

    def stop(self) -> None:
        self._stopping.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        self.cut()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self.accepted += 1
                self._open.update((client, upstream))
            thread = threading.Thread(
                target=self._serve, args=(client, upstream), name="relay-conn", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket, upstream: socket.socket) -> None:
        back = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
        back.start()
        self._pump(client, upstream)
        back.join()
        with self._lock:
            self._open.difference_update((client, upstream))
        client.close()
        upstream.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        """Copy until either side ends, then end both (no half-open connections)."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def make_relay() -> Generator[Callable[[LiveServer], Relay]]:
    relays: list[Relay] = []

    def make(server: LiveServer) -> Relay:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        relay = Relay(host, int(port)).start()
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        relay.stop()
