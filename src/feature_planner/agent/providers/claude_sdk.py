"""The ``claude-agent-sdk`` provider: the Claude Agent SDK runs the agent loop.

The SDK drives the Claude Code runtime (a binary its wheel bundles) as a subprocess that talks
to the Messages API. As in the original design: streamed partial messages, the allowed tools,
the repository as working directory. It goes through ``ClaudeSDKClient`` rather than
``query()`` (same options, same messages): ``query()``'s generator does not close the one it
wraps when closed, so a run that stops early would leave the runtime to the garbage
collector; the client's ``async with`` closes it on every path. What this module adds:

- **Our sandbox, not the runtime's tools.** The runtime's built-in tools are off
  (``tools=[]``); the agent's allowed subset of ``RepositoryTools`` (Glob, Grep, Read) and
  ``submit_suggestions`` are in-process SDK MCP tools, so every read of the repository goes
  through the same sandbox as with the other providers.
- **Nothing in the repository configures the runtime.** No filesystem settings (a project's
  ``.claude/settings.json`` can run hooks), only our MCP server, prompts delivered verbatim
  (no ``@path`` expansion of user text), no session transcripts written to disk.
- **A structured end.** A ``PreToolUse`` hook validates each ``submit_suggestions`` input
  with ``parse_plan`` and refuses an invalid one with its feedback; a turn that ends without
  a submission gets a follow-up prompt. Both are retries, up to ``structured_retries``. A
  ``PostToolUse`` hook stops the runtime once a valid plan is in, before another model turn.
- **Failures.** The runtime retries 429 / 5xx itself (``CLAUDE_CODE_MAX_RETRIES`` is
  ``provider_retries``); a refused key or model fails at once instead of after its retries,
  and so does a retry that would repeat text already streamed.
- **Prompt stops.** The SDK's transport gives the runtime 5 s to exit after its stdin
  closes; ours terminates it at once, so a cancelled run closes its API request at once.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from ...errors import ConfigurationError, ProviderError
from ...models import TokenUsage
from ..base import PlanRequest, PlanResult, Provider, RunSink
from ..planner import (
    SUBMIT_TOOL_DESCRIPTION,
    SUBMIT_TOOL_NAME,
    InvalidPlanError,
    PlanOutput,
    parse_plan,
    plan_schema,
    system_prompt,
    user_prompt,
)
from ..profile import TOOL_NAMES, ToolName
from .options import AIOptions

try:
    import claude_agent_sdk
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

    # The one private import: the SDK's subprocess transport, subclassed below to stop the
    # runtime without the SDK's 5 s grace period.
    from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport
except ImportError as exc:  # the optional dependency is not installed
    _SDK_IMPORT_ERROR: ImportError | None = exc
else:
    _SDK_IMPORT_ERROR = None

__all__ = ["ClaudeAgentSdkProvider", "RepositoryToolset", "ToolDefinition", "ToolOutcome"]

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "install the extra: pip install 'feature-planner[claude]' "
    "(the SDK's wheel bundles the Claude Code runtime)"
)
SERVER_NAME = "repository"  # the model sees the tools as mcp__repository__Read, ...
MAX_TURNS = 40  # a bound on model turns per run, against a model that never submits
MAX_TOOL_RESULT_CHARS = 200_000  # above this the runtime would spill results to a file
_NOT_RETRYABLE = frozenset({400, 401, 403, 404})
_ACCEPTED = "Suggestions accepted. The task is complete: end your turn now without further text."
_FOLLOW_UP = (
    f"You ended your turn without calling the {SUBMIT_TOOL_NAME} tool. Call "
    f"{SUBMIT_TOOL_NAME} now with 3 to 5 suggestions and a short context."
)


def _mcp_name(tool: str) -> str:
    return f"mcp__{SERVER_NAME}__{tool}"


# -- the repository tools, as this module uses them ---------------------------------------


class ToolOutcome(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def is_error(self) -> bool: ...


class ToolDefinition(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def input_schema(self) -> Mapping[str, Any]: ...


class RepositoryToolset(Protocol):
    """What this provider needs of ``agent.tools.RepositoryTools``."""

    def definitions(self) -> Sequence[ToolDefinition]: ...

    def describe(self, name: str, args: Mapping[str, Any]) -> str: ...

    async def call(self, name: str, args: Mapping[str, Any]) -> ToolOutcome: ...


ToolsFactory = Callable[[Path, Sequence[ToolName]], RepositoryToolset]


def _sandboxed_tools(root: Path, allowed: Sequence[ToolName]) -> RepositoryToolset:
    from ..tools import RepositoryTools

    return cast(RepositoryToolset, RepositoryTools(root, allowed=allowed))


# -- the runtime ------------------------------------------------------------------------------


def _bundled_runtime() -> Path | None:
    name = "claude.exe" if sys.platform == "win32" else "claude"
    path = Path(claude_agent_sdk.__file__).parent / "_bundled" / name
    return path if path.is_file() else None


def _find_runtime(cli_path: str | Path | None) -> str:
    """The Claude Code executable that runs, checked to start; else ``ConfigurationError``."""
    if cli_path is not None:
        found: str | Path | None = cli_path
    else:
        found = _bundled_runtime() or shutil.which("claude")
    if found is None or not Path(found).is_file():
        where = f" at {found}" if found else ""
        raise ConfigurationError(
            f"provider claude-agent-sdk: the Claude Code runtime was not found{where}. "
            "Reinstall claude-agent-sdk from a wheel for this platform (the wheels bundle the "
            "runtime) or install Claude Code (`npm install -g @anthropic-ai/claude-code`) so "
            "that `claude` is on PATH"
        )
    try:
        probe = subprocess.run(
            [str(found), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigurationError(
            f"provider claude-agent-sdk: the Claude Code runtime at {found} does not start "
            f"({exc.__class__.__name__}: {exc}); reinstall claude-agent-sdk"
        ) from None
    if probe.returncode != 0:
        raise ConfigurationError(
            f"provider claude-agent-sdk: the Claude Code runtime at {found} does not start "
            f"(`--version` exited with {probe.returncode}); reinstall claude-agent-sdk"
        )
    logger.debug("Claude Code runtime %s: %s", found, probe.stdout.strip())
    return str(found)


if _SDK_IMPORT_ERROR is None:

    class _RuntimeTransport(SubprocessCLITransport):
        """The SDK's subprocess transport, ending the runtime at once when closed.

        The client closes it when the run ends, is cancelled or fails; the SDK's own close
        first waits up to 5 s for the runtime to exit on its own, with the API request (and
        its billing) still open.
        """

        async def close(self) -> None:
            process = self._process
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
            await super().close()


# -- the provider -----------------------------------------------------------------------------


class ClaudeAgentSdkProvider(Provider):
    name = "claude-agent-sdk"

    def __init__(
        self,
        options: AIOptions,
        *,
        cli_path: str | Path | None = None,
        tools: ToolsFactory | None = None,
        max_turns: int = MAX_TURNS,
    ) -> None:
        if _SDK_IMPORT_ERROR is not None:
            raise ConfigurationError(
                f"provider claude-agent-sdk needs the claude-agent-sdk package: {INSTALL_HINT}"
                f" ({_SDK_IMPORT_ERROR})"
            )
        self.options = options
        self.cli_path = _find_runtime(cli_path)
        self._tools = tools or _sandboxed_tools
        self.max_turns = max_turns

    @property
    def models(self) -> Sequence[str]:
        return self.options.allowed_models

    async def run(self, request: PlanRequest, sink: RunSink) -> PlanResult:
        agent_tools = request.agent.tools if request.agent is not None else list(TOOL_NAMES)
        run = _Run(
            provider=self,
            request=request,
            sink=sink,
            tools=self._tools(request.repository, agent_tools),
            model=request.model or self.options.model,
        )
        return await run.execute()

    def runtime_env(self) -> dict[str, str]:
        """What the runtime's environment adds to the service's own."""
        env = {
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_MAX_RETRIES": str(self.options.provider_retries),
            # per response, thinking included: the runtime lets the model think within it
            "CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(self.options.max_output_tokens),
        }
        if self.options.api_key:  # else the runtime's own login (`claude login`) is used
            env["ANTHROPIC_API_KEY"] = self.options.api_key
        if self.options.base_url:
            env["ANTHROPIC_BASE_URL"] = self.options.base_url
        return env

    def scrub(self, text: str) -> str:
        """``text`` without the API key, for messages shown to users or logged."""
        key = self.options.api_key
        return text.replace(key, "[redacted]") if key else text


@dataclass
class _Usage:
    """Token usage summed over the API responses, from their stream events."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int | None = None
    cache_creation: int | None = None
    _message_output: int = 0

    def start(self, usage: Mapping[str, Any]) -> None:
        self.output_tokens += self._message_output
        self._message_output = int(usage.get("output_tokens") or 0)
        self.input_tokens += int(usage.get("input_tokens") or 0)
        for name in ("cache_read", "cache_creation"):
            value = usage.get(f"{name}_input_tokens")
            if value is not None:
                setattr(self, name, (getattr(self, name) or 0) + int(value))

    def delta(self, usage: Mapping[str, Any]) -> None:
        # ``message_delta`` usage is cumulative for its message
        if usage.get("output_tokens") is not None:
            self._message_output = int(usage["output_tokens"])

    def total(self) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens + self._message_output,
            cache_read_input_tokens=self.cache_read,
            cache_creation_input_tokens=self.cache_creation,
        )


