"""Watch-only share tokens: anyone holding one may read and stream one job, nothing else.

A share token is an HS256 JWT signed with the server's secret key (every replica that
shares the key accepts it), bound to one job and its owner, with its own audience and key
id so that it is never mistaken for a stream token or a user's bearer token. It carries the
millisecond it was issued: revoking a job's shares records a time, and tokens issued before
it are refused (the history keeps that time: ``ShareTokens`` only reads signatures).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from ..errors import AuthenticationError
from .base import MAX_CREDENTIAL_CHARS

__all__ = ["ShareGrant", "ShareTokens"]

_AUDIENCE = "feature-planner-share"
_KEY_ID = "share"
# Every share token begins with its header (base64 of the same JSON): how one is told apart
# from other tokens before any signature is checked.
_PREFIX = jwt.encode({}, "x" * 32, algorithm="HS256", headers={"kid": _KEY_ID}).split(".")[0]


@dataclass(frozen=True, slots=True)
class ShareGrant:
    """What a genuine, current share token allows: reading ``job_id``, owned by ``owner``."""

    owner: str
    job_id: str
    issued_at_ms: int


class ShareTokens:
    def __init__(self, secret_key: str, ttl_s: float) -> None:
        self._secret = secret_key
        self.ttl_s = ttl_s

    @staticmethod
    def looks_like_one(token: str) -> bool:
        return token.startswith(_PREFIX + ".")

    def issue(self, owner: str, job_id: str) -> tuple[str, int]:
        """A token for ``job_id`` and the epoch millisecond it expires."""
        issued_ms = time.time_ns() // 1_000_000
        expires_ms = issued_ms + round(self.ttl_s * 1000)
        claims = {
            "sub": owner,
            "jid": job_id,
            "aud": _AUDIENCE,
            "iat": issued_ms // 1000,
            "iat_ms": issued_ms,
            "exp": expires_ms // 1000,
        }
        token = jwt.encode(claims, self._secret, algorithm="HS256", headers={"kid": _KEY_ID})
        return token, expires_ms

    def verify(self, token: str) -> ShareGrant:
        """The grant, if the token is genuine and current; else ``AuthenticationError``."""
        if len(token) > MAX_CREDENTIAL_CHARS:
            raise AuthenticationError("The share link is not valid")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=_AUDIENCE,
                options={"require": ["exp", "sub", "jid", "aud", "iat_ms"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError(
                "The share link has expired; ask its owner for a new one"
            ) from None
        except jwt.PyJWTError:
            raise AuthenticationError("The share link is not valid") from None
        return ShareGrant(str(claims["sub"]), str(claims["jid"]), int(claims["iat_ms"]))
