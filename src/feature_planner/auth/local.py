"""The ``local`` mode: configured users, bearer tokens, login links and a session cookie.

``local`` knows a few users by their bearer tokens (``FEATURE_PLANNER_USERS``; one user
``local`` with a random token when none are configured). At start it issues a one-time
login link per user (``feature-planner login-link`` issues more, from another process that
shares the signing key); opening it sets a signed, HttpOnly session cookie.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Mapping

import jwt
from starlette.requests import HTTPConnection

from ..errors import AuthenticationError
from .base import Authenticator, Identity, TokenTable, bearer_token, cookie_token

__all__ = ["SESSION_COOKIE", "ClaimOnce", "LocalAuthenticator"]

SESSION_COOKIE = "fp_session"
_SESSION_AUDIENCE = "feature-planner-session"
_LOGIN_AUDIENCE = "feature-planner-login"


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
        self._tokens = TokenTable.of_tokens(self.users)
        self._secret = secret_key or secrets.token_urlsafe(32)
        self._session_ttl_s = session_ttl_s
        self._login_ttl_s = login_ttl_s
        self._claim_once = claim_once or _UsedInMemory()

    async def authenticate(self, conn: HTTPConnection) -> Identity:
        token = bearer_token(conn)
        if token is not None:
            user = self._tokens.match(token)
            if user is None:
                raise AuthenticationError("The bearer token is not valid")
            return Identity(user, "bearer")
        cookie = cookie_token(conn, SESSION_COOKIE)
        if cookie is not None:
            return Identity(self._verify_session(cookie), "cookie")
        raise AuthenticationError

    # -- login links and sessions --------------------------------------------------------

    def login_links(self, base_url: str) -> dict[str, str]:
        """A fresh one-time login URL per user; any earlier unused ones stay valid."""
        return {user: self.login_link(base_url, user) for user in self.users}

    def login_link(self, base_url: str, user: str) -> str:
        """A fresh one-time login URL for ``user`` (one of ``users``)."""
        if user not in self.users:
            raise KeyError(user)
        now = int(time.time())
        claims = {
            "sub": user,
            "aud": _LOGIN_AUDIENCE,
            "iat": now,
            "exp": now + self._login_ttl_s,
            "jti": secrets.token_urlsafe(16),
        }
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        return f"{base_url.rstrip('/')}/auth/login?token={token}"

    async def redeem_login_token(self, token: str) -> str:
        """The user the token logs in; each token works once."""
        refused = AuthenticationError("This login link is not valid or was used already")
        claims = self._login_claims(token)
        if claims is None or not await self._claim_once(str(claims["jti"]), self._login_ttl_s):
            raise refused
        return str(claims["sub"])

    def login_token_user(self, token: str) -> str | None:
        """The user a login token of ours names, used or expired or not; ``None`` for any
        other string. It logs nobody in: that is ``redeem_login_token``."""
        claims = self._login_claims(token, verify_exp=False)
        return None if claims is None else str(claims["sub"])

    def session_user(self, conn: HTTPConnection) -> str | None:
        """The user of the request's valid session cookie; ``None`` without one."""
        try:
            cookie = cookie_token(conn, SESSION_COOKIE)
            return None if cookie is None else self._verify_session(cookie)
        except AuthenticationError:
            return None

    def _login_claims(self, token: str, *, verify_exp: bool = True) -> dict[str, object] | None:
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=_LOGIN_AUDIENCE,
                options={"require": ["exp", "sub", "aud", "jti"], "verify_exp": verify_exp},
            )
        except jwt.PyJWTError:
            return None
        return claims if claims["sub"] in self.users else None

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
