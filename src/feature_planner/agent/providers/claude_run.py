"""One run of the ``claude-agent-sdk`` provider: what the Claude Code runtime is given, and
what becomes of what it says.

Given: the agent's repository tools, ``submit_suggestion`` and ``finish`` as in-process MCP
tools (the runtime's own tools are off; the conversation checks and sends each suggestion),
hooks that refuse an invalid input to those two and stop the runtime once ``finish`` is
accepted or the run has failed, no settings from the repository, no transcripts. Said:
stream events become the narrative and the usage, the suggestions sent and ``finish``'s
context the result, failures ``ProviderError``s without the key. Runs only with the
optional ``claude-agent-sdk`` installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

# Without the optional extra this module still imports (as every module does); the provider
# checks for the SDK before any run and names the extra to install.
try:
    from claude_agent_sdk import (
        AssistantMessage,
        ClaudeAgentOptions,
        ClaudeSDKClient,
        ClaudeSDKError,
        CLIConnectionError,
        CLINotFoundError,
        HookContext,
        HookInput,
        HookJSONOutput,
        HookMatcher,
        Message,
        ProcessError,
        ResultMessage,
        SdkMcpTool,
        StreamEvent,
        SystemMessage,
        ToolAnnotations,
        UserMessage,
        create_sdk_mcp_server,
    )

    # The one private import: the SDK's subprocess transport, subclassed below to stop
    # the runtime without the SDK's 5 s grace period.
    from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport
except ImportError:  # claude_sdk reports it before any run
    pass

from ...errors import ProviderError
from ..base import PlanRequest, PlanResult
from ..planner import (
    FINISH_TOOL_NAME,
    SUBMIT_TOOL_NAME,
    InvalidPlanError,
    parse_finish,
    parse_suggestion,
    system_prompt,
)
from .backoff import broke_off
from .conversation import SUBMIT_NOW, Conversation

if TYPE_CHECKING:
    from .claude_sdk import ClaudeAgentSdkProvider

__all__ = ["ClaudeRun"]

logger = logging.getLogger(__name__)

SERVER_NAME = "repository"  # the model sees the tools as mcp__repository__Read, ...
MAX_TOOL_RESULT_CHARS = 200_000  # above this the runtime would spill results to a file
_NOT_RETRYABLE = frozenset({400, 401, 403, 404})
RESULT_WAIT_S = 2.0  # for the runtime's ResultMessage once the run is done (it takes ~50 ms)
_FINISHED = "The run is complete: end your turn now without further text."


def _mcp_name(tool: str) -> str:
    return f"mcp__{SERVER_NAME}__{tool}"


def _ours(mcp_name: str) -> str:
    """The tool's own name, from the name the runtime gives it."""
    return mcp_name.removeprefix(f"mcp__{SERVER_NAME}__")


@functools.cache
def _runtime_transport() -> type[SubprocessCLITransport]:
    """The SDK's subprocess transport, ending the runtime at once when closed (made on first
    use, for its base class exists only with the SDK installed).

    The client closes it when the run ends, is cancelled or fails; the SDK's own close
    first waits up to 5 s for the runtime to exit on its own, with the API request (and
    its billing) still open.
    """

    class RuntimeTransport(SubprocessCLITransport):
        async def close(self) -> None:
            process = self._process
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
            await super().close()

    return RuntimeTransport


