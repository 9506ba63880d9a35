"""The ``claude-agent-sdk`` provider: the Claude Agent SDK runs the agent loop.

The SDK drives the Claude Code runtime (a binary its wheel bundles) as a subprocess that talks
to the Messages API. As in the original design: streamed partial messages, the allowed tools,
the repository as working directory. It goes through ``ClaudeSDKClient`` rather than
``query()`` (same options, same messages): ``query()``'s generator does not close the one it
wraps when closed, so a run that stops early would leave the runtime to the garbage
collector; the client's ``async with`` closes it on every path. This module checks the
installation and sets up the runtime; one run is ``claude_run.ClaudeRun``. What they add:

- **Our sandbox, not the runtime's tools.** The runtime's built-in tools are off
  (``tools=[]``); the agent's allowed subset of ``RepositoryTools`` (Glob, Grep, Read),
  ``submit_suggestion`` and ``finish`` are in-process SDK MCP tools, so every read of the
  repository goes through the same sandbox as with the other providers.
- **Nothing in the repository configures the runtime.** No filesystem settings (a project's
  ``.claude/settings.json`` can run hooks), only our MCP server, prompts delivered verbatim
  (no ``@path`` expansion of user text), no session transcripts written to disk.
- **Suggestions one by one.** A ``PreToolUse`` hook checks each ``submit_suggestion`` and
  ``finish`` input and refuses an invalid one with the parser's feedback, a structured retry
  (without it the SDK's MCP server would refuse it itself, uncounted); the handler hands
  each suggestion to the conversation, which has its evidence checked and sent, and answers
  what to fix; a turn that ends too early gets a follow-up prompt. A ``PostToolUse`` hook
  stops the runtime once ``finish`` is accepted (or the retries ran out), before another
  model turn.
- **Failures.** The runtime retries 429 / 5xx itself (``CLAUDE_CODE_MAX_RETRIES`` is
  ``provider_retries``); a refused key or model fails at once instead of after its retries,
  and so does a retry that would repeat text already streamed.
- **Prompt stops.** The SDK's transport gives the runtime 5 s to exit after its stdin
  closes; ours terminates it at once, so a cancelled run closes its API request at once.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ...config import ConfigurationError
from ..base import PlanRequest, PlanResult, Provider, RunSink
from .claude_run import ClaudeRun
from .conversation import Conversation, RepositoryToolset, ToolsFactory, sandboxed_tools
from .options import AIOptions

try:
    import claude_agent_sdk
except ImportError as exc:  # the optional dependency is not installed
    _SDK_IMPORT_ERROR: ImportError | None = exc
else:
    _SDK_IMPORT_ERROR = None

__all__ = ["ClaudeAgentSdkProvider", "RepositoryToolset"]

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "install the extra: pip install 'feature-planner[claude]' "
    "(the SDK's wheel bundles the Claude Code runtime)"
)
MAX_TURNS = 40  # a bound on model turns per run, against a model that never submits

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


# -- the provider -----------------------------------------------------------------------------


class ClaudeAgentSdkProvider(Provider):
    name = "claude-agent-sdk"
    install_hint = INSTALL_HINT

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
        self._tools = tools or sandboxed_tools
        self.max_turns = max_turns

    @property
    def models(self) -> Sequence[str]:
        return self.options.allowed_models

    async def run(self, request: PlanRequest, sink: RunSink) -> PlanResult:
        conversation = Conversation(request, sink, self.options, tools=self._tools)
        return await ClaudeRun(self, request, conversation).execute()

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
