"""The ``openai`` provider: Chat Completions streaming with function tools, any compatible server.

The base URL is configurable, so the same code talks to OpenAI, Ollama, vLLM and LM Studio.
The service runs the tool loop itself: each request streams the model's narrative to the
sink and collects its tool calls; the repository tools and ``submit_suggestion`` (one
suggestion, checked and sent by the conversation) run here and their results go back as
``tool`` messages, until the model calls ``finish``.

Failures are translated where they enter (``_failure_message``): the SDK's exceptions never
leave this module, and no message contains the API key. A request that fails before it has
streamed any text is retried with exponential backoff when the failure is transient (429,
5xx, connection); once text has reached the user, a retry would repeat it, so the run fails.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
)
from openai.types.completion_usage import CompletionUsage

from ...errors import ProviderError
from ..base import PlanRequest, PlanResult, Provider, RunSink
from ..planner import FINISH_TOOL_NAME, SUBMIT_TOOL_NAME, system_prompt
from ..tools import ToolDefinition
from .backoff import CallFailure, CallRetries, retry_after_seconds
from .conversation import LAST_ROUND, SUBMIT_NOW, TRUNCATED_CALL, Conversation, UsageTotals
from .options import AIOptions

__all__ = ["OpenAIProvider"]

MAX_TOOL_ROUNDS = 25
_RETRYABLE_STATUSES = frozenset({408, 409, 429})
_KEY_HINT = "check FEATURE_PLANNER_OPENAI_API_KEY"


@dataclass
class _ToolCall:
    id: str
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    @property
    def raw_arguments(self) -> str:
        return "".join(self.arguments)

    def message(self) -> ChatCompletionMessageFunctionToolCallParam:
        # Servers that render history through a chat template (vLLM, Ollama) parse the
        # arguments again: truncated JSON goes back as "{}", the tool result says what failed.
        arguments = self.raw_arguments
        if not isinstance(_json_object(arguments), dict):
            arguments = "{}"
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": arguments},
        }


@dataclass
class _Turn:
    """One streamed response: its text, tool calls, finish reason, usage and model."""

    text: str = ""
    tool_calls: list[_ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: CompletionUsage | None = None
    model: str | None = None


class OpenAIProvider(Provider):
    name = "openai"

    def __init__(
        self,
        options: AIOptions,
        *,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 20.0,
        max_tool_rounds: int = MAX_TOOL_ROUNDS,
    ) -> None:
        self._options = options
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self._max_tool_rounds = max_tool_rounds
        # The SDK's own retries are off: ours know whether text has already streamed.
        self._client = openai.AsyncOpenAI(
            api_key=options.api_key or "not-needed",
            base_url=options.base_url,
            max_retries=0,
        )
        self._base_url = str(self._client.base_url).rstrip("/")
        # OpenAI's newer models refuse ``max_tokens``; other servers may not know its successor.
        self._official = self._client.base_url.host == "api.openai.com"

    @property
    def models(self) -> Sequence[str]:
        return self._options.allowed_models

    async def aclose(self) -> None:
        await self._client.close()

    async def run(self, request: PlanRequest, sink: RunSink) -> PlanResult:
        run = Conversation(request, sink, self._options)
        run.usage.cache_in_input = True  # prompt_tokens counts the cached ones already
        params = self._params(run.model, run.temperature, run.tool_definitions())
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": system_prompt(request.agent)},
            {"role": "user", "content": await run.first_message(request)},
        ]
        model_used = run.model
        reminded = False
        for round_number in range(1, self._max_tool_rounds + 1):
            if round_number == self._max_tool_rounds:
                messages.append({"role": "user", "content": LAST_ROUND})
            turn = await self._complete(messages, params, run)
            model_used = turn.model or model_used
            if turn.finish_reason == "content_filter":
                raise ProviderError("The model's answer was stopped by the content filter")
            if not turn.tool_calls:
                problem = f"the turn ended without calling {FINISH_TOOL_NAME}"
                if run.ended_without_finish(problem):
                    return run.result(None, model_used)
                if reminded and not run.submissions.sent:
                    raise ProviderError(
                        f"The model {run.model} answered without calling {SUBMIT_TOOL_NAME}, even "
                        "when reminded; choose a model that supports tool calls"
                    )
                reminded = True
                messages.append({"role": "assistant", "content": turn.text})
                messages.append({"role": "user", "content": SUBMIT_NOW})
                continue
            messages.append(
                {
                    "role": "assistant",
                    "content": turn.text or None,
                    "tool_calls": [call.message() for call in turn.tool_calls],
                }
            )
            truncated = _truncated_call(turn)
            for call in turn.tool_calls:
                if call is truncated:
                    content = _error_content(TRUNCATED_CALL)
                    if call.name in (SUBMIT_TOOL_NAME, FINISH_TOOL_NAME):
                        run.retries.charge("a tool call was cut off at the output token limit")
                elif call.name == FINISH_TOOL_NAME:
                    ended = run.submissions.finish(call.raw_arguments or "{}")
                    if isinstance(ended, str):
                        return run.result(ended, model_used)
                    content = _error_content(ended.text)
                else:
                    content = await _run_tool(run, call)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        if run.submissions.sent:  # out of rounds, with suggestions shown: end with them
            return run.result(None, model_used)
        raise ProviderError(
            f"The model did not call {SUBMIT_TOOL_NAME} within {self._max_tool_rounds} rounds "
            "of tool use"
        )

    def _params(
        self, model: str, temperature: float, tools: Sequence[ToolDefinition]
    ) -> dict[str, Any]:
        definitions: list[ChatCompletionFunctionToolParam] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.input_schema,
                },
            }
            for tool in tools
        ]
        limit = "max_completion_tokens" if self._official else "max_tokens"
        return {
            "model": model,
            "tools": definitions,
            "temperature": temperature,
            limit: self._options.max_output_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    async def _complete(
        self,
        messages: list[ChatCompletionMessageParam],
        params: dict[str, Any],
        run: Conversation,
    ) -> _Turn:
        """One request, retried with backoff while it fails before streaming any text."""
        retries = CallRetries(
            self._options.provider_retries, self._retry_base_delay, self._retry_max_delay
        )
        narrative = run.narrative
        while True:
            sent_before = narrative.length
            try:
                return await self._stream(messages, params, run)
            except openai.APIError as exc:
                streamed = narrative.length > sent_before
                if not streamed and _refused_temperature(exc, params):
                    # Reasoning models (o-series, gpt-5) accept only their default
                    # temperature: asked again without one, at once and not as a retry.
                    del params["temperature"]
                    continue
                failure = CallFailure(
                    self._failure_message(exc, str(params["model"])),
                    _retryable(exc),
                    _retry_after(exc),
                )
            # Outside the except clause: the SDK's error is not chained to the run's end.
            await retries.after(failure, streamed=streamed)

    async def _stream(
        self,
        messages: list[ChatCompletionMessageParam],
        params: dict[str, Any],
        run: Conversation,
    ) -> _Turn:
        narrative = run.narrative
        turn = _Turn()
        calls: dict[int, _ToolCall] = {}
        chunks = 0
        narrative.start_block()
        run.usage.start_response()
        try:
            stream = await self._client.chat.completions.create(messages=messages, **params)
            try:
                async for chunk in stream:
                    chunks += 1
                    turn.model = chunk.model or turn.model
                    if chunk.usage is not None:
                        # Usually the last chunk; some servers repeat it, or report the usage
                        # so far on every chunk (vLLM's continuous_usage_stats). Counted at
                        # once: past the run's ceiling, leaving here closes the stream.
                        turn.usage = chunk.usage
                        _report_usage(run.usage, chunk.usage)
                    for choice in chunk.choices[:1]:
                        delta = choice.delta
                        text = (delta.content or "") + (delta.refusal or "")
                        if text:
                            turn.text += text
                            narrative.text(text)
                        for piece in delta.tool_calls or ():
                            _accumulate(calls, turn, piece)
                            if piece.function is not None and piece.function.name:
                                run.tool_started(piece.function.name)
                        if choice.finish_reason is not None:
                            turn.finish_reason = choice.finish_reason
            finally:
                # Closing at once also on cancellation: no more tokens are generated or billed.
                await stream.close()
        except ValueError:  # a data line that is not a JSON chunk
            chunks = 0
        if chunks == 0:
            raise ProviderError(
                f"The server at {self._base_url} did not answer with a Chat Completions stream; "
                "check FEATURE_PLANNER_OPENAI_BASE_URL (it usually ends in /v1)"
            ) from None
        if turn.finish_reason is None:
            # The body ended without a finish reason: a proxy or the server cut the answer.
            raise openai.APIConnectionError(
                message="The response ended early", request=stream.response.request
            )
        for index, call in enumerate(turn.tool_calls):
            call.id = call.id or f"call_{len(messages)}_{index}"
        return turn

    def _failure_message(self, exc: openai.APIError, model: str) -> str:
        """What the user is told; never the API key, never the server's 401 text."""
        if isinstance(exc, openai.AuthenticationError):
            return f"The OpenAI API key was refused; {_KEY_HINT}"
        detail = self._redact(_error_text(exc))
        if isinstance(exc, openai.PermissionDeniedError):
            return f"The OpenAI-compatible server refused access to model {model}: {detail}"
        if isinstance(exc, openai.NotFoundError):
            return (
                f"The model {model} was not found at {self._base_url} ({detail}); check "
                "FEATURE_PLANNER_MODEL or customModel, and that the base URL ends in /v1"
            )
        if isinstance(exc, openai.RateLimitError):
            if exc.code == "insufficient_quota":
                return f"The OpenAI account has run out of quota: {detail}"
            return f"The model {model} is rate limited: {detail}"
        if isinstance(exc, openai.APIStatusError):
            return f"The OpenAI-compatible server answered HTTP {exc.status_code}: {detail}"
        if isinstance(exc, openai.APIConnectionError):
            return f"The connection to the OpenAI-compatible server at {self._base_url} failed"
        return f"The OpenAI-compatible server reported an error: {detail}"

    def _redact(self, text: str) -> str:
        key = self._options.api_key
        if key:
            text = text.replace(key, "[redacted]")
        return text[:300]


