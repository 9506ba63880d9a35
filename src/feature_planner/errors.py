"""Every error a client of the service can receive, under one root.

A class says everything about its answer: the HTTP ``status``, the wire ``code``, the
``headers`` and the body (``to_wire``, the one place an error body is built). The server
raises them and answers with them (``web/responses.py``); the client maps an answer back to
the class by its code (``ERRORS_BY_CODE``: each class registers its code as it is defined).
The client's own failures, which no server sends, are under ``ClientSideError``::

    FeaturePlannerError                  500 INTERNAL_ERROR
    ├── InternalError                    500 INTERNAL_ERROR
    ├── BadRequestError                  400 BAD_REQUEST
    ├── InvalidJsonError                 400 INVALID_JSON
    ├── InvalidJobIdError                400 INVALID_JOB_ID
    ├── InvalidLastEventIdError          400 INVALID_LAST_EVENT_ID
    ├── AuthenticationError              401 UNAUTHORIZED
    ├── CrossOriginError                 403 CSRF_REJECTED
    ├── JobForbiddenError                403 FORBIDDEN
    ├── ShareReadOnlyError               403 SHARE_READ_ONLY
    ├── RouteNotFoundError               404 NOT_FOUND
    ├── JobNotFoundError                 404 JOB_NOT_FOUND
    ├── AgentNotFoundError               404 AGENT_NOT_FOUND
    ├── SuggestionNotFoundError          404 SUGGESTION_NOT_FOUND
    ├── MethodNotAllowedError            405 METHOD_NOT_ALLOWED (with ``allow``)
    ├── JobActiveError                   409 JOB_ACTIVE
    ├── JobNotCompleteError              409 JOB_NOT_COMPLETE
    ├── JobFinishedError                 410 JOB_FINISHED
    ├── PayloadTooLargeError             413 PAYLOAD_TOO_LARGE
    ├── UriTooLongError                  414 URI_TOO_LONG
    ├── UnsupportedMediaTypeError        415 UNSUPPORTED_MEDIA_TYPE
    ├── RequestValidationError           422 VALIDATION_ERROR (with ``fields``)
    ├── IdempotencyKeyReusedError        422 IDEMPOTENCY_KEY_REUSED
    ├── RateLimitedError                 429 RATE_LIMITED (with ``retry_after``)
    │   └── DailyBudgetExceededError     429 DAILY_BUDGET_EXCEEDED
    ├── TooManyStreamsError              429 TOO_MANY_STREAMS
    ├── HeadersTooLargeError             431 HEADERS_TOO_LARGE
    ├── NotConfiguredError               501 NOT_CONFIGURED
    ├── UpstreamError                    502 UPSTREAM_ERROR
    ├── StoreUnavailableError            503 STORE_UNAVAILABLE
    ├── ServerDrainingError              503 SERVER_DRAINING
    └── ClientSideError                  (raised by the client itself, never sent)
        ├── UnexpectedResponseError      502 UNEXPECTED_RESPONSE
        └── ConnectionFailedError        503 CONNECTION_FAILED

Two errors are not a client's: ``ProviderError`` is raised inside a run and becomes its
terminal ``error`` event (code ``PROVIDER_ERROR``; its ``BudgetExceededError``:
``BUDGET_EXCEEDED``); ``config.ConfigurationError`` stops the start-up and names the
setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Self

__all__ = [
    "ERRORS_BY_CODE",
    "AgentNotFoundError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ClientSideError",
    "ConnectionFailedError",
    "CrossOriginError",
    "DailyBudgetExceededError",
    "FeaturePlannerError",
    "HeadersTooLargeError",
    "IdempotencyKeyReusedError",
    "InternalError",
    "InvalidJobIdError",
    "InvalidJsonError",
    "InvalidLastEventIdError",
    "JobActiveError",
    "JobFinishedError",
    "JobForbiddenError",
    "JobNotCompleteError",
    "JobNotFoundError",
    "MethodNotAllowedError",
    "NotConfiguredError",
    "PayloadTooLargeError",
    "ProviderError",
    "RateLimitedError",
    "RequestValidationError",
    "RouteNotFoundError",
    "ServerDrainingError",
    "ShareReadOnlyError",
    "StoreUnavailableError",
    "SuggestionNotFoundError",
    "TooManyStreamsError",
    "UnexpectedResponseError",
    "UnsupportedMediaTypeError",
    "UpstreamError",
    "UriTooLongError",
]

# Every code a server answers with, and its class (filled as the classes are defined).
_BY_CODE: dict[str, type[FeaturePlannerError]] = {}
ERRORS_BY_CODE: Mapping[str, type[FeaturePlannerError]] = MappingProxyType(_BY_CODE)


class FeaturePlannerError(Exception):
    """The root: every error a client can receive."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    default_message: ClassVar[str] = "Internal error"
    sent_by_server: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in vars(cls) or not cls.sent_by_server:
            return
        taken = _BY_CODE.setdefault(cls.code, cls)
        if taken is not cls:
            raise TypeError(f"{cls.__name__}: code {cls.code} is {taken.__name__}'s already")

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        """The answer's headers: an error is about this request, never to be cached."""
        return {"cache-control": "no-store"}

    def details(self) -> dict[str, Any]:
        """What the body's ``error`` carries beside ``code`` and ``message``."""
        return {}

    def to_wire(self) -> dict[str, Any]:
        """The answer's body: ``{"success": false, "error": {"code", "message", ...}}``."""
        error = {"code": self.code, "message": self.message, **self.details()}
        return {"success": False, "error": error}

    @classmethod
    def from_wire(cls, error: Mapping[str, Any], headers: Mapping[str, str]) -> Self:
        """The error an answer describes: its body's ``error`` object and its headers."""
        return cls(_text(error.get("message")))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class InternalError(FeaturePlannerError):
    """A bug in the server (logged there, with its traceback)."""

    code = "INTERNAL_ERROR"


