"""Login links opened again: the browser they logged in goes to the page; anyone else is
refused as before."""

from __future__ import annotations

import httpx
import pytest

from feature_planner.auth import LocalAuthenticator
from tests.conftest import ALICE, BOB, LiveServer, ServerFactory

SECRET = "the-signing-key-of-these-tests-0123456789"
USERS = {"alice": ALICE, "bob": BOB}


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server(secret_key=SECRET)


def fresh_link(server: LiveServer, user: str = "alice") -> str:
    auth = server.auth_backend
    assert isinstance(auth, LocalAuthenticator)
    return auth.login_link(server.url, user)


def session_of(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    return {"cookie": f"fp_session={response.cookies['fp_session']}"}


def test_a_used_link_opened_by_the_browser_it_logged_in_goes_to_the_page(
    server: LiveServer,
) -> None:
    link = fresh_link(server)
    session = session_of(httpx.get(link))

    again = httpx.get(link, headers=session)

    assert again.status_code == 303
    assert again.headers["location"] == "/"
    assert "set-cookie" not in again.headers  # nothing new is issued


def test_a_used_link_without_a_session_is_still_refused(server: LiveServer) -> None:
    link = fresh_link(server)
    session_of(httpx.get(link))

    again = httpx.get(link)

    assert again.status_code == 401
    assert "feature-planner login-link" in again.text  # says how to get a new one
    assert "fp_session" not in again.headers.get("set-cookie", "")


def test_a_used_link_with_another_users_session_is_refused(server: LiveServer) -> None:
    alice_link = fresh_link(server)
    session_of(httpx.get(alice_link))
    bob = session_of(httpx.get(fresh_link(server, "bob")))

    assert httpx.get(alice_link, headers=bob).status_code == 401


def test_an_expired_link_with_its_users_session_goes_to_the_page(server: LiveServer) -> None:
    """A browser restoring yesterday's tabs: the link has expired, the session has not."""
    expired = LocalAuthenticator(USERS, secret_key=SECRET, login_ttl_s=-60)
    session = server.login_cookie("alice")

    link = expired.login_link(server.url, "alice")

    assert httpx.get(link).status_code == 401
    assert httpx.get(link, headers=session).headers["location"] == "/"


@pytest.mark.parametrize("token", ["guess", ""])
def test_a_link_that_is_not_ours_is_refused_even_with_a_session(
    server: LiveServer, token: str
) -> None:
    session = server.login_cookie("alice")

    response = httpx.get(f"{server.url}/auth/login", params={"token": token}, headers=session)

    assert response.status_code == 401


def test_a_link_signed_with_another_key_is_refused_even_with_a_session(
    server: LiveServer,
) -> None:
    other = LocalAuthenticator(USERS, secret_key="another-installations-key-0123456789")
    session = server.login_cookie("alice")

    response = httpx.get(other.login_link(server.url, "alice"), headers=session)

    assert response.status_code == 401


def test_a_used_link_with_a_tampered_session_is_refused(server: LiveServer) -> None:
    link = fresh_link(server)
    cookie = session_of(httpx.get(link))["cookie"]

    response = httpx.get(link, headers={"cookie": cookie[:-2] + "xx"})

    assert response.status_code == 401


def test_login_link_names_one_user_and_refuses_a_stranger() -> None:
    auth = LocalAuthenticator(USERS, secret_key=SECRET)

    link = auth.login_link("http://127.0.0.1:8000/", "bob")

    assert link.startswith("http://127.0.0.1:8000/auth/login?token=")
    assert auth.login_token_user(link.partition("token=")[2]) == "bob"
    with pytest.raises(KeyError):
        auth.login_link("http://127.0.0.1:8000", "carol")