def _accumulate(calls: dict[int, _ToolCall], turn: _Turn, piece: Any) -> None:
    """Join a tool call streamed over several chunks: id and name first, arguments in pieces."""
    call = calls.get(piece.index)
    if call is None or (piece.id and call.id and piece.id != call.id):
        call = calls[piece.index] = _ToolCall(id=piece.id or "")
        turn.tool_calls.append(call)
    call.id = call.id or piece.id or ""
    if piece.function is not None:
        if piece.function.name and not call.name:
            call.name = piece.function.name
        if piece.function.arguments:
            call.arguments.append(piece.function.arguments)


def _truncated_call(turn: _Turn) -> _ToolCall | None:
    """The call the output token limit cut off, if any: the last, its JSON unfinished."""
    if turn.finish_reason != "length" or not turn.tool_calls:
        return None
    last = turn.tool_calls[-1]
    return None if isinstance(_json_object(last.raw_arguments), dict) else last


async def _run_tool(run: Conversation, call: _ToolCall) -> str:
    raw = call.raw_arguments or "{}"
    # A suggestion's JSON is validated as text, so that a broken one is explained where.
    arguments = raw if call.name == SUBMIT_TOOL_NAME else _json_object(raw)
    result = await run.use_tool(call.name, arguments)
    return _error_content(result.text) if result.is_error else result.text


