"""Job-scoped stream tokens: what lets a plain ``EventSource`` on another origin follow a job.

An ``EventSource`` cannot send an ``Authorization`` header, and a cross-origin page has no
cookie of ours; so Phase 1 also answers with a short-lived token, signed by the server and
bound to that job and its owner, which Phase 2 and DELETE accept as ``?token=`` for that job
only. Query strings are redacted from every log line (``logs.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt

from ..errors import AuthenticationError
from .base import MAX_CREDENTIAL_CHARS, Identity

__all__ = ["STREAM_TOKEN_PARAMETER", "StreamTokens"]

STREAM_TOKEN_PARAMETER = "token"
_AUDIENCE = "feature-planner-stream"


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


_HEADER = _b64(b'{"alg":"HS256","typ":"JWT"}')


class StreamTokens:
    """Issues and checks stream tokens: HS256 JWTs signed with the server's secret key, so
    every replica that shares the key accepts them."""

    def __init__(self, secret_key: str, ttl_s: float) -> None:
        self._secret = secret_key
        self._key = secret_key.encode()
        self.ttl_s = int(ttl_s)

    def issue(self, user_id: str, job_id: str) -> str:
        """A standard HS256 JWT (``verify`` reads it with PyJWT), signed here directly:
        ``jwt.encode`` re-validates the key and re-encodes the header on every call,
        which was 40 % of the create call's CPU."""
        now = int(time.time())
        claims = {"sub": user_id, "jid": job_id, "aud": _AUDIENCE, "iat": now}
        claims["exp"] = now + self.ttl_s
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = _HEADER + b"." + payload
        signature = _b64(hmac.new(self._key, signing_input, hashlib.sha256).digest())
        return (signing_input + b"." + signature).decode()

    def verify(self, token: str, job_id: str) -> Identity:
        """The token's owner, if the token is genuine, current and issued for ``job_id``."""
        if len(token) > MAX_CREDENTIAL_CHARS:
            raise AuthenticationError("The stream token is not valid")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=_AUDIENCE,
                options={"require": ["exp", "sub", "jid", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError(
                "The stream token has expired; authenticate as usual instead"
            ) from None
        except jwt.PyJWTError:
            raise AuthenticationError("The stream token is not valid") from None
        if claims["jid"] != job_id:
            raise AuthenticationError("The stream token was issued for another job")
        return Identity(str(claims["sub"]), "stream-token", job_id)
