"""Absurd or malicious request shapes get a 4xx, never a 500; HTML always has its headers."""

from __future__ import annotations

import socket
import uuid

import pytest

from tests.conftest import API, VALID_BODY, LiveServer

CONFIG = "/api/feature-planner/config"


def raw_request(server: LiveServer, request: bytes) -> tuple[int, bytes]:
    """Send bytes no well-behaved client would, and read the status line and body."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status = int(received.split(b" ", 2)[1])
    return status, received.partition(b"\r\n\r\n")[2]


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "host: x", "connection: close", *headers, "", ""]
    return "\r\n".join(lines).encode()


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"{API}/{'a' * 4000}", 414),
        (f"{API}/{'a' * 100_000}", None),  # uvicorn's own limit answers first
        (f"{API}/{uuid.uuid4()}%00", 400),
        (f"{API}/%00%00", 400),
        (f"{CONFIG}?x=%00", 400),
        (f"{CONFIG}?{'x' * 20_000}", 414),
        (f"{API}/..%2F..%2Fetc%2Fpasswd", 404),
        ("/static/..%2F..%2Fpyproject.toml", 404),
        ("/static/%2e%2e/%2e%2e/app.py", 404),
    ],
)
def test_absurd_paths_and_queries_are_4xx(
    server: LiveServer, path: str, status: int | None
) -> None:
    code, body = raw_request(server, get(path, "authorization: Bearer token-alice"))
    assert code == status if status is not None else 400 <= code < 500, body[:200]


def test_a_job_id_that_is_not_a_uuid_is_400_whatever_it_contains(server: LiveServer) -> None:
    for job_id in ("%F0%9F%92%A9", "a" * 2000, "%ff%fe", "1e999", "' OR 1=1 --"):
        code, _ = raw_request(server, get(f"{API}/{job_id}", "authorization: Bearer token-alice"))
        assert code == 400, job_id


@pytest.mark.parametrize("size", [64 * 1024, 8193])
def test_an_oversized_credential_is_401(server: LiveServer, size: int) -> None:
    code, body = raw_request(server, get(CONFIG, f"authorization: Bearer {'a' * size}"))
    assert code == 401
    assert b"a" * 100 not in body  # the credential is not echoed


def test_an_oversized_cookie_is_401(server: LiveServer) -> None:
    code, _ = raw_request(server, get(CONFIG, f"cookie: fp_session={'a' * 65536}"))
    assert code == 401


def test_headers_past_128_kib_are_431(server: LiveServer) -> None:
    many = [f"x-filler-{index}: {'b' * 8000}" for index in range(20)]
    code, _ = raw_request(server, get(CONFIG, "authorization: Bearer token-alice", *many))
    assert code == 431


def test_a_nul_byte_in_a_header_is_4xx(server: LiveServer) -> None:
    request = get(CONFIG, "authorization: Bearer token-alice", "x-note: a\x00b")
    code, _ = raw_request(server, request)
    assert code == 400


def test_a_huge_body_is_413_before_it_is_read(server: LiveServer) -> None:
    head = (
        f"POST {API} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
        "authorization: Bearer token-alice\r\ncontent-type: application/json\r\n"
        f"content-length: {10 * 1024 * 1024}\r\n\r\n"
    ).encode()
    code, _ = raw_request(server, head + b"{" * 1024)
    assert code == 413


def test_a_chunked_body_past_the_limit_is_413(server: LiveServer) -> None:
    def body() -> bytes:
        chunk = b"x" * 4096
        return (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 6 + b"0\r\n\r\n"

    head = (
        f"POST {API} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
        "authorization: Bearer token-alice\r\ncontent-type: application/json\r\n"
        "transfer-encoding: chunked\r\n\r\n"
    ).encode()
    code, _ = raw_request(server, head + body())
    assert code == 413


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\x01\x02",
        b'{"pageOrComponent": "\\u0000"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"pageOrComponent": ' + b'"a",' * 3000 + b'"b"}',
        '{"pageOrComponent": "\udcff"}'.encode("utf-8", "surrogatepass"),
    ],
)
def test_garbage_bodies_are_400_or_422(server: LiveServer, body: bytes) -> None:
    response = server.http.post(
        API, content=body, headers={**server.auth(), "content-type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text


@pytest.mark.parametrize("path", ["/", "/static/index.html", "/auth/login?token=wrong"])
def test_every_html_response_carries_the_security_headers(server: LiveServer, path: str) -> None:
    response = server.http.get(path)
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "http" not in csp  # no external origin anywhere in the policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_the_page_has_no_inline_script(server: LiveServer) -> None:
    html = server.http.get("/").text.lower()
    for tag in html.split("<script")[1:]:
        assert "src=" in tag.split(">", 1)[0]
        assert tag.split(">", 1)[1].startswith("</script")


def test_no_swagger_ui_with_its_cdn_scripts(server: LiveServer) -> None:
    assert server.http.get("/docs").status_code == 404
    assert server.http.get("/openapi.json").status_code == 200


def test_the_create_body_limit_still_accepts_a_full_valid_request(server: LiveServer) -> None:
    body = {**VALID_BODY, "additionalContext": "é" * 1000}
    assert server.create(body).status_code == 201
