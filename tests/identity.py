"""A stand-in identity provider: a key pair, a Clerk-style token minter, and a JWKS server.

The server is a real HTTP server on a free port (the service fetches from it with httpx as
it would from Clerk); it counts its fetches and can be made slow or broken.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://clerk.example.test"
AUTHORIZED_PARTY = "https://app.example.test"


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private_key: Any

    @classmethod
    def rsa(cls, kid: str = "rsa-1") -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str = "ec-1") -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        entry: dict[str, Any] = json.loads(algorithm.to_jwk(self.private_key.public_key()))
        return {**entry, "kid": self.kid, "use": "sig", "alg": self.algorithm}


@dataclass
class TokenMinter:
    """Session tokens shaped like Clerk's: RS256, ``kid`` header, ``azp``, short-lived."""

    key: SigningKey
    issuer: str = ISSUER
    authorized_party: str | None = AUTHORIZED_PARTY

    def claims(self, user: str = "user_alice", **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + 60,
            "sid": f"sess_{uuid.uuid4().hex[:12]}",
        }
        if self.authorized_party is not None:
            claims["azp"] = self.authorized_party
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def mint(
        self,
        user: str = "user_alice",
        *,
        headers: dict[str, Any] | None = None,
        key: SigningKey | None = None,
        **claims: Any,
    ) -> str:
        signer = key or self.key
        return jwt.encode(
            self.claims(user, **claims),
            signer.private_key,
            algorithm=signer.algorithm,
            headers={"kid": signer.kid, **(headers or {})},
        )


@dataclass
class JwksServer:
    """Serves ``/.well-known/jwks.json`` for the given keys; counts fetches."""

    keys: list[SigningKey]
    fetches: int = 0
    status: int = 200
    delay_s: float = 0.0
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}/.well-known/jwks.json"

    def document(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self.keys]}

    @contextmanager
    def running(self) -> Iterator[JwksServer]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                if owner.delay_s:
                    time.sleep(owner.delay_s)
                body = json.dumps(owner.document()).encode()
                self.send_response(owner.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()