@dataclass
class ClaudeRun:
    """The state of one ``run``: what the tools saw, how the model ended it."""

    provider: ClaudeAgentSdkProvider
    request: PlanRequest
    conversation: Conversation
    context: str | None = None  # ``finish``'s, once accepted
    ended: bool = False  # the run ends now: finished, or ended with what was sent
    failure: ProviderError | None = None  # raised in a tool, re-raised when the runtime stops
    model_used: str | None = None
    answer_open: bool = False  # text of an unfinished API response has reached the sink
    follow_up: str | None = None
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    async def execute(self) -> PlanResult:
        options = self._sdk_options()
        transport = _runtime_transport()(_no_input(), options)
        try:
            # ClaudeSDKClient rather than query(): query()'s generator does not close the one
            # it wraps when it is closed, so a run that stops early (an accepted submission,
            # a failure, a cancellation) would leave the runtime to garbage collection. The
            # client's ``async with`` closes it here and now, on every path.
            async with ClaudeSDKClient(options=options, transport=transport) as client:
                await client.query(await self.conversation.first_message(self.request))
                messages = cast("AsyncGenerator[Message, None]", client.receive_messages())
                async with contextlib.aclosing(messages):
                    await self._read(client, messages)
        except ProviderError:
            raise
        except ClaudeSDKError as exc:
            raise self._runtime_failure(exc) from None
        except Exception as exc:
            logger.exception("claude-agent-sdk run failed")
            raise ProviderError(
                f"The Claude Code runtime failed unexpectedly ({exc.__class__.__name__}); "
                "see the service log"
            ) from None
        if self.failure is not None:
            raise self.failure
        if not self.ended:
            raise ProviderError(
                "The Claude Code runtime stopped before the agent submitted its suggestions; "
                "see the service log"
            )
        return self.conversation.result(self.context, self.model_used)

    async def _read(self, client: ClaudeSDKClient, messages: AsyncIterator[Message]) -> None:
        """Act on what the runtime says until the run is done. Once ``finish`` is accepted,
        the runtime's ResultMessage (it reports the cost) is awaited a moment at most."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as deadline:
                async for message in messages:
                    if self._handle(message):
                        return
                    if self.ended and deadline.when() is None:
                        deadline.reschedule(loop.time() + RESULT_WAIT_S)
                    if self.follow_up is not None:
                        await client.query(self.follow_up)
                        self.follow_up = None
        except TimeoutError:
            if not self.ended:
                raise
            logger.info("the runtime sent no result after finish; the run ends without a cost")

    # -- what the runtime is given ----------------------------------------------------------

    def _sdk_options(self) -> ClaudeAgentOptions:
        mcp_tools = self._mcp_tools()
        ours = f"{_mcp_name(SUBMIT_TOOL_NAME)}|{_mcp_name(FINISH_TOOL_NAME)}"
        return ClaudeAgentOptions(
            cli_path=self.provider.cli_path,
            cwd=self.request.repository,
            model=self.conversation.model,
            system_prompt=system_prompt(self.request.agent),
            tools=[],  # none of the runtime's own tools: file access goes through our sandbox
            mcp_servers={
                SERVER_NAME: create_sdk_mcp_server(SERVER_NAME, tools=mcp_tools),
            },
            strict_mcp_config=True,
            allowed_tools=[_mcp_name(tool.name) for tool in mcp_tools],
            permission_mode="dontAsk",  # anything not allowed above is denied
            setting_sources=[],
            verbatim_prompts=True,
            include_partial_messages=True,
            max_turns=self.provider.max_turns,
            env=self.provider.runtime_env(),
            extra_args={"no-session-persistence": None},
            hooks={
                "PreToolUse": [HookMatcher(matcher=ours, hooks=[self._before_ours])],
                "PostToolUse": [HookMatcher(matcher=ours, hooks=[self._after_ours])],
            },
            stderr=self._on_stderr,
        )

    def _mcp_tools(self) -> list[SdkMcpTool[Any]]:
        """The repository tools, then ``submit_suggestion`` and ``finish``, as in-process MCP
        tools."""
        return [
            SdkMcpTool(
                name=definition.name,
                description=definition.description,
                input_schema=definition.input_schema,
                handler=self._handler(definition.name),
                annotations=None
                if definition.name in (SUBMIT_TOOL_NAME, FINISH_TOOL_NAME)
                else ToolAnnotations(readOnlyHint=True, maxResultSizeChars=MAX_TOOL_RESULT_CHARS),
            )
            for definition in self.conversation.tool_definitions()
        ]

    def _handler(self, name: str) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
        async def use_tool(args: dict[str, Any]) -> dict[str, Any]:
            if self.ended or self.failure is not None:
                return _tool_result(_FINISHED, is_error=True)
            try:
                outcome = await self.conversation.use_tool(name, args)
            except ProviderError as exc:  # the retries ran out: the runtime is stopped
                self.failure = exc
                return _tool_result(str(exc), is_error=False)  # see _after_ours
            return _tool_result(outcome.text, is_error=outcome.is_error)

        async def finish(args: dict[str, Any]) -> dict[str, Any]:
            if self.ended or self.failure is not None:
                return _tool_result(_FINISHED)
            try:
                ended = self.conversation.submissions.finish(args)
            except ProviderError as exc:
                self.failure = exc
                return _tool_result(str(exc), is_error=False)  # see _after_ours
            if isinstance(ended, str):
                self.context, self.ended = ended, True
                return _tool_result(_FINISHED)
            return _tool_result(ended.text, is_error=True)

        return finish if name == FINISH_TOOL_NAME else use_tool

    async def _before_ours(
        self, data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        """Before a ``submit_suggestion`` or ``finish`` call: refuse an invalid input with
        the parser's feedback, a retry; stop the runtime once the retries have run out.

        Here rather than in the handler: the SDK's MCP server checks each input against the
        tool's JSON schema before calling the handler, and answers a failure itself
        ("Input validation error: ..."), uncounted; the runtime does not check inputs.
        """
        if self.ended or self.failure is not None:
            return {}
        raw = cast("dict[str, Any]", data)
        parse = (
            parse_finish
            if _ours(str(raw.get("tool_name"))) == FINISH_TOOL_NAME
            else parse_suggestion
        )
        try:
            parse(raw.get("tool_input"))
        except InvalidPlanError as exc:
            if self.conversation.retries.count(self.provider.scrub(exc.feedback)):
                return {
                    "hookSpecificOutput": {
                        "hookEventName": "PreToolUse",
                        "permissionDecision": "deny",
                        "permissionDecisionReason": exc.feedback,
                    }
                }
            self.failure = self.conversation.retries.exhausted()
            return {"continue_": False, "stopReason": "No valid input; the retries ran out"}
        return {}

    async def _after_ours(
        self, data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        """After a ``submit_suggestion`` or ``finish`` call: once the run has ended (or
        failed), stop the runtime before it asks the model for another turn.

        The runtime runs this hook only for results that are not errors (an error result
        goes to ``PostToolUseFailure``, whose ``continue: false`` it does not honour): so the
        handlers answer the call that ends the run as a plain result, which no model reads.
        """
        if self.ended or self.failure is not None:
            return {"continue_": False, "stopReason": "The run is complete"}
        return {}

    def _on_stderr(self, line: str) -> None:
        line = self.provider.scrub(line.rstrip())
        self.stderr.append(line)
        logger.debug("claude code: %s", line)

    # -- what the runtime says --------------------------------------------------------------

    def _handle(self, message: Message) -> bool:
        """Act on one message; True when the run is done."""
        if isinstance(message, StreamEvent):
            if message.parent_tool_use_id is None:
                self._on_stream_event(message.event)
        elif isinstance(message, AssistantMessage):
            if message.error is not None:
                raise self._api_failure(str(message.error), message.content)
        elif isinstance(message, UserMessage):
            # finish's result: the run is done; its ResultMessage (the cost) follows at once
            return self.failure is not None
        elif isinstance(message, SystemMessage):
            self._on_system(message)
        elif isinstance(message, ResultMessage):
            return self._on_result(message)
        return False

    def _on_stream_event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                self.conversation.tool_started(_ours(str(block.get("name") or "")))
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                self.answer_open = True
                self.conversation.narrative.text(str(delta["text"]))
        elif kind == "message_start":
            self.conversation.narrative.start_block()  # the rounds of the narrative, apart
            self.answer_open = False
            started = event.get("message") or {}
            if started.get("model"):
                self.model_used = str(started["model"])
            self.conversation.usage.start_response()
            self._report_usage(started.get("usage") or {})
        elif kind == "message_delta":  # the response is complete
            self.answer_open = False
            self._report_usage(event.get("usage") or {})

    def _report_usage(self, usage: Mapping[str, Any]) -> None:
        """A stream event's usage: the response's counts so far. Past the run's ceiling this
        raises, which leaves the client's context and so stops the runtime and its request."""
        self.conversation.usage.report(
            input_tokens=_optional_int(usage.get("input_tokens")),
            output_tokens=_optional_int(usage.get("output_tokens")),
            cache_read=_optional_int(usage.get("cache_read_input_tokens")),
            cache_creation=_optional_int(usage.get("cache_creation_input_tokens")),
        )

    def _on_system(self, message: SystemMessage) -> None:
        if message.subtype != "api_retry":
            return
        status = message.data.get("error_status")
        logger.info(
            "Claude API call failed (%s %s); the runtime retries (attempt %s of %s)",
            status,
            message.data.get("error"),
            message.data.get("attempt"),
            message.data.get("max_retries"),
        )
        # The runtime retries even a refused key; those never get better by waiting.
        if status in _NOT_RETRYABLE or message.data.get("error") == "authentication_failed":
            raise self._api_failure(str(message.data.get("error") or status), [], status=status)
        # A retry after text has reached the clients would repeat that text.
        if self.answer_open:
            raise ProviderError(
                broke_off(
                    "the Claude API call failed"
                    + (f" (HTTP {status})" if status else "")
                    + "; try again"
                )
            )

    def _on_result(self, message: ResultMessage) -> bool:
        self.conversation.usage.report_cost(message.total_cost_usd)
        if self.ended or self.failure is not None:
            return True
        if message.is_error or message.subtype != "success":
            if message.subtype == "error_max_turns":
                if self.conversation.submissions.sent:  # end with what was shown
                    self.ended = True
                    return True
                raise ProviderError(
                    f"The agent used its {message.num_turns} turns without submitting "
                    "suggestions; try a narrower page or component"
                )
            raise self._api_failure(
                "unknown", [], status=message.api_error_status, detail=message.result
            )
        # The turn ended in prose, without finish: end with what was sent, or ask again.
        if self.conversation.ended_without_finish(
            f"the turn ended without a {FINISH_TOOL_NAME} call"
        ):
            self.ended = True
            return True
        self.follow_up = SUBMIT_NOW
        return False

    # -- failures ---------------------------------------------------------------------------

    def _api_failure(
        self,
        kind: str,
        content: Sequence[object],
        *,
        status: object = None,
        detail: str | None = None,
    ) -> ProviderError:
        if detail is None:
            detail = " ".join(getattr(block, "text", "") for block in content).strip()
        detail = self.provider.scrub(detail or "")[:300]
        if kind == "authentication_failed" or status == 401:
            return ProviderError(
                "The Claude API refused the credentials: check FEATURE_PLANNER_ANTHROPIC_API_KEY"
                " (or ANTHROPIC_API_KEY), or the runtime's login when no key is configured"
            )
        if status == 403:
            return ProviderError(
                "The Claude API key is not allowed to do this (403): check the key's "
                "workspace and permissions"
            )
        if kind == "model_not_found" or status == 404:
            return ProviderError(
                f"The model {self.conversation.model!r} is not available with these credentials; "
                "choose another (FEATURE_PLANNER_MODEL, or customModel)"
            )
        if kind == "billing_error":
            return ProviderError(
                "The Claude API account cannot be billed: check its credit balance or plan"
            )
        if kind == "rate_limit" or status == 429:
            return ProviderError(
                "The Claude API is rate-limiting this key and the retries ran out; "
                "try again in a minute"
            )
        if kind == "server_error" or (isinstance(status, int) and status >= 500):
            return ProviderError(
                "The Claude API is overloaded or failing and the retries ran out; try again shortly"
            )
        return ProviderError(f"The Claude API call failed: {detail or kind}")

    def _runtime_failure(self, exc: ClaudeSDKError) -> ProviderError:
        logger.warning(
            "Claude Code runtime failure: %s; stderr: %s",
            self.provider.scrub(str(exc)),
            " | ".join(self.stderr),
        )
        if isinstance(exc, CLINotFoundError):
            return ProviderError(
                f"The Claude Code runtime is missing ({self.provider.cli_path}); "
                f"{self.provider.install_hint}"
            )
        if isinstance(exc, CLIConnectionError) and not self.request.repository.is_dir():
            return ProviderError(f"The repository {self.request.repository} does not exist")
        code = exc.exit_code if isinstance(exc, ProcessError) else None
        return ProviderError(
            "The Claude Code runtime stopped unexpectedly"
            + (f" (exit code {code})" if code is not None else "")
            + "; see the service log"
        )


async def _no_input() -> AsyncIterator[dict[str, Any]]:
    """The transport's prompt stream: empty, prompts go through ``ClaudeSDKClient.query``."""
    return
    yield {}  # an async generator that yields nothing


def _tool_result(text: str, *, is_error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "is_error": is_error}


def _optional_int(value: object) -> int | None:
    return None if value is None else int(cast(Any, value))
