"""The job routes' parameters: each rule is written here once, read by the handlers and
described from the same declaration in the OpenAPI document."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field
from starlette.requests import Request

from ..errors import InvalidJobIdError, InvalidLastEventIdError
from .endpoint import Param

__all__ = ["JOB_ID", "LAST_EVENT_ID", "LAST_EVENT_ID_QUERY", "job_id", "last_event_id"]

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
_EVENT_ID = Annotated[int, Field(ge=0, le=_MAX_EVENT_ID)]
LAST_EVENT_ID = Param("Last-Event-ID", "header", "Resume after this event id", _EVENT_ID)
LAST_EVENT_ID_QUERY = Param(
    "lastEventId", "query", "The same as the Last-Event-ID header", _EVENT_ID
)

_JOB_ID = re.compile(_UUID4)
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
