"""Logs an operator can use: JSON lines in production, readable lines in a terminal, a request
id on every line a request causes, and never a credential.

``configure_logging`` installs one handler on the root logger (uvicorn's loggers propagate to
it), so the access log, the job transitions and library warnings share one format.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import Any, Literal, TextIO

__all__ = [
    "REQUEST_ID",
    "JsonFormatter",
    "RedactQueryStrings",
    "TextFormatter",
    "configure_logging",
    "redact_access_log",
]

LogFormat = Literal["auto", "json", "text"]

# The id of the request being served; tasks started while serving it (a job's run) inherit
# it, so the run's log lines carry the id of the request that started it.
REQUEST_ID: ContextVar[str | None] = ContextVar("feature_planner_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class RedactQueryStrings(logging.Filter):
    """uvicorn's access log prints each path with its query string, where login tokens and
    stream tokens travel: keep the path, drop the query."""

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


# Credentials that could ride in a message another library formats (httpx logs each URL).
_CREDENTIAL_IN_TEXT = re.compile(
    r"(?P<keep>[?&](?:token|key|api_key|access_token|code)=|\bBearer\s+)[^\s&\"']+",
    re.IGNORECASE,
)


def redact(message: str) -> str:
    if "=" not in message and "earer" not in message:
        return message
    return _CREDENTIAL_IN_TEXT.sub(r"\g<keep>[redacted]", message)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD and key != "request_id" and value is not None
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, the record's
    ``extra`` fields, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(_extras(record))
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            entry.update(_access_fields(record.args))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``12:00:01 INFO  feature_planner.jobs [a1b2c3]: job … finished  outcome=complete``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s%(rid)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.rid = f" [{request_id}]" if request_id else ""
        line = redact(super().format(record))
        extras = _extras(record)
        extras.pop("rid", None)
        if extras:
            line += "  " + " ".join(f"{key}={value}" for key, value in extras.items())
        return line


def configure_logging(
    level: str = "info", log_format: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Send every log record to ``stream`` (stderr) in one format; idempotent.

    ``auto`` is JSON unless the stream is a terminal.
    """
    stream = stream or sys.stderr
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.set_name("feature_planner")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "feature_planner":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request's URL at info: noise for a service (and URLs can carry tokens).
    logging.getLogger("httpx").setLevel(max(root.level, logging.WARNING))
    # Alembic tells at info how it loads its plugins and each migration: noise at every start.
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    redact_access_log()


def _access_fields(args: tuple[Any, ...]) -> dict[str, Any]:
    """uvicorn's access-log arguments as fields: (client, method, path, http version, status)."""
    if len(args) != 5:
        return {}
    client, method, path, _, status = args
    return {"client": client, "method": method, "path": path, "status": status}


def _iso_time(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"