def _error_content(text: str) -> str:
    # Chat Completions has no error flag for tool results: an error says so in its text.
    return text if text.startswith("Error") else f"Error: {text}"


def _json_object(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _report_usage(totals: UsageTotals, usage: CompletionUsage) -> None:
    details = usage.prompt_tokens_details
    totals.report(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cache_read=details.cached_tokens if details is not None else None,
        cache_creation=details.cache_write_tokens if details is not None else None,
    )


def _refused_temperature(exc: openai.APIError, params: dict[str, Any]) -> bool:
    return (
        isinstance(exc, openai.BadRequestError)
        and exc.param == "temperature"
        and "temperature" in params
    )


def _retryable(exc: openai.APIError) -> bool:
    if isinstance(exc, openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        if exc.code == "insufficient_quota":  # a 429 that waiting does not cure
            return False
        return exc.status_code in _RETRYABLE_STATUSES or exc.status_code >= 500
    # An error event inside the stream (no HTTP status): retry only the server's own trouble.
    return exc.type == "server_error" or exc.code in {"server_error", "rate_limit_exceeded"}


def _retry_after(exc: openai.APIError) -> float | None:
    if not isinstance(exc, openai.APIStatusError):
        return None
    return retry_after_seconds(exc.response.headers)


def _error_text(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return exc.message
