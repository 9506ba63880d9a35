"""Fixtures for the authentication tests: a signing key, a JWKS server and OIDC servers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveServer, ServerFactory
from tests.identity import AUTHORIZED_PARTY, ISSUER, JwksServer, SigningKey, TokenMinter


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.rsa()


@pytest.fixture
def minter(signing_key: SigningKey) -> TokenMinter:
    return TokenMinter(signing_key)


@pytest.fixture
def jwks(signing_key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer([signing_key]).running() as server:
        yield server


@pytest.fixture
def backend() -> str:
    """Authentication does not depend on the job store: these tests run in memory."""
    return "memory"


def oidc_settings(jwks: JwksServer, **overrides: Any) -> dict[str, Any]:
    return {
        "auth": "oidc",
        "oidc_issuer": ISSUER,
        "oidc_jwks_url": jwks.url,
        "oidc_authorized_parties": AUTHORIZED_PARTY,
        **overrides,
    }


@pytest.fixture
def oidc_server(make_server: ServerFactory, jwks: JwksServer) -> LiveServer:
    return make_server(**oidc_settings(jwks))
