"""The page, the login link, and the health probes (``routes.py`` serves them)."""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ..auth import SESSION_COOKIE, Identity, LocalAuthenticator, check_same_origin
from ..errors import AuthenticationError, FeaturePlannerError
from .state import AppState

__all__ = [
    "PAGE_SECURITY_HEADERS",
    "STATIC_HEADERS",
    "StaticAssets",
    "healthz",
    "index",
    "login",
    "logout",
    "metrics",
    "readyz",
    "render_index",
]

PAGE_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}

# The page's script and style: never sniffed as another type, revalidated on every load
# (ETag) so that a new release's app.js is not mixed with an old page.
STATIC_HEADERS = {"x-content-type-options": "nosniff", "cache-control": "no-cache"}


class StaticAssets(StaticFiles):
    """``StaticFiles`` that adds ``STATIC_HEADERS`` to every answer, and the page's security
    headers to HTML (``/static/index.html`` is the page too)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(STATIC_HEADERS)
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.update(PAGE_SECURITY_HEADERS)
        return response


_LOGIN_FAILED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Login link not valid</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/style.css"></head>
<body><main><h1>This login link is not valid</h1>
<p>Each login link works once. Make a new one with <code>feature-planner login-link</code>
(or restart the server, which prints one), and open it.</p></main></body></html>
"""

_NO_LOGIN_LINKS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>No login links</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/style.css"></head>
<body><main><h1>This server does not use login links</h1>
<p>Sign in through your identity provider, or call the API with a key.</p></main></body></html>
"""

# The line of index.html that says which repository the page plans for. ``GET /`` fills it
# in; ``/static/index.html``, served as it is, keeps it empty and hidden.
_REPOSITORY_SLOT = '<p class="repository" id="repository" data-testid="repository" hidden></p>'


def _index_html() -> str:
    return resources.files("feature_planner.web").joinpath("static/index.html").read_text("utf-8")


def render_index(repository: Path) -> str:
    """The page, saying which repository it plans for: the directory's name only (the page
    may be shown to people who have no business knowing the server's paths), escaped."""
    page = _index_html()
    if not repository.name:  # the file system's root has no name: say nothing
        return page
    filled = (
        '<p class="repository" id="repository" data-testid="repository">Planning for '
        f'<strong class="repository-name">{html.escape(repository.name)}</strong></p>'
    )
    return page.replace(_REPOSITORY_SLOT, filled, 1)


async def index(state: AppState, request: Request) -> Response:
    page = render_index(state.settings.repository)
    return HTMLResponse(page, headers=PAGE_SECURITY_HEADERS)


async def login(state: AppState, request: Request) -> Response:
    token = request.query_params.get("token", "")
    auth = state.auth
    if not isinstance(auth, LocalAuthenticator):
        return HTMLResponse(_NO_LOGIN_LINKS, status_code=404, headers=PAGE_SECURITY_HEADERS)
    try:
        user = await auth.redeem_login_token(token)
    except AuthenticationError:
        # A link opened again (a second click, a browser restoring its tabs) by the browser
        # it already logged in: take it to the page. It logs nobody in that was not already.
        linked = auth.login_token_user(token)
        if linked is None or linked != auth.session_user(request):
            return HTMLResponse(_LOGIN_FAILED, status_code=401, headers=PAGE_SECURITY_HEADERS)
        return _to_the_page()
    response = _to_the_page()
    response.set_cookie(
        SESSION_COOKIE,
        auth.issue_session(user),
        max_age=auth.session_ttl_s,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def _to_the_page() -> RedirectResponse:
    return RedirectResponse("/", status_code=303, headers={"referrer-policy": "no-referrer"})


async def logout(state: AppState, request: Request) -> Response:
    # Logging someone out from another site is a nuisance CSRF; the cookie rule applies.
    check_same_origin(request, Identity("", "cookie"), state.trusted_origins)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")
    return response


async def metrics(state: AppState, request: Request) -> Response:
    registry = state.service.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def healthz(state: AppState, request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(state: AppState, request: Request) -> Response:
    try:
        await state.service.store.ping()
    except FeaturePlannerError as exc:
        return JSONResponse({"status": "unavailable", "reason": exc.message}, status_code=503)
    return JSONResponse({"status": "ready"})
