"""The ``api-key`` mode: long-lived keys for scripts and services, configured by their hash.

The configuration holds ``sha256:<hex>`` of each key, never the key: a leaked settings file
or environment dump gives nobody access. Keys are 256 random bits, so one SHA-256 is as
good as a slow password hash here. ``feature-planner api-key USER`` makes a key.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping

from starlette.requests import HTTPConnection

from ..config import API_KEY_HASH
from ..errors import AuthenticationError
from .base import Authenticator, Identity, TokenTable, bearer_token

__all__ = ["ApiKeyAuthenticator", "hash_api_key", "new_api_key"]


def new_api_key() -> str:
    return "fpk_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class ApiKeyAuthenticator(Authenticator):
    """``Authorization: Bearer <key>``; ``users_by_hash`` maps ``sha256:<hex>`` to a user id
    (a user may have several keys)."""

    def __init__(self, users_by_hash: Mapping[str, str]) -> None:
        table = {}
        for key_hash, user in users_by_hash.items():
            if API_KEY_HASH.fullmatch(key_hash) is None:
                raise ValueError("API key hashes look like sha256:<64 hex digits>")
            table[bytes.fromhex(key_hash.removeprefix("sha256:"))] = user
        self._keys = TokenTable(table)

    async def authenticate(self, conn: HTTPConnection) -> Identity:
        key = bearer_token(conn)
        if key is None:
            raise AuthenticationError("Send an API key as 'Authorization: Bearer <key>'")
        user = self._keys.match(key)
        if user is None:
            raise AuthenticationError("The API key is not valid")
        return Identity(user, "bearer")
