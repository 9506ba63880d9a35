"""Logging hygiene: credentials never reach a log line."""

from __future__ import annotations

import logging

__all__ = ["RedactQueryStrings", "redact_access_log"]


class RedactQueryStrings(logging.Filter):
    """uvicorn's access log prints each path with its query string, and a login link's
    one-time token travels there: keep the path, drop the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, question, _ = args[2].partition("?")
            if question:
                record.args = (*args[:2], f"{path}?[redacted]", *args[3:])
        return True


def redact_access_log() -> None:
    """Install the filter on uvicorn's access logger (once; after uvicorn set up logging)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQueryStrings) for f in access.filters):
        access.addFilter(RedactQueryStrings())