class BadRequestError(FeaturePlannerError):
    """The path, query or a header contains a NUL byte."""

    status = 400
    code = "BAD_REQUEST"
    default_message = "The request is malformed"


class InvalidJsonError(FeaturePlannerError):
    """The body is not valid JSON."""

    status = 400
    code = "INVALID_JSON"
    default_message = "The request body is not valid JSON"


class InvalidJobIdError(FeaturePlannerError):
    """The job id is not a UUID v4."""

    status = 400
    code = "INVALID_JOB_ID"
    default_message = "The job id must be a UUID v4"


class InvalidLastEventIdError(FeaturePlannerError):
    """``Last-Event-ID`` is not a non-negative integer of at most 18 digits."""

    status = 400
    code = "INVALID_LAST_EVENT_ID"
    default_message = "Last-Event-ID must be a non-negative integer"


class AuthenticationError(FeaturePlannerError):
    """No or bad credentials."""

    status = 401
    code = "UNAUTHORIZED"
    default_message = "Authentication required: send a bearer token or log in"

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "www-authenticate": "Bearer"}


class CrossOriginError(FeaturePlannerError):
    """A cookie-authenticated change sent from another origin (CSRF)."""

    status = 403
    code = "CSRF_REJECTED"
    default_message = "Cookie-authenticated requests must come from this site's own origin"


class JobForbiddenError(FeaturePlannerError):
    """The job belongs to another user."""

    status = 403
    code = "FORBIDDEN"
    default_message = "This job belongs to another user"

    def __init__(
        self,
        message: str | None = None,
        *,
        caller: str | None = None,
        owner: str | None = None,
        job_id: str | None = None,
    ) -> None:
        # For the server's warning line (never sent: the owner is none of the caller's business).
        self.caller, self.owner, self.job_id = caller, owner, job_id
        super().__init__(message)


class ShareReadOnlyError(FeaturePlannerError):
    """A watch-only share token was used for more than reading its one job."""

    status = 403
    code = "SHARE_READ_ONLY"
    default_message = (
        "A share link may only read and stream its own job; sign in to do anything else"
    )


class RouteNotFoundError(FeaturePlannerError):
    """No such route."""

    status = 404
    code = "NOT_FOUND"
    default_message = "Not Found"


