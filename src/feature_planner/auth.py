"""Who is calling: the authenticator interface and the ``local`` mode.

``local`` knows a few users by their bearer tokens (``FEATURE_PLANNER_USERS``; one user
``local`` with a random token when none are configured). At start it issues a one-time
login link per user; opening it sets a signed, HttpOnly session cookie.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import jwt
from starlette.requests import HTTPConnection

from .errors import AuthenticationError, CrossOriginError

__all__ = [
    "SESSION_COOKIE",
    "Authenticator",
    "Identity",
    "LocalAuthenticator",
    "check_same_origin",
]

SESSION_COOKIE = "fp_session"
_SESSION_AUDIENCE = "feature-planner-session"
_LOGIN_AUDIENCE = "feature-planner-login"


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    via: Literal["bearer", "cookie"]


class Authenticator(ABC):
    @abstractmethod
    def authenticate(self, conn: HTTPConnection) -> Identity:
        """The caller's identity, or ``AuthenticationError``."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


ClaimOnce = Callable[[str, int], Awaitable[bool]]


class _UsedInMemory:
    """Remembers redeemed login tokens in this process (see ``claim_once``)."""

    def __init__(self) -> None:
        self._used: dict[str, float] = {}

    async def __call__(self, token_id: str, ttl_s: int) -> bool:
        now = time.time()
        self._used = {key: until for key, until in self._used.items() if until > now}
        if token_id in self._used:
            return False
        self._used[token_id] = now + ttl_s
        return True


class LocalAuthenticator(Authenticator):
    """Login tokens and sessions are JWTs signed with ``secret_key``, so any process that
    shares the key and the users accepts them; ``claim_once`` makes a login token work
    once (in this process by default, everywhere when backed by Redis)."""

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        secret_key: str | None = None,
        session_ttl_s: float = 7 * 24 * 3600,
        login_ttl_s: int = 24 * 3600,
        claim_once: ClaimOnce | None = None,
    ) -> None:
        if not users:
            users = {"local": secrets.token_urlsafe(32)}
        self.users = dict(users)
        # Looked up by digest, so the comparison does not leak a token's prefix by timing.
        self._by_digest = {_digest(token): user for user, token in self.users.items()}
        self._secret = secret_key or secrets.token_urlsafe(32)
        self._session_ttl_s = session_ttl_s
        self._login_ttl_s = login_ttl_s
        self._claim_once = claim_once or _UsedInMemory()

    def authenticate(self, conn: HTTPConnection) -> Identity:
        header = conn.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            user = (
                self._by_digest.get(_digest(token.strip())) if scheme.lower() == "bearer" else None
            )
            if user is None:
                raise AuthenticationError("The bearer token is not valid")
            return Identity(user, "bearer")
        cookie = conn.cookies.get(SESSION_COOKIE)
        if cookie:
            return Identity(self._verify_session(cookie), "cookie")
        raise AuthenticationError

    # -- login links and sessions --------------------------------------------------------

    def login_links(self, base_url: str) -> dict[str, str]:
        """A fresh one-time login URL per user; any earlier unused ones stay valid."""
        now = int(time.time())
        links = {}
        for user in self.users:
            claims = {
                "sub": user,
                "aud": _LOGIN_AUDIENCE,
                "iat": now,
                "exp": now + self._login_ttl_s,
                "jti": secrets.token_urlsafe(16),
            }
            token = jwt.encode(claims, self._secret, algorithm="HS256")
            links[user] = f"{base_url.rstrip('/')}/auth/login?token={token}"
        return links

    async def redeem_login_token(self, token: str) -> str:
        """The user the token logs in; each token works once."""
        refused = AuthenticationError("This login link is not valid or was used already")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=_LOGIN_AUDIENCE,
                options={"require": ["exp", "sub", "aud", "jti"]},
            )
        except jwt.PyJWTError:
            raise refused from None
        user = str(claims["sub"])
        if user not in self.users or not await self._claim_once(
            str(claims["jti"]), self._login_ttl_s
        ):
            raise refused
        return user

    def issue_session(self, user_id: str) -> str:
        now = int(time.time())
        claims = {
            "sub": user_id,
            "aud": _SESSION_AUDIENCE,
            "iat": now,
            "exp": now + int(self._session_ttl_s),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    @property
    def session_ttl_s(self) -> int:
        return int(self._session_ttl_s)

    def _verify_session(self, cookie: str) -> str:
        try:
            claims = jwt.decode(
                cookie,
                self._secret,
                algorithms=["HS256"],
                audience=_SESSION_AUDIENCE,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.PyJWTError:
            raise AuthenticationError(
                "The session has expired or is not valid; log in again"
            ) from None
        user = claims["sub"]
        if user not in self.users:
            raise AuthenticationError("The session's user no longer exists; log in again")
        return str(user)


def check_same_origin(
    conn: HTTPConnection, identity: Identity, trusted_origins: frozenset[str]
) -> None:
    """Refuse a cookie-authenticated state change that a browser sent from another site.

    Bearer-authenticated calls cannot be forged by another site, so they pass. A request
    with neither ``Origin`` nor ``Sec-Fetch-Site`` did not come from a browser page.
    """
    if identity.via != "cookie":
        return
    origin = conn.headers.get("origin")
    if origin is not None:
        if origin.lower() in trusted_origins or origin.lower() == _own_origin(conn):
            return
        raise CrossOriginError(f"Requests from {origin[:100]} may not use this site's cookie")
    fetch_site = conn.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise CrossOriginError
    return


def _own_origin(conn: HTTPConnection) -> str:
    return f"{conn.url.scheme}://{conn.headers.get('host', '')}".lower()
