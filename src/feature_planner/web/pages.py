"""The page, the login link, and the health probes."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import Scope

from ..auth import SESSION_COOKIE, Identity, LocalAuthenticator, check_same_origin
from ..errors import AuthenticationError, FeaturePlannerError
from .state import AppState

__all__ = ["PAGE_SECURITY_HEADERS", "STATIC_HEADERS", "StaticAssets", "router"]

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
<link rel="stylesheet" href="/static/style.css"></head>
<body><main><h1>This login link is not valid</h1>
<p>Each link printed by the server works once. Restart the server, or ask it for a new link,
and open the new one.</p></main></body></html>
"""

_NO_LOGIN_LINKS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>No login links</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body><main><h1>This server does not use login links</h1>
<p>Sign in through your identity provider, or call the API with a key.</p></main></body></html>
"""

router = APIRouter(include_in_schema=False)


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.planner
    return state


def _index_html() -> bytes:
    return resources.files("feature_planner.web").joinpath("static/index.html").read_bytes()


@router.get("/")
async def index() -> Response:
    return HTMLResponse(_index_html(), headers=PAGE_SECURITY_HEADERS)


@router.get("/auth/login")
async def login(request: Request, token: str = "") -> Response:
    auth = _state(request).auth
    if not isinstance(auth, LocalAuthenticator):
        return HTMLResponse(_NO_LOGIN_LINKS, status_code=404, headers=PAGE_SECURITY_HEADERS)
    try:
        user = await auth.redeem_login_token(token)
    except AuthenticationError:
        return HTMLResponse(_LOGIN_FAILED, status_code=401, headers=PAGE_SECURITY_HEADERS)
    response = RedirectResponse("/", status_code=303, headers={"referrer-policy": "no-referrer"})
    response.set_cookie(
        SESSION_COOKIE,
        auth.issue_session(user),
        max_age=auth.session_ttl_s,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/auth/logout")
async def logout(request: Request) -> Response:
    # Logging someone out from another site is a nuisance CSRF; the cookie rule applies.
    check_same_origin(request, Identity("", "cookie"), _state(request).trusted_origins)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")
    return response


@router.get("/metrics", include_in_schema=True, tags=["health"], summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    registry = _state(request).service.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", include_in_schema=True, tags=["health"], summary="The process is alive")
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz", include_in_schema=True, tags=["health"], summary="The job store is reachable"
)
async def readyz(request: Request) -> Response:
    try:
        await _state(request).service.store.ping()
    except FeaturePlannerError as exc:
        return JSONResponse({"status": "unavailable", "reason": exc.message}, status_code=503)
    return JSONResponse({"status": "ready"})
