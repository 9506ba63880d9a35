"""``local`` authentication: login link, session cookie, bearer tokens, CSRF."""

from __future__ import annotations

import httpx

from tests.conftest import ALICE, API, VALID_BODY, LiveServer, ServerFactory


def test_login_link_sets_an_http_only_lax_cookie_and_works_once(server: LiveServer) -> None:
    link = server.auth_backend.login_links(server.url)["alice"]
    response = httpx.get(link)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    set_cookie = response.headers["set-cookie"].lower()
    assert "fp_session=" in set_cookie
    assert "httponly" in set_cookie
    assert "samesite=lax" in set_cookie
    assert httpx.get(link).status_code == 401  # one time only


def test_a_wrong_login_token_is_refused(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/auth/login?token=guess")
    assert response.status_code == 401
    assert "fp_session" not in response.headers.get("set-cookie", "")


def test_the_session_cookie_authenticates_the_whole_flow(server: LiveServer) -> None:
    cookie = server.login_cookie()
    headers = {**cookie, "origin": server.url}
    created = server.http.post(API, json=VALID_BODY, headers=headers)
    assert created.status_code == 201
    job_id = created.json()["data"]["jobId"]
    stream = server.stream(job_id, token="unused", headers={"authorization": ""} | cookie)
    # An empty Authorization header is not a bearer token: refused, not silently ignored.
    assert stream.status == 401
    with httpx.stream("GET", f"{server.url}{API}/{job_id}", headers=cookie) as response:
        assert response.status_code == 200
        assert b"event: complete" in response.read()
    deleted = server.http.delete(f"{API}/{server.create_job()}", headers=headers)
    assert deleted.status_code == 202


def test_a_tampered_session_cookie_is_401(server: LiveServer) -> None:
    cookie = server.login_cookie()["cookie"]
    response = server.http.post(
        API, json=VALID_BODY, headers={"cookie": cookie[:-2] + "xx", "origin": server.url}
    )
    assert response.status_code == 401


def test_cookie_delete_from_another_origin_is_403(server: LiveServer) -> None:
    job_id = server.create_job()
    cookie = server.login_cookie()
    response = server.http.delete(
        f"{API}/{job_id}", headers={**cookie, "origin": "http://attacker.test"}
    )
    assert response.status_code == 403
    cross_site = server.http.delete(
        f"{API}/{job_id}", headers={**cookie, "sec-fetch-site": "cross-site"}
    )
    assert cross_site.status_code == 403
    assert server.stream(job_id).last.event == "complete"  # the job was not touched


def test_trusted_origins_may_use_the_cookie(make_server: ServerFactory) -> None:
    server = make_server(trusted_origins="https://app.example.com")
    cookie = server.login_cookie()
    response = server.http.post(
        API, json=VALID_BODY, headers={**cookie, "origin": "https://app.example.com"}
    )
    assert response.status_code == 201


def test_each_configured_user_sees_only_their_own_jobs(server: LiveServer) -> None:
    job_id = server.create_job(token=ALICE)
    assert server.stream(job_id, token="token-bob").status == 403
    assert server.delete(job_id, token="token-bob").status_code == 403
