"""The ``anthropic`` provider: Claude through the Messages API, the tool loop run here.

One run is a conversation of rounds. Each round streams one assistant message: its
``text_delta``s go to the sink as they arrive (the narrative), its ``tool_use`` blocks are
answered with ``tool_result`` blocks (the repository tools, and ``submit_suggestion``, which
the conversation checks and sends one suggestion at a time), and the run ends when the model
calls ``finish``. What went wrong (an invalid input, evidence that failed) is answered with
an error ``tool_result`` that says what to fix.

Failures, and what becomes of them::

    429, 529 / overloaded, 5xx, connection lost    retried with backoff while the failed
        (HTTP status or a streamed ``error``)      attempt had sent no text to the sink
    401 / 403                                      ProviderError: the key was refused
    400 / 404                                      ProviderError naming the model
    anything once the attempt's text has streamed  ProviderError: broke off mid-stream

Cancellation, and a usage report past the run's token ceiling, leave the stream's context at
once, which closes the upstream response so no more tokens are billed. The agent's
``temperature`` is not sent: the SDK (2.x) speaks API version 2026-10-21, which has no
sampling parameters and refuses requests that carry them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast
from urllib.parse import urlsplit

import anthropic
import httpx2
from anthropic.types import (
    ContentBlockParam,
    Message,
    MessageParam,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolChoiceParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlock,
)

from ...config import ConfigurationError
from ...errors import ProviderError
from ..base import PlanRequest, PlanResult, Provider, RunSink
from ..planner import FINISH_TOOL_NAME, SUBMIT_TOOL_NAME, system_prompt
from .backoff import CallFailure, CallRetries, retry_after_seconds
from .conversation import SUBMIT_NOW, TRUNCATED_CALL, Conversation
from .options import AIOptions

__all__ = ["AnthropicProvider"]

logger = logging.getLogger(__name__)

KEY_REFUSED = "The Anthropic API key was refused; check FEATURE_PLANNER_ANTHROPIC_API_KEY"


class _IncompleteStreamError(Exception):
    """The stream ended without ``message_stop``: the connection was lost."""


@dataclass(frozen=True, slots=True)
class _Call:
    """What one round asks the Messages API (the conversation so far included)."""

    model: str
    system: str
    tools: list[ToolParam]
    tool_choice: ToolChoiceParam
    messages: list[MessageParam]


class AnthropicProvider(Provider):
    """Claude through the official ``anthropic`` SDK (``AsyncAnthropic``, streaming)."""

    name = "anthropic"

    def __init__(
        self,
        options: AIOptions,
        *,
        retry_base_delay_s: float = 1.0,
        retry_max_delay_s: float = 20.0,
        max_tool_rounds: int = 25,
        timeout_s: float = 120.0,
        prompt_caching: bool = True,
    ) -> None:
        if not options.api_key:
            raise ConfigurationError(
                "provider anthropic needs FEATURE_PLANNER_ANTHROPIC_API_KEY (or ANTHROPIC_API_KEY)"
            )
        self._options = options
        self._retry_base_delay_s = retry_base_delay_s
        self._retry_max_delay_s = retry_max_delay_s
        self._max_tool_rounds = max(1, max_tool_rounds)
        self._prompt_caching = prompt_caching
        # The SDK's own retries are off: a retry after text has reached the sink would
        # repeat that text, so this provider decides when a retry is safe.
        self._client = anthropic.AsyncAnthropic(
            api_key=options.api_key,
            base_url=options.base_url,
            max_retries=0,
            timeout=anthropic.Timeout(timeout_s, connect=10.0),
        )

    @property
    def models(self) -> Sequence[str]:
        return self._options.allowed_models

    async def aclose(self) -> None:
        await self._client.close()

    async def run(self, request: PlanRequest, sink: RunSink) -> PlanResult:
        run = Conversation(request, sink, self._options)
        tool_params: list[ToolParam] = [
            {
                "name": definition.name,
                "description": definition.description,
                "input_schema": cast(Any, definition.input_schema),
            }
            for definition in run.tool_definitions()
        ]
        system = system_prompt(request.agent)
        first = await run.first_message(request)
        messages: list[MessageParam] = [{"role": "user", "content": first}]
        force_submit = False
        reported_model = run.model

        for round_index in range(self._max_tool_rounds):
            last_round = round_index == self._max_tool_rounds - 1
            tool_choice: ToolChoiceParam = (
                {"type": "any"} if force_submit or last_round else {"type": "auto"}
            )
            message = await self._complete(
                _Call(run.model, system, tool_params, tool_choice, messages), run
            )
            reported_model = message.model or reported_model
            force_submit = False
            if message.stop_reason == "refusal":
                raise ProviderError(
                    "Claude declined this request (refusal); rephrase the page, component or "
                    "context and try again"
                )
            content = _assistant_content(message)
            tool_uses = [block for block in message.content if isinstance(block, ToolUseBlock)]
            if not content:
                # Nothing to add to the conversation: ask again, for the result this time.
                if run.ended_without_finish("the model returned an empty message"):
                    return run.result(None, reported_model)
                force_submit = True
                continue
            messages.append({"role": "assistant", "content": content})
            if not tool_uses:
                if run.ended_without_finish(f"the turn ended without calling {FINISH_TOOL_NAME}"):
                    return run.result(None, reported_model)
                messages.append({"role": "user", "content": SUBMIT_NOW})
                force_submit = True
                continue

            truncated_id = (
                tool_uses[-1].id
                if message.stop_reason == "max_tokens" and message.content[-1] is tool_uses[-1]
                else None
            )
            results: list[ContentBlockParam] = []
            for block in tool_uses:
                if block.id == truncated_id:
                    results.append(_tool_result(block.id, TRUNCATED_CALL, is_error=True))
                    if block.name in (SUBMIT_TOOL_NAME, FINISH_TOOL_NAME):
                        run.retries.charge("a tool call was cut off at the output token limit")
                elif block.name == FINISH_TOOL_NAME:
                    ended = run.submissions.finish(block.input)
                    if isinstance(ended, str):
                        return run.result(ended, reported_model)
                    results.append(_tool_result(block.id, ended.text, is_error=True))
                else:
                    outcome = await run.use_tool(block.name, block.input)
                    results.append(_tool_result(block.id, outcome.text, is_error=outcome.is_error))
            messages.append({"role": "user", "content": results})
            run.narrative.start_block()

        if run.submissions.sent:  # out of rounds, with suggestions shown: end with them
            return run.result(None, reported_model)
        raise ProviderError(
            f"The agent did not submit suggestions within {self._max_tool_rounds} rounds of "
            "tool use; try a more specific page or component"
        )

    # -- one API call -----------------------------------------------------------------------

    async def _complete(self, call: _Call, run: Conversation) -> Message:
        """One streamed assistant message, retried while retrying repeats no text."""
        retries = CallRetries(
            self._options.provider_retries, self._retry_base_delay_s, self._retry_max_delay_s
        )
        narrative = run.narrative
        while True:
            sent_before = narrative.length
            narrative.start_block()
            try:
                return await self._stream_message(call, run)
            except (
                anthropic.AnthropicError,
                httpx2.HTTPError,
                _IncompleteStreamError,
                ValueError,  # an event that is not the JSON it should be
            ) as exc:
                _log_failure(exc, retries.attempt)
                failure = self._classify(exc, call.model)
            # Outside the except clause: the SDK's error (its request names the key) is not
            # chained to the ProviderError that may end the run here.
            await retries.after(failure, streamed=narrative.length > sent_before)

    async def _stream_message(self, call: _Call, run: Conversation) -> Message:
        # Leaving this context, by any exception and by cancellation too, closes the
        # response: the upstream request ends at once.
        async with self._client.messages.stream(
            model=call.model,
            max_tokens=self._options.max_output_tokens,
            system=call.system,
            messages=call.messages,
            tools=call.tools,
            tool_choice=call.tool_choice,
            # Marks the last cacheable block: each round reads the conversation so far from
            # the cache instead of paying for all of it again.
            cache_control={"type": "ephemeral"} if self._prompt_caching else anthropic.omit,
        ) as stream:
            async for event in stream:
                # Usage is counted as it is reported, so that the ceiling stops the run at
                # the first report past it (``BudgetExceededError`` leaves this context).
                if event.type == "message_start":
                    run.usage.start_response()
                    usage = event.message.usage
                    run.usage.report(
                        input_tokens=usage.input_tokens,
                        output_tokens=usage.output_tokens,
                        cache_read=usage.cache_read_input_tokens,
                        cache_creation=usage.cache_creation_input_tokens,
                    )
                elif event.type == "message_delta":
                    run.usage.report(
                        input_tokens=event.usage.input_tokens,
                        output_tokens=event.usage.output_tokens,
                        cache_read=event.usage.cache_read_input_tokens,
                        cache_creation=event.usage.cache_creation_input_tokens,
                    )
                elif event.type == "content_block_start":
                    run.narrative.start_block()
                    if event.content_block.type == "tool_use":
                        run.tool_started(event.content_block.name)
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    run.narrative.text(event.delta.text)
            message = await stream.get_final_message()
        if message.stop_reason is None:
            raise _IncompleteStreamError("the stream ended before the message was complete")
        return message

    def _classify(self, exc: BaseException, model: str) -> CallFailure:
        """The user's view of a failure; never the key, never a stack trace."""
        if isinstance(exc, anthropic.APIStatusError):
            failure = _classify_status(exc, model)
            return replace(failure, retry_after_s=retry_after_seconds(exc.response.headers))
        if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
            return CallFailure("The Anthropic API did not answer in time; try again", True)
        if isinstance(
            exc, anthropic.APIConnectionError | httpx2.TransportError | _IncompleteStreamError
        ):
            host = urlsplit(str(self._client.base_url)).netloc or "the configured base URL"
            return CallFailure(
                f"The connection to the Anthropic API ({host}) was lost or refused; check the "
                "network, or FEATURE_PLANNER_ANTHROPIC_BASE_URL if you set it",
                True,
            )
        return CallFailure(
            "The Anthropic API sent a response this service could not read; try again", False
        )