@dataclass
class _Run:
    """The state of one ``run``: what the tools saw, what the model submitted."""

    provider: ClaudeAgentSdkProvider
    request: PlanRequest
    sink: RunSink
    tools: RepositoryToolset
    model: str
    plan: PlanOutput | None = None
    retries: int = 0
    usage: _Usage = field(default_factory=_Usage)
    model_used: str | None = None
    last_problem: str = ""
    text_seen: bool = False
    new_round: bool = False
    answer_open: bool = False  # text of an unfinished API response has reached the sink
    follow_up: str | None = None
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    @property
    def _retries_allowed(self) -> int:
        return self.provider.options.structured_retries

    async def execute(self) -> PlanResult:
        options = self._sdk_options()
        transport = _RuntimeTransport(_no_input(), options)
        try:
            # ClaudeSDKClient rather than query(): query()'s generator does not close the one
            # it wraps when it is closed, so a run that stops early (an accepted submission,
            # a failure, a cancellation) would leave the runtime to garbage collection. The
            # client's ``async with`` closes it here and now, on every path.
            async with ClaudeSDKClient(options=options, transport=transport) as client:
                await client.query(user_prompt(self.request))
                messages = cast("AsyncGenerator[Message, None]", client.receive_messages())
                async with contextlib.aclosing(messages):
                    async for message in messages:
                        if self._handle(message):
                            break
                        if self.follow_up is not None:
                            await client.query(self.follow_up)
                            self.follow_up = None
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
        if self.plan is None:
            raise ProviderError(
                "The Claude Code runtime stopped before the agent submitted its suggestions; "
                "see the service log"
            )
        return PlanResult(
            suggestions=self.plan.to_suggestions(),
            context=self.plan.context,
            model=self.model_used or self.model,
            token_usage=self.usage.total(),
            retry_count=self.retries,
        )

    # -- what the runtime is given ----------------------------------------------------------

    def _sdk_options(self) -> ClaudeAgentOptions:
        mcp_tools = [*self._repository_tools(), self._submit_tool()]
        submit = _mcp_name(SUBMIT_TOOL_NAME)
        return ClaudeAgentOptions(
            cli_path=self.provider.cli_path,
            cwd=self.request.repository,
            model=self.model,
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
                "PreToolUse": [HookMatcher(matcher=submit, hooks=[self._before_submit])],
                "PostToolUse": [HookMatcher(matcher=submit, hooks=[self._after_submit])],
            },
            stderr=self._on_stderr,
        )

    def _repository_tools(self) -> list[SdkMcpTool[Any]]:
        result = []
        for definition in self.tools.definitions():
            result.append(
                SdkMcpTool(
                    name=definition.name,
                    description=definition.description,
                    input_schema=dict(definition.input_schema),
                    handler=self._repository_handler(definition.name),
                    annotations=ToolAnnotations(
                        readOnlyHint=True, maxResultSizeChars=MAX_TOOL_RESULT_CHARS
                    ),
                )
            )
        return result

    def _repository_handler(
        self, name: str
    ) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
        async def handle(args: dict[str, Any]) -> dict[str, Any]:
            try:
                self.sink.activity(name, self.tools.describe(name, args))
                outcome = await self.tools.call(name, args)
            except Exception:
                logger.exception("repository tool %s failed", name)
                return _tool_result(f"The {name} tool failed unexpectedly.", is_error=True)
            return _tool_result(outcome.text, is_error=outcome.is_error)

        return handle

    def _submit_tool(self) -> SdkMcpTool[Any]:
        async def submit(args: dict[str, Any]) -> dict[str, Any]:
            try:
                plan = parse_plan(args)
            except InvalidPlanError as exc:
                return _tool_result(exc.feedback, is_error=True)
            if self.plan is None:
                self.plan = plan
            return _tool_result(_ACCEPTED)

        return SdkMcpTool(
            name=SUBMIT_TOOL_NAME,
            description=SUBMIT_TOOL_DESCRIPTION,
            input_schema=plan_schema(),
            handler=submit,
        )

    async def _before_submit(
        self, data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        """Before each ``submit_suggestions`` call: refuse an invalid input with
        ``parse_plan``'s feedback, a retry; stop the runtime when the retries have run out."""
        try:
            parse_plan(cast("dict[str, Any]", data).get("tool_input"))
        except InvalidPlanError as exc:
            if self._count_retry(exc.feedback):
                return {
                    "hookSpecificOutput": {
                        "hookEventName": "PreToolUse",
                        "permissionDecision": "deny",
                        "permissionDecisionReason": exc.feedback,
                    }
                }
            return {"continue_": False, "stopReason": "No valid suggestions; retries ran out"}
        return {}

    async def _after_submit(
        self, data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        """After a ``submit_suggestions`` call: with a plan in, stop the runtime before it
        asks the model for another turn."""
        if self.plan is not None:
            return {"continue_": False, "stopReason": "Suggestions submitted"}
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
            return self.plan is not None  # the accepted submission's result: done
        elif isinstance(message, SystemMessage):
            self._on_system(message)
        elif isinstance(message, ResultMessage):
            return self._on_result(message)
        return False

    def _on_stream_event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                text = str(delta["text"])
                if self.new_round and self.text_seen:
                    text = "\n\n" + text  # the rounds of the narrative, apart
                self.new_round = False
                self.text_seen = True
                self.answer_open = True
                self.sink.text(text)
        elif kind == "message_start":
            self.new_round = True
            self.answer_open = False
            started = event.get("message") or {}
            self.usage.start(started.get("usage") or {})
            if started.get("model"):
                self.model_used = str(started["model"])
        elif kind == "message_delta":  # the response is complete
            self.answer_open = False
            self.usage.delta(event.get("usage") or {})

    def _count_retry(self, problem: str) -> bool:
        """Count one more invalid result; True while retries remain."""
        self.retries += 1
        self.last_problem = problem
        return self.retries <= self._retries_allowed

    def _out_of_retries(self) -> ProviderError:
        return ProviderError(
            f"The model did not produce valid suggestions in {self.retries} attempts; "
            f"last problem: {self.provider.scrub(self.last_problem)[:500]}"
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
                "The Claude API response broke off mid-answer; try again"
                + (f" (HTTP {status})" if status else "")
            )

    def _on_result(self, message: ResultMessage) -> bool:
        if self.plan is not None:
            return True
        if self.retries > self._retries_allowed:
            raise self._out_of_retries()
        if message.is_error or message.subtype != "success":
            if message.subtype == "error_max_turns":
                raise ProviderError(
                    f"The agent used its {message.num_turns} turns without submitting "
                    "suggestions; try a narrower page or component"
                )
            raise self._api_failure(
                "unknown", [], status=message.api_error_status, detail=message.result
            )
        # The turn ended in prose, without a submission: ask again, as a retry.
        if not self._count_retry(f"the turn ended without a {SUBMIT_TOOL_NAME} call"):
            raise self._out_of_retries()
        self.follow_up = _FOLLOW_UP
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
                f"The model {self.model!r} is not available with these credentials; "
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
                f"The Claude Code runtime is missing ({self.provider.cli_path}); {INSTALL_HINT}"
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
