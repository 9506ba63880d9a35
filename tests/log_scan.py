"""Credentials must never reach a log line: the shapes they take, and a scan of every record.

``scan_every_log_record`` watches every record that reaches a handler for the whole test
session (after the loggers' own filters, as an operator's log file would get it), so every
test that runs a server, a login, a stream token or a provider adds to the evidence.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["find_secrets", "scan_every_log_record"]

_CALL_HANDLERS = logging.Logger.callHandlers

SECRET_SHAPES = re.compile(
    r"""
      eyJ[\w-]{8,}\.[\w-]{8,}\.             # a JWT: login link, session, stream or OIDC token
    | fpk_[\w-]{16,}                         # an API key
    | sha256:[0-9a-f]{64}                    # an API key's hash (needed to map keys to users)
    | \bBearer\s+(?!<)[\w.~+/=-]{4,}         # an Authorization header's value
    | \bsk-[\w-]{6,}                         # an AI provider's key
    | \b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,})   # a GitHub token
    | \btoken-(?:alice|bob)\b                # the suite's own bearer tokens
    | [?&](?:token|key|api_key)=(?!\[redacted\])[^\s&"']+   # a credential in a query string
    """,
    re.VERBOSE,
)


def find_secrets(text: str) -> list[str]:
    return [match.group(0) for match in SECRET_SHAPES.finditer(text)]


def _record_text(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    return text


@contextmanager
def scan_every_log_record() -> Iterator[list[str]]:
    """Yield the list of offending log lines, filled in as records are handled.

    Scans do not nest: an inner one (the scanner's own test) keeps what it sees to itself.
    """
    found: list[str] = []
    outer = logging.Logger.callHandlers

    def call_handlers(logger: logging.Logger, record: logging.LogRecord) -> None:
        try:
            text = _record_text(record)
        except Exception:  # a record that cannot be formatted is the logger's own problem
            text = str(record.msg)
        if find_secrets(text):
            found.append(f"{record.name}: {text[:300]}")
        _CALL_HANDLERS(logger, record)

    logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign]
    try:
        yield found
    finally:
        logging.Logger.callHandlers = outer  # type: ignore[method-assign]
