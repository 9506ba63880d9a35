"""Errors of the service and the client.

Every error the API can answer with is a ``FeaturePlannerError`` carrying its HTTP status and
its wire ``code``; the web layer maps them to responses in one place and the client maps the
responses back to the same classes::

    FeaturePlannerError
    ├── AuthenticationError        401 UNAUTHORIZED
    ├── CrossOriginError           403 CSRF_REJECTED
    ├── JobForbiddenError          403 FORBIDDEN
    ├── InvalidJsonError           400 INVALID_JSON
    ├── InvalidJobIdError          400 INVALID_JOB_ID
    ├── InvalidLastEventIdError    400 INVALID_LAST_EVENT_ID
    ├── JobNotFoundError           404 JOB_NOT_FOUND
    ├── JobFinishedError           410 JOB_FINISHED
    ├── PayloadTooLargeError       413 PAYLOAD_TOO_LARGE
    ├── UnsupportedMediaTypeError  415 UNSUPPORTED_MEDIA_TYPE
    ├── RequestValidationError     422 VALIDATION_ERROR (with ``fields``)
    ├── RateLimitedError           429 RATE_LIMITED (with ``retry_after``)
    ├── TooManyStreamsError        429 TOO_MANY_STREAMS
    └── StoreUnavailableError      503 STORE_UNAVAILABLE

``ProviderError`` is not an HTTP error: raised inside a run, it becomes the terminal ``error``
event with code ``PROVIDER_ERROR``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class FeaturePlannerError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    default_message: ClassVar[str] = "Internal error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def to_wire(self) -> dict[str, Any]:
        return {"success": False, "error": {"code": self.code, "message": self.message}}


class AuthenticationError(FeaturePlannerError):
    status = 401
    code = "UNAUTHORIZED"
    default_message = "Authentication required: send a bearer token or log in"


class CrossOriginError(FeaturePlannerError):
    status = 403
    code = "CSRF_REJECTED"
    default_message = "Cookie-authenticated requests must come from this site's own origin"


class BadRequestError(FeaturePlannerError):
    status = 400
    code = "BAD_REQUEST"
    default_message = "The request is malformed"


class UriTooLongError(FeaturePlannerError):
    status = 414
    code = "URI_TOO_LONG"
    default_message = "The request's path or query is too long"


class HeadersTooLargeError(FeaturePlannerError):
    status = 431
    code = "HEADERS_TOO_LARGE"
    default_message = "The request's headers are too large"


class JobForbiddenError(FeaturePlannerError):
    status = 403
    code = "FORBIDDEN"
    default_message = "This job belongs to another user"


class InvalidJsonError(FeaturePlannerError):
    status = 400
    code = "INVALID_JSON"
    default_message = "The request body is not valid JSON"


class InvalidJobIdError(FeaturePlannerError):
    status = 400
    code = "INVALID_JOB_ID"
    default_message = "The job id must be a UUID v4"


class InvalidLastEventIdError(FeaturePlannerError):
    status = 400
    code = "INVALID_LAST_EVENT_ID"
    default_message = "Last-Event-ID must be a non-negative integer"


class JobNotFoundError(FeaturePlannerError):
    status = 404
    code = "JOB_NOT_FOUND"
    default_message = "No such job, or it has expired"


class JobFinishedError(FeaturePlannerError):
    status = 410
    code = "JOB_FINISHED"
    default_message = "The job has already finished"


class PayloadTooLargeError(FeaturePlannerError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    default_message = "The request body is larger than 16 KiB"


class UnsupportedMediaTypeError(FeaturePlannerError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "The request body must be sent as Content-Type: application/json"


class RequestValidationError(FeaturePlannerError):
    status = 422
    code = "VALIDATION_ERROR"
    default_message = "The request is not valid"

    def __init__(self, fields: list[dict[str, str]], message: str | None = None) -> None:
        self.fields = fields
        if message is None:
            message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or None
        super().__init__(message)

    def to_wire(self) -> dict[str, Any]:
        body = super().to_wire()
        body["error"]["fields"] = self.fields
        return body


class RateLimitedError(FeaturePlannerError):
    status = 429
    code = "RATE_LIMITED"
    default_message = "Too many jobs created; try again later"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(message or f"Too many jobs created; retry in {self.retry_after} s")

    def to_wire(self) -> dict[str, Any]:
        body = super().to_wire()
        body["error"]["retryAfter"] = self.retry_after
        return body


class TooManyStreamsError(FeaturePlannerError):
    status = 429
    code = "TOO_MANY_STREAMS"
    default_message = "Too many streams open for this user; close one first"


class StoreUnavailableError(FeaturePlannerError):
    status = 503
    code = "STORE_UNAVAILABLE"
    default_message = "The job store is unreachable; try again shortly"


class ServerDrainingError(FeaturePlannerError):
    status = 503
    code = "SERVER_DRAINING"
    default_message = "This server is shutting down; reconnect to resume on another"
    retry_after = 1


class ProviderError(Exception):
    """A provider failed in a way the user can act on; the message is shown to them."""


class ConfigurationError(Exception):
    """A setting is missing or wrong; raised at start-up, naming the setting."""


ERRORS_BY_CODE: dict[str, type[FeaturePlannerError]] = {
    cls.code: cls
    for cls in (
        AuthenticationError,
        CrossOriginError,
        BadRequestError,
        UriTooLongError,
        HeadersTooLargeError,
        JobForbiddenError,
        InvalidJsonError,
        InvalidJobIdError,
        InvalidLastEventIdError,
        JobNotFoundError,
        JobFinishedError,
        PayloadTooLargeError,
        UnsupportedMediaTypeError,
        RequestValidationError,
        RateLimitedError,
        TooManyStreamsError,
        StoreUnavailableError,
        ServerDrainingError,
    )
}