class JobNotFoundError(FeaturePlannerError):
    """No such job, or it has expired."""

    status = 404
    code = "JOB_NOT_FOUND"
    default_message = "No such job, or it has expired"


class AgentNotFoundError(FeaturePlannerError):
    """You have no custom agent to remove."""

    status = 404
    code = "AGENT_NOT_FOUND"
    default_message = "You have no custom agent; runs use the default agent"


class SuggestionNotFoundError(FeaturePlannerError):
    """The job has no suggestion at that index."""

    status = 404
    code = "SUGGESTION_NOT_FOUND"
    default_message = "The job has no suggestion at that index"


class MethodNotAllowedError(FeaturePlannerError):
    """The route has no such method; ``Allow`` lists those it has."""

    status = 405
    code = "METHOD_NOT_ALLOWED"
    default_message = "Method Not Allowed"

    def __init__(self, allow: Iterable[str], message: str | None = None) -> None:
        self.allow = tuple(allow)
        super().__init__(message)

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "allow": ", ".join(self.allow)}

    @classmethod
    def from_wire(cls, error: Mapping[str, Any], headers: Mapping[str, str]) -> Self:
        allow = [method.strip() for method in headers.get("allow", "").split(",")]
        return cls([method for method in allow if method], _text(error.get("message")))


class JobActiveError(FeaturePlannerError):
    """The job is still pending or running: it cannot be removed from the history yet."""

    status = 409
    code = "JOB_ACTIVE"
    default_message = "The job is still active; cancel it first, then remove it"


class JobNotCompleteError(FeaturePlannerError):
    """The job has not completed, so it has no result to act on."""

    status = 409
    code = "JOB_NOT_COMPLETE"
    default_message = "The job has not completed; only a completed job can be shared"


class JobFinishedError(FeaturePlannerError):
    """The job has finished (a stream: and no ``Last-Event-ID`` was sent)."""

    status = 410
    code = "JOB_FINISHED"
    default_message = "The job has already finished"


class PayloadTooLargeError(FeaturePlannerError):
    """The body is over 16 KiB."""

    status = 413
    code = "PAYLOAD_TOO_LARGE"
    default_message = "The request body is larger than 16 KiB"


class UriTooLongError(FeaturePlannerError):
    """The path is over 2 KiB or the query over 8 KiB."""

    status = 414
    code = "URI_TOO_LONG"
    default_message = "The request's path or query is too long"


class UnsupportedMediaTypeError(FeaturePlannerError):
    """The body's ``Content-Type`` is not ``application/json``."""

    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "The request body must be sent as Content-Type: application/json"


class RequestValidationError(FeaturePlannerError):
    """Validation failed; ``error.fields`` lists each bad field and why."""

    status = 422
    code = "VALIDATION_ERROR"
    default_message = "The request is not valid"

    def __init__(self, fields: list[dict[str, str]], message: str | None = None) -> None:
        self.fields = fields
        if message is None:
            message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or None
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        return {"fields": self.fields}

    @classmethod
    def from_wire(cls, error: Mapping[str, Any], headers: Mapping[str, str]) -> Self:
        raw = error.get("fields")
        fields = [
            {str(key): str(value) for key, value in item.items()}
            for item in (raw if isinstance(raw, list) else [])
            if isinstance(item, dict)
        ]
        return cls(fields, _text(error.get("message")))


class IdempotencyKeyReusedError(FeaturePlannerError):
    """The ``Idempotency-Key`` was used before with a different body."""

    status = 422
    code = "IDEMPOTENCY_KEY_REUSED"
    default_message = (
        "This Idempotency-Key was already used with a different body; send a new key for a new job"
    )


