"""The job routes' parameters: each rule is written here once, read by the handlers and
described from the same declaration in the OpenAPI document."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field
from starlette.requests import Request

from ..errors import InvalidJobIdError, InvalidLastEventIdError, RequestValidationError
from ..export import ExportFormat
from ..models import JobState
from .endpoint import Param

__all__ = [
    "CURSOR",
    "FORMAT",
    "IDEMPOTENCY_KEY",
    "JOB_ID",
    "LAST_EVENT_ID",
    "LAST_EVENT_ID_QUERY",
    "LIMIT",
    "STATUS",
    "SUGGESTION_INDEX",
    "WAIT",
    "cursor",
    "export_format",
    "idempotency_key",
    "job_id",
    "last_event_id",
    "limit",
    "status",
    "suggestion_index",
    "wait",
]

# A UUID v4 as ``str(uuid.uuid4())`` writes it (either case): version 4, RFC 4122 variant.
_UUID4 = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
# An event id: at most 18 digits, so that it fits a signed 64-bit integer everywhere.
_MAX_EVENT_ID = 10**18 - 1

JOB_ID = Param(
    "job_id",
    "path",
    "The jobId from Phase 1 (a UUID v4)",
    Annotated[str, Field(pattern=f"^{_UUID4}$", json_schema_extra={"format": "uuid"})],
    required=True,
)
_MAX_INDEX = 10**9 - 1
SUGGESTION_INDEX = Param(
    "index",
    "path",
    "The suggestion's place in the job's result, from 0",
    Annotated[int, Field(ge=0, le=_MAX_INDEX)],
    required=True,
)
_EVENT_ID = Annotated[int, Field(ge=0, le=_MAX_EVENT_ID)]
LAST_EVENT_ID = Param("Last-Event-ID", "header", "Resume after this event id", _EVENT_ID)
LAST_EVENT_ID_QUERY = Param(
    "lastEventId", "query", "The same as the Last-Event-ID header", _EVENT_ID
)

LIMIT = Param(
    "limit", "query", "How many jobs per page (default 20)", Annotated[int, Field(ge=1, le=100)]
)
CURSOR = Param(
    "cursor",
    "query",
    "The nextCursor of the previous page",
    Annotated[str, Field(min_length=1, max_length=512)],
)
STATUS = Param("status", "query", "Only the jobs in this state", JobState)
FORMAT = Param("format", "query", "The document: `markdown` (the default) or `json`", ExportFormat)
WAIT = Param(
    "wait",
    "query",
    "Hold the answer until the job is final or this many seconds have passed",
    Annotated[float, Field(ge=0, le=30)],
)
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "header",
    "Send the same key again (within 24 h, same body) to get the same job instead of a new one",
    Annotated[str, Field(min_length=1, max_length=255, pattern="^[\\x20-\\x7e]+$")],
)

_JOB_ID = re.compile(_UUID4)
_PRINTABLE_ASCII = re.compile("[\\x20-\\x7e]{1,255}")
_EVENT_ID_HEADER = LAST_EVENT_ID.name.lower()
_MAX_EVENT_ID_DIGITS = len(str(_MAX_EVENT_ID))


def job_id(request: Request) -> str:
    """The job id of the path, or ``InvalidJobIdError``."""
    value: str = request.path_params[JOB_ID.name]
    if _JOB_ID.fullmatch(value) is None:
        raise InvalidJobIdError(f"{value[:64]!r} is not a UUID v4 job id")
    return value


def last_event_id(request: Request) -> int | None:
    """The id to resume after (the header, else the query), None for none (an empty value
    counts as none), or ``InvalidLastEventIdError``."""
    raw = request.headers.get(_EVENT_ID_HEADER)
    if raw is None:
        raw = request.query_params.get(LAST_EVENT_ID_QUERY.name)
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > _MAX_EVENT_ID_DIGITS:
        raise InvalidLastEventIdError(
            f"Last-Event-ID must be a non-negative integer, not {raw[:32]!r}"
        )
    return int(raw)


def limit(request: Request) -> int:
    raw = request.query_params.get(LIMIT.name)
    if raw is None:
        return 20
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= 100):
        raise _invalid(LIMIT.name, "must be a whole number from 1 to 100")
    return int(raw)


def cursor(request: Request) -> str | None:
    raw = request.query_params.get(CURSOR.name)
    if raw is not None and not 1 <= len(raw) <= 512:
        raise _invalid(CURSOR.name, "must be the nextCursor of the previous page")
    return raw or None


def status(request: Request) -> JobState | None:
    raw = request.query_params.get(STATUS.name)
    if raw is None:
        return None
    try:
        return JobState(raw)
    except ValueError:
        choices = ", ".join(state.value for state in JobState)
        raise _invalid(STATUS.name, f"must be one of: {choices}") from None


def export_format(request: Request) -> ExportFormat:
    raw = request.query_params.get(FORMAT.name)
    if raw is None:
        return ExportFormat.MARKDOWN
    try:
        return ExportFormat(raw)
    except ValueError:
        choices = ", ".join(kind.value for kind in ExportFormat)
        raise _invalid(FORMAT.name, f"must be one of: {choices}") from None


def wait(request: Request) -> float:
    raw = request.query_params.get(WAIT.name)
    if raw is None:
        return 0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1
    if not 0 <= seconds <= 30:  # NaN fails too
        raise _invalid(WAIT.name, "must be a number of seconds from 0 to 30")
    return seconds


def suggestion_index(request: Request) -> int:
    """The path's suggestion index (0 for the first), or a 422 that says what it must be."""
    raw: str = request.path_params[SUGGESTION_INDEX.name]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(_MAX_INDEX))):
        raise _invalid(SUGGESTION_INDEX.name, f"must be a whole number from 0 to {_MAX_INDEX}")
    return int(raw)


def idempotency_key(request: Request) -> str | None:
    raw = request.headers.get("idempotency-key")
    if raw is None:
        return None
    if _PRINTABLE_ASCII.fullmatch(raw) is None:
        raise _invalid(IDEMPOTENCY_KEY.name, "must be 1 to 255 printable ASCII characters")
    return raw


def _invalid(name: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"field": name, "message": message}])
