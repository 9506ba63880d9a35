"""The ``oidc`` mode: session JWTs from Clerk or any OpenID Connect provider, checked offline.

A token comes as ``Authorization: Bearer`` or in Clerk's ``__session`` cookie (the header
wins). It is verified against the provider's public keys — a JWKS URL, cached, or one PEM
key — with the algorithms pinned, ``exp`` required, ``nbf``/``iat`` checked with a small
leeway, ``iss`` checked and, when authorized parties are configured, ``azp`` required to be
one of them. The user id is ``sub``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.requests import HTTPConnection

from ..config import SUPPORTED_ALGORITHMS
from ..errors import AuthenticationError
from .base import Authenticator, Identity, bearer_token, cookie_token

__all__ = ["CLERK_SESSION_COOKIE", "JwksCache", "OidcAuthenticator", "OidcOptions"]

CLERK_SESSION_COOKIE = "__session"

logger = logging.getLogger("feature_planner.auth")


@dataclass(frozen=True, slots=True)
class OidcOptions:
    issuer: str
    audience: str | None = None
    authorized_parties: frozenset[str] = frozenset()
    algorithms: tuple[str, ...] = SUPPORTED_ALGORITHMS
    leeway_s: float = 5


class JwksCache:
    """The provider's signing keys by ``kid``, fetched when first needed.

    An unknown ``kid`` may mean the provider rotated its keys, so it triggers a refetch —
    at most one per ``cooldown_s``, shared by every request that waits for it; other
    unknown ``kid``s in the cooldown are refused at once, so a flood of made-up ``kid``s
    costs the provider one request and never holds up tokens with known keys. Keys older
    than ``max_age_s`` are refreshed in the background and used meanwhile; when the
    provider is down, the keys already cached go on working.
    """

    def __init__(
        self,
        url: str,
        *,
        cooldown_s: float = 30,
        max_age_s: float = 600,
        timeout_s: float = 5,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self._cooldown_s = cooldown_s
        self._max_age_s = max_age_s
        self._client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._fetch: asyncio.Task[None] | None = None

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        now = time.monotonic()
        known = self._keys.get(kid)
        if known is not None:
            if now - self._fetched_at > self._max_age_s and self._may_fetch(now):
                self._start_fetch(now)
            return known
        if self._fetch is None:
            if not self._may_fetch(now):
                return None
            self._start_fetch(now)
        assert self._fetch is not None
        await asyncio.shield(self._fetch)
        return self._keys.get(kid)

    async def close(self) -> None:
        if self._fetch is not None:
            self._fetch.cancel()
        await self._client.aclose()

    def _may_fetch(self, now: float) -> bool:
        return self._fetch is None and now - self._attempted_at >= self._cooldown_s

    def _start_fetch(self, now: float) -> None:
        self._attempted_at = now
        self._fetch = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        try:
            response = await self._client.get(self.url, headers={"accept": "application/json"})
            response.raise_for_status()
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("could not fetch the JWKS from %s: %s", self.url, _describe(exc))
        else:
            if keys:
                self._keys = keys
                self._fetched_at = time.monotonic()
            else:
                logger.warning("the JWKS at %s has no usable signing keys", self.url)
        finally:
            self._fetch = None


def parse_jwks(document: Any) -> dict[str | None, jwt.PyJWK]:
    """The usable signing keys of a JWKS document, by ``kid``; keys of other types or uses
    are skipped, not fatal."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    keys: dict[str | None, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            continue
        if key.algorithm_name in SUPPORTED_ALGORITHMS:
            keys[entry.get("kid")] = key
    return keys


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def public_key_jwk(pem: str) -> jwt.PyJWK:
    """One PEM public key as a ``PyJWK`` with its algorithm (RS256 for RSA, ES256 for P-256)."""
    key = load_pem_public_key(pem.encode())
    if isinstance(key, rsa.RSAPublicKey):
        return jwt.PyJWK(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key)), "RS256")
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return jwt.PyJWK(json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key)), "ES256")
    raise ValueError("the public key must be RSA or EC P-256")


class OidcAuthenticator(Authenticator):
    def __init__(
        self,
        options: OidcOptions,
        *,
        jwks: JwksCache | None = None,
        public_key: jwt.PyJWK | None = None,
    ) -> None:
        if (jwks is None) == (public_key is None):
            raise ValueError("give either a JWKS cache or one public key")
        self.options = options
        self._jwks = jwks
        self._public_key = public_key

    async def close(self) -> None:
        if self._jwks is not None:
            await self._jwks.close()

    async def authenticate(self, conn: HTTPConnection) -> Identity:
        token = bearer_token(conn)
        via: Any = "bearer"
        if token is None:
            token, via = cookie_token(conn, CLERK_SESSION_COOKIE), "cookie"
        if token is None:
            raise AuthenticationError
        return Identity(await self.verify(token), via)

    async def verify(self, token: str) -> str:
        """The token's subject, if every check passes; ``AuthenticationError`` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError("The session token is not a valid JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self.options.algorithms:
            raise AuthenticationError("The session token's algorithm is not accepted here")
        key = await self._key(header.get("kid"))
        if key is None or key.algorithm_name != algorithm:
            raise AuthenticationError("The session token's signing key is not known here")
        claims = self._decode(token, key, algorithm)
        parties = self.options.authorized_parties
        if parties and claims.get("azp") not in parties:
            raise AuthenticationError("The session token was issued for another application")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("The session token names no user")
        return subject

    async def _key(self, kid: Any) -> jwt.PyJWK | None:
        if self._public_key is not None:
            return self._public_key
        assert self._jwks is not None
        if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
            return None
        return await self._jwks.key(kid)

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str) -> dict[str, Any]:
        options = self.options
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=options.issuer,
                audience=options.audience,
                leeway=options.leeway_s,
                options={
                    "require": ["exp", "sub", "iss"],
                    "verify_aud": options.audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("The session token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("The session token is not valid yet") from None
        except jwt.PyJWTError:
            raise AuthenticationError("The session token is not valid") from None
        return claims
