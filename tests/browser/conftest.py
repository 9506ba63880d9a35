"""Browser fixtures: Debian's Chromium driven by Playwright, and a TCP relay that can cut.

The browser is shared by the session; each test gets fresh contexts (cookies, storage), and
a failing test leaves a screenshot of each of its pages in ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
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

OpenPage = Callable[..., Page]


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
def open_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[OpenPage]:
    """``open_page(server, base_url=None, logged_in=True, **context_options)``: a fresh
    context and the page at ``/``, loaded and ready (its configuration fetched).

    ``base_url`` (default ``server.url``) is where the browser goes, e.g. a relay in front of
    the server; the login cookie is set for it. ``context_options`` go to
    ``browser.new_context`` (``viewport``, ``color_scheme``, ``permissions``...). Uncaught
    script errors fail the test.
    """
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    script_errors: list[str] = []

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
        if logged_in:
            cookie = server.login_cookie()["cookie"].split("=", 1)[1]
            context.add_cookies([{"name": "fp_session", "value": cookie, "url": url}])
        page = context.new_page()
        pages.append(page)
        page.on("pageerror", lambda error: script_errors.append(str(error)))
        page.goto("/")
        # The form's fieldset stays disabled until the page has fetched its configuration.
        if logged_in:
            pw_expect(page.get_by_test_id("page-input")).to_be_enabled()
            pw_expect(page.get_by_test_id("feature-type").locator("option")).not_to_have_count(0)
        else:
            pw_expect(page.get_by_test_id("notice")).to_be_visible()
        return page

    yield open_

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
    if script_errors and not _failed(request.node):
        pytest.fail(f"uncaught script errors on the page: {script_errors}")


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
