"""The suite-wide log scan (``tests/log_scan.py``) recognises each kind of credential."""

from __future__ import annotations

import logging

import pytest

from feature_planner.auth import StreamTokens, hash_api_key, new_api_key
from tests.log_scan import find_secrets, scan_every_log_record


@pytest.mark.parametrize(
    "line",
    [
        "GET /api/feature-planner/suggest-feature/x?token="
        + StreamTokens("k" * 32, 900).issue("alice", "x"),
        "authorization: Bearer token-alice",
        f"key {new_api_key()} rejected",
        f"configured {hash_api_key('x')}=alice",
        "calling with sk-ant-test-0123456789",
        '"GET /auth/login?token=abc HTTP/1.1" 303',
    ],
)
def test_each_credential_shape_is_caught(line: str) -> None:
    assert find_secrets(line)


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1:5000 - "GET /auth/login?[redacted] HTTP/1.1" 303',
        "job 4b1c… finished: complete in 1.2 s (tokens 120/340)",
        "Send credentials as 'Authorization: Bearer <token>'",
        "could not fetch the JWKS from http://127.0.0.1:9/.well-known/jwks.json: HTTP 503",
    ],
)
def test_ordinary_lines_pass(line: str) -> None:
    assert not find_secrets(line)


def test_the_scan_sees_records_after_the_loggers_filters() -> None:
    logger = logging.getLogger("tests.log_scan.probe")

    class Redact(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg, record.args = "redacted", ()
            return True

    logger.addFilter(Redact())
    with scan_every_log_record() as found:
        logger.warning("Bearer token-alice")  # redacted by the logger's filter: fine
        logging.getLogger("tests.log_scan.other").warning("leaked Bearer %s", "token-bob")
    assert found == ["tests.log_scan.other: leaked Bearer token-bob"]