class RateLimitedError(FeaturePlannerError):
    """Too many jobs created in the last minute; ``Retry-After`` says when to try again."""

    status = 429
    code = "RATE_LIMITED"
    default_message = "Too many jobs created; try again later"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(message or f"Too many jobs created; retry in {self.retry_after} s")

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "retry-after": str(self.retry_after)}

    def details(self) -> dict[str, Any]:
        return {"retryAfter": self.retry_after}

    @classmethod
    def from_wire(cls, error: Mapping[str, Any], headers: Mapping[str, str]) -> Self:
        retry_after = 1
        for value in (headers.get("retry-after"), error.get("retryAfter")):
            try:
                retry_after = int(float(value))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
            break
        return cls(retry_after, _text(error.get("message")))


class DailyBudgetExceededError(RateLimitedError):
    """The user's tokens of the last 24 hours passed ``FEATURE_PLANNER_DAILY_USER_TOKENS``;
    ``Retry-After`` says when enough of them will be older than that."""

    code = "DAILY_BUDGET_EXCEEDED"
    default_message = "Your daily token budget is spent; try again later"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(
            retry_after,
            message
            or "Your runs of the last 24 hours used your daily token budget; "
            f"retry in {max(1, retry_after)} s",
        )


class TooManyStreamsError(FeaturePlannerError):
    """Too many streams open for this user."""

    status = 429
    code = "TOO_MANY_STREAMS"
    default_message = "Too many streams open for this user; close one first"


class HeadersTooLargeError(FeaturePlannerError):
    """The headers are over 128 KiB."""

    status = 431
    code = "HEADERS_TOO_LARGE"
    default_message = "The request's headers are too large"


class NotConfiguredError(FeaturePlannerError):
    """The feature needs settings this server does not have (the message names them)."""

    status = 501
    code = "NOT_CONFIGURED"
    default_message = "This feature is not configured on this server"


class UpstreamError(FeaturePlannerError):
    """A service this server called refused or failed (the message says what it said)."""

    status = 502
    code = "UPSTREAM_ERROR"
    default_message = "An upstream service failed"


class StoreUnavailableError(FeaturePlannerError):
    """A store (jobs, limits, custom agents) is unreachable."""

    status = 503
    code = "STORE_UNAVAILABLE"
    default_message = "The job store is unreachable; try again shortly"


class ServerDrainingError(FeaturePlannerError):
    """This server is shutting down; reconnect to resume on another."""

    status = 503
    code = "SERVER_DRAINING"
    default_message = "This server is shutting down; reconnect to resume on another"
    retry_after: ClassVar[int] = 1

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "retry-after": str(self.retry_after)}


class ClientSideError(FeaturePlannerError):
    """The client failed before it had an answer it understands; no server sends these."""

    sent_by_server = False


class UnexpectedResponseError(ClientSideError):
    """The server answered something the contract does not describe."""

    status = 502
    code = "UNEXPECTED_RESPONSE"
    default_message = "The server sent an unexpected response"

    def __init__(
        self,
        message: str | None = None,
        *,
        http_status: int | None = None,
        wire_code: str | None = None,
    ) -> None:
        self.http_status = http_status  # the status the server actually answered with
        self.wire_code = wire_code  # the unknown ``error.code``, if there was one
        super().__init__(message)


class ConnectionFailedError(ClientSideError):
    """The server could not be reached, or the stream kept dropping past ``max_reconnects``."""

    status = 503
    code = "CONNECTION_FAILED"
    default_message = "Could not reach the Feature Planner server"


class ProviderError(Exception):
    """A provider failed in a way the user can act on; the message is shown to them."""


class BudgetExceededError(ProviderError):
    """A run's usage passed ``FEATURE_PLANNER_MAX_RUN_TOKENS``: raised at the first usage
    report past it, inside the provider's stream, so that leaving the stream closes the
    upstream request. Its run ends with code ``BUDGET_EXCEEDED``; ``tokens`` (what the run
    was charged until then) still counts toward the user's daily budget."""

    def __init__(self, ceiling: int, tokens: int, input_tokens: int, output_tokens: int) -> None:
        self.ceiling = ceiling
        self.tokens = tokens
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        super().__init__(
            f"The run was stopped after {tokens} tokens: it passed its ceiling of {ceiling} "
            "tokens (FEATURE_PLANNER_MAX_RUN_TOKENS); raise the setting or narrow the request"
        )
