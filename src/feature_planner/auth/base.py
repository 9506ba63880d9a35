"""What every authenticator shares: the caller's identity and how credentials arrive."""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from starlette.requests import HTTPConnection

from ..errors import AuthenticationError

__all__ = [
    "MAX_CREDENTIAL_CHARS",
    "Authenticator",
    "Identity",
    "TokenTable",
    "bearer_token",
    "cookie_token",
    "sha256_digest",
]

# Real tokens are well under 4 KiB (a Clerk session JWT is ~1 KiB); anything longer is
# refused before it is parsed, so an absurd header costs nothing.
MAX_CREDENTIAL_CHARS = 8192

Via = Literal["bearer", "cookie", "stream-token", "share-token"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling, and how. ``job_id`` is set when the credential is good for one job
    only (a stream token; a share token, which acts as the job's owner but may only read)."""

    user_id: str
    via: Via
    job_id: str | None = None


class Authenticator(ABC):
    @abstractmethod
    async def authenticate(self, conn: HTTPConnection) -> Identity:
        """The caller's identity, or ``AuthenticationError``."""

    async def close(self) -> None:  # noqa: B027 - most authenticators hold nothing
        """Release what the authenticator holds (a JWKS client, say)."""


def bearer_token(conn: HTTPConnection) -> str | None:
    """The ``Authorization: Bearer`` token, ``None`` without the header; 401 for another
    scheme or an absurd length."""
    header = conn.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("Send credentials as 'Authorization: Bearer <token>'")
    _refuse_absurd(token)
    return token


def cookie_token(conn: HTTPConnection, name: str) -> str | None:
    token = conn.cookies.get(name)
    if not token:
        return None
    _refuse_absurd(token)
    return token


def _refuse_absurd(token: str) -> None:
    if len(token) > MAX_CREDENTIAL_CHARS:
        raise AuthenticationError("The credential is too long to be valid")


def sha256_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class TokenTable:
    """Secret tokens mapped to users, kept as SHA-256 digests and matched in constant time.

    Every entry is compared, whether or not an earlier one matched, so the time taken says
    nothing about which (or whether any) token is close to the one presented.
    """

    def __init__(self, users_by_digest: Mapping[bytes, str]) -> None:
        self._entries = list(users_by_digest.items())

    @classmethod
    def of_tokens(cls, tokens_by_user: Mapping[str, str]) -> TokenTable:
        return cls({sha256_digest(token): user for user, token in tokens_by_user.items()})

    def match(self, token: str) -> str | None:
        presented = sha256_digest(token)
        found = None
        for digest, user in self._entries:
            if hmac.compare_digest(digest, presented):
                found = user
        return found