def _classify_status(exc: anthropic.APIStatusError, model: str) -> CallFailure:
    # A failure inside a stream arrives as an ``error`` event of a 200 response: its
    # ``error.type`` says what it was.
    kind: str = exc.type or ""  # not only the SDK's known types: the API may add more
    status = exc.status_code
    detail = _clip(exc.api_message or "")
    if status in (401, 403) or kind in ("authentication_error", "permission_error"):
        return CallFailure(KEY_REFUSED, False)
    if status == 429 or kind == "rate_limit_error":
        return CallFailure(
            "The Anthropic API is rate-limiting this API key (429); try again later", True
        )
    if status == 529 or kind == "overloaded_error":
        return CallFailure(
            "The Anthropic API is overloaded (529); try again in a few minutes", True
        )
    if status >= 500 or kind in ("api_error", "timeout_error"):
        code = status if status >= 500 else kind
        return CallFailure(
            f"The Anthropic API failed with a server error ({code}); try again", True
        )
    if status == 404 or kind == "not_found_error":
        return CallFailure(
            f"The Anthropic API does not offer the model '{model}' (404: {detail}); choose "
            "another model (FEATURE_PLANNER_MODEL, or customModel)",
            False,
        )
    if status == 400 or kind == "invalid_request_error":
        return CallFailure(
            f"The Anthropic API refused the request for model '{model}' (400: {detail})", False
        )
    if status == 402 or kind == "billing_error":
        return CallFailure("The Anthropic account cannot be billed (402); check its credits", False)
    if status == 413 or kind == "request_too_large":
        return CallFailure("The request was too large for the Anthropic API (413)", False)
    return CallFailure(f"The Anthropic API refused the request ({status}: {detail})", False)


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _log_failure(exc: BaseException, attempt: int) -> None:
    # Type, status and request id only: an SDK error's request carries the key in a header.
    status = getattr(exc, "status_code", None)
    request_id = getattr(exc, "request_id", None)
    logger.warning(
        "anthropic call failed (attempt %d): %s status=%s type=%s request_id=%s",
        attempt + 1,
        type(exc).__name__,
        status,
        getattr(exc, "type", None),
        request_id,
    )


def _assistant_content(message: Message) -> list[ContentBlockParam]:
    """The message as request content, for the next round. Blank text blocks are dropped
    (the API refuses them); thinking blocks go back as they came, as the API requires."""
    content: list[ContentBlockParam] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            if block.text.strip():
                content.append({"type": "text", "text": block.text})
        elif isinstance(block, ToolUseBlock):
            content.append(
                {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
            )
        elif isinstance(block, ThinkingBlock):
            content.append(
                {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
            )
        elif isinstance(block, RedactedThinkingBlock):
            content.append({"type": "redacted_thinking", "data": block.data})
    return content


def _tool_result(tool_use_id: str, text: str, *, is_error: bool) -> ToolResultBlockParam:
    result: ToolResultBlockParam = {
        "type": "tool_result",
        "tool_use_id": tool_use_id,
        "content": text or "(no output)",
    }
    if is_error:
        result["is_error"] = True
    return result
