"""OIDC / Clerk session tokens: what is accepted, every way a token can be wrong, the JWKS."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from feature_planner.config import ConfigurationError, load_settings
from feature_planner.web.app import create_app
from tests.auth.conftest import oidc_settings
from tests.conftest import API, VALID_BODY, LiveServer, ServerFactory
from tests.identity import JwksServer, SigningKey, TokenMinter

CONFIG = "/api/feature-planner/config"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def status_with(server: LiveServer, token: str) -> int:
    return server.http.get(CONFIG, headers=bearer(token)).status_code


def test_a_clerk_session_token_runs_the_whole_flow(
    oidc_server: LiveServer, minter: TokenMinter
) -> None:
    token = minter.mint("user_2abc")
    created = oidc_server.http.post(API, json=VALID_BODY, headers=bearer(token))
    assert created.status_code == 201, created.text
    job_id = created.json()["data"]["jobId"]
    stream = oidc_server.http.get(f"{API}/{job_id}", headers=bearer(token))
    assert stream.status_code == 200
    assert "event: complete" in stream.text


def test_the_session_cookie_works_and_the_header_wins(
    oidc_server: LiveServer, minter: TokenMinter
) -> None:
    alice, bob = minter.mint("user_alice"), minter.mint("user_bob")
    job_id = oidc_server.http.post(API, json=VALID_BODY, headers=bearer(alice)).json()["data"][
        "jobId"
    ]
    as_cookie = httpx.get(f"{oidc_server.url}{API}/{job_id}", cookies={"__session": alice})
    assert as_cookie.status_code == 200
    # Bob's header beats Alice's cookie: Bob is not the owner.
    both = httpx.get(
        f"{oidc_server.url}{API}/{job_id}", headers=bearer(bob), cookies={"__session": alice}
    )
    assert both.status_code == 403


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _alg_none(minter: TokenMinter) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(minter.claims())}."


def _hs256_with_public_key(minter: TokenMinter) -> str:
    # The classic confusion: the public key (which anyone has) used as an HMAC secret.
    header, payload = _b64({"alg": "HS256", "kid": minter.key.kid}), _b64(minter.claims())
    signature = hmac.new(
        minter.key.public_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256
    ).digest()
    return f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _tampered(minter: TokenMinter) -> str:
    header, _, signature = _segments(minter.mint("user_alice"))
    return f"{header}.{_b64(minter.claims('user_admin'))}.{signature}"


def _signed_by_another_key_with_our_kid(minter: TokenMinter) -> str:
    impostor = SigningKey.rsa(kid=minter.key.kid)
    return minter.mint(key=impostor)


MUTATIONS: dict[str, Callable[[TokenMinter], str]] = {
    "alg none": _alg_none,
    "HS256 signed with the public key": _hs256_with_public_key,
    "signed by another key": _signed_by_another_key_with_our_kid,
    "unknown kid": lambda m: m.mint(key=SigningKey(kid="rotated-away", **_same(m))),
    "tampered payload": _tampered,
    "truncated": lambda m: m.mint()[:-20],
    "no signature": lambda m: m.mint().rsplit(".", 1)[0] + ".",
    "expired": lambda m: m.mint(exp=int(time.time()) - 60, iat=int(time.time()) - 120),
    "not yet valid (nbf)": lambda m: m.mint(nbf=int(time.time()) + 60),
    "issued in the future (iat)": lambda m: m.mint(iat=int(time.time()) + 60),
    "no exp": lambda m: m.mint(exp=None),
    "no sub": lambda m: m.mint(sub=None),
    "empty sub": lambda m: m.mint(""),
    "wrong iss": lambda m: m.mint(iss="https://evil.example.test"),
    "no iss": lambda m: m.mint(iss=None),
    "azp not allowed": lambda m: m.mint(azp="https://evil.example.test"),
    "no azp": lambda m: m.mint(azp=None),
    "not a JWT": lambda m: "not-a-jwt",
    "garbage base64": lambda m: "eyJ!!!.eyJ!!!.sig",
    "64 KiB": lambda m: "a" * 65536,
}


def _same(minter: TokenMinter) -> dict[str, Any]:
    return {"algorithm": minter.key.algorithm, "private_key": minter.key.private_key}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_every_bad_token_is_401(
    oidc_server: LiveServer, minter: TokenMinter, mutation: str
) -> None:
    token = MUTATIONS[mutation](minter)
    response = oidc_server.http.post(API, json=VALID_BODY, headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert set(error) == {"code", "message"} and error["code"] == "UNAUTHORIZED"
    assert token[:40] not in response.text
    as_cookie = httpx.get(f"{oidc_server.url}{CONFIG}", cookies={"__session": token})
    assert as_cookie.status_code == 401


def test_the_good_token_passes_where_the_mutations_fail(
    oidc_server: LiveServer, minter: TokenMinter
) -> None:
    """The mutations above are refused for what they change, not for something shared."""
    assert status_with(oidc_server, minter.mint()) == 200


@pytest.mark.parametrize(
    ("claim", "offset", "status"),
    [
        ("exp", -3, 200),  # expired 3 s ago: inside the 5 s leeway
        ("exp", -8, 401),
        ("nbf", 3, 200),  # valid in 3 s: inside the leeway
        ("nbf", 8, 401),
        ("iat", 3, 200),
        ("iat", 8, 401),
    ],
)
def test_the_leeway_edges(
    oidc_server: LiveServer, minter: TokenMinter, claim: str, offset: int, status: int
) -> None:
    now = int(time.time())
    claims: dict[str, Any] = {claim: now + offset}
    if claim == "exp":
        claims["iat"] = claims["nbf"] = now - 30
    assert status_with(oidc_server, minter.mint(**claims)) == status


def test_the_leeway_is_configurable(
    make_server: ServerFactory, jwks: JwksServer, minter: TokenMinter
) -> None:
    server = make_server(**oidc_settings(jwks, oidc_leeway_s=0))
    now = int(time.time())
    assert status_with(server, minter.mint(nbf=now + 3)) == 401


def test_an_es256_key_and_a_pem_public_key(make_server: ServerFactory) -> None:
    key = SigningKey.ec()
    minter = TokenMinter(key)
    server = make_server(auth="oidc", oidc_issuer=minter.issuer, oidc_public_key=key.public_pem)
    assert status_with(server, minter.mint()) == 200
    assert status_with(server, minter.mint(key=SigningKey.ec())) == 401


def test_without_authorized_parties_azp_is_not_needed(
    make_server: ServerFactory, jwks: JwksServer, minter: TokenMinter
) -> None:
    server = make_server(**oidc_settings(jwks, oidc_authorized_parties=""))
    assert status_with(server, minter.mint(azp=None)) == 200


def test_an_audience_when_configured_is_required(
    make_server: ServerFactory, jwks: JwksServer, minter: TokenMinter
) -> None:
    server = make_server(**oidc_settings(jwks, oidc_audience="feature-planner"))
    assert status_with(server, minter.mint(aud="feature-planner")) == 200
    assert status_with(server, minter.mint(aud="another-api")) == 401
    assert status_with(server, minter.mint()) == 401


def test_the_jwks_is_fetched_once_and_cached(
    oidc_server: LiveServer, minter: TokenMinter, jwks: JwksServer
) -> None:
    for _ in range(5):
        assert status_with(oidc_server, minter.mint()) == 200
    assert jwks.fetches == 1


def test_a_rotated_key_is_picked_up_on_first_sight(
    make_server: ServerFactory, jwks: JwksServer, minter: TokenMinter, signing_key: SigningKey
) -> None:
    server = make_server(**oidc_settings(jwks, oidc_jwks_cooldown_s=0.2))
    assert status_with(server, minter.mint()) == 200
    new_key = SigningKey.rsa(kid="rsa-2")
    jwks.keys = [signing_key, new_key]
    time.sleep(0.3)  # past the cooldown of the first fetch
    assert status_with(server, minter.mint(key=new_key)) == 200
    assert jwks.fetches == 2


def test_a_flood_of_random_kids_costs_one_fetch_per_cooldown_and_good_tokens_do_not_wait(
    make_server: ServerFactory, jwks: JwksServer, minter: TokenMinter
) -> None:
    cooldown_s = 2.0
    server = make_server(**oidc_settings(jwks, oidc_jwks_cooldown_s=cooldown_s))
    forged = [minter.mint(headers={"kid": f"kid-{uuid.uuid4().hex}"}) for _ in range(500)]
    good = minter.mint()
    assert status_with(server, good) == 200  # the keys are cached
    time.sleep(cooldown_s + 0.1)  # an unknown kid may now trigger a fetch...
    jwks.fetches = 0
    jwks.delay_s = 1.0  # ...from a provider that answers slowly

    async def flood() -> tuple[list[int], float, float]:
        limits = httpx.Limits(max_connections=100)
        async with (
            httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as attacker,
            httpx.AsyncClient(base_url=server.url, timeout=30) as user,
        ):
            started = time.monotonic()
            attack = [
                asyncio.ensure_future(attacker.get(CONFIG, headers=bearer(token)))
                for token in forged
            ]
            await asyncio.sleep(0.3)  # the attack is under way and a fetch is in flight
            before = time.monotonic()
            healthy = await user.get(CONFIG, headers=bearer(good))
            waited = time.monotonic() - before
            assert healthy.status_code == 200
            statuses = [response.status_code for response in await asyncio.gather(*attack)]
            return statuses, waited, time.monotonic() - started

    statuses, waited, duration = asyncio.run(flood())
    assert set(statuses) == {401}
    assert 1 <= jwks.fetches <= 1 + int(duration // cooldown_s)
    assert waited < jwks.delay_s  # the good token did not queue behind the slow fetch


def test_a_jwks_that_is_down_does_not_break_cached_keys(
    make_server: ServerFactory, jwks: JwksServer, minter: TokenMinter
) -> None:
    server = make_server(**oidc_settings(jwks, oidc_jwks_max_age_s=0.1, oidc_jwks_cooldown_s=0.1))
    assert status_with(server, minter.mint()) == 200
    jwks.status = 503
    for _ in range(5):
        time.sleep(0.15)  # past max age and cooldown: a refresh is tried, and fails
        assert status_with(server, minter.mint()) == 200
    assert jwks.fetches >= 2


def test_a_jwks_that_is_down_from_the_start_is_401_not_500(
    make_server: ServerFactory, jwks: JwksServer, minter: TokenMinter
) -> None:
    jwks.status = 500
    server = make_server(**oidc_settings(jwks))
    response = server.http.get(CONFIG, headers=bearer(minter.mint()))
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"auth": "oidc"}, "FEATURE_PLANNER_OIDC_ISSUER"),
        (
            {"auth": "oidc", "oidc_issuer": "https://x.test", "oidc_algorithms": "HS256"},
            "ALGORITHMS",
        ),
        ({"auth": "api-key"}, "FEATURE_PLANNER_API_KEYS"),
        ({"cors_origins": "*"}, "CORS_ORIGINS"),
        ({"secret_key": "too-short"}, "SECRET_KEY"),
    ],
)
def test_a_wrong_auth_configuration_fails_at_start_naming_the_setting(
    overrides: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        load_settings(**overrides)


def test_a_bad_public_key_fails_at_start(tmp_path: Any) -> None:
    settings = load_settings(
        auth="oidc", oidc_issuer="https://x.test", oidc_public_key=str(tmp_path / "missing.pem")
    )
    with pytest.raises(ConfigurationError, match="OIDC_PUBLIC_KEY"):
        create_app(settings)
