"""Shared by the agent tests: a throwaway shop repository, the plan a model submits, the fake
APIs the providers talk to (one Messages API for both Anthropic providers, one Chat
Completions API), and playing a script on the Messages API to a provider's end."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from feature_planner.agent.base import PlanRequest, PlanResult, Provider
from feature_planner.agent.profile import AgentProfile
from feature_planner.errors import ProviderError
from feature_planner.models import FeatureType, PriorityLevel
from feature_planner.serving import BackgroundServer
from tests.agent.anthropic_server import FakeAnthropic, Step
from tests.agent.openai_server import FakeOpenAI, serve
from tests.agent.sinks import RecordingSink

ANTHROPIC_KEY = "sk-ant-test-0123456789-SECRET"
PAGE = "src/app/collections/page.tsx"
PAGE_MARKER = "export default async function CollectionsPage()"
CLAUDE_MD = "Use server components by default for data fetching."
ENV_SECRET = "hunter2-ENVSECRET-do-not-leak"  # in .env: never sent to a model

LIB = "src/lib/collections.ts"
# The page's lines, as the repo fixture writes them (1-based), for evidence that verifies.
GRID_LINE = 5
GRID_QUOTE = "return <CollectionGrid items={collections} />"
FETCH_QUOTE = "return fetch('/api/collections')"
CONTEXT = f"Read CLAUDE.md and {PAGE}; getCollections lives in {LIB}."


def evidence(path: str, start: int, end: int, quote: str) -> dict[str, Any]:
    return {"path": path, "startLine": start, "endLine": end, "quote": quote}


def suggestion_input(n: int, *items: dict[str, Any]) -> dict[str, Any]:
    """A ``submit_suggestion`` input; by default citing lines the repo fixture has."""
    cited = list(items) or [evidence(PAGE, GRID_LINE, GRID_LINE, GRID_QUOTE)]
    return {
        "title": f"Suggestion {n} for the collections page",
        "rationale": f"Rationale {n}, grounded in {PAGE}",
        "description": f"Description {n}: extend CollectionGrid in {PAGE}.",
        "implementationConsiderations": [f"Consideration {n}.1", f"Consideration {n}.2"],
        "evidence": cited,
        "effort": "small",
        "impact": "high",
    }


# Three suggestions a model submits one by one, each citing what the repository holds.
SUGGESTIONS: list[dict[str, Any]] = [
    suggestion_input(1),
    suggestion_input(2, evidence(LIB, 2, 2, FETCH_QUOTE)),
    suggestion_input(
        3, evidence(PAGE, 4, 5, "const collections = await getCollections()\n  return")
    ),
]
FINISH_INPUT: dict[str, Any] = {"context": CONTEXT}
INVALID_SUGGESTION: dict[str, Any] = {**SUGGESTIONS[0], "effort": "huge"}
# A user's custom agent that may only read, with its own prompt and temperature.
READER_AGENT = AgentProfile(
    name="Reader",
    role="Careful reader",
    focus="Accessibility",
    system_prompt="You only read files. Never search.",
    temperature=0.2,
    tools=["Read"],
)


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small storefront: docs, the collections page, its data source, a secret, and a
    project setting whose hook would leave ``HOOK_RAN`` behind if a runtime loaded it."""
    root = tmp_path / "shop"
    write(root / "CLAUDE.md", f"# CLAUDE.md\n\n- {CLAUDE_MD}\n")
    write(root / "README.md", "# Acme Shop\n\nA storefront built with Next.js.\n")
    write(
        root / PAGE,
        "import { getCollections } from '@/lib/collections'\n\n"
        f"{PAGE_MARKER} {{\n"
        "  const collections = await getCollections()\n"
        "  return <CollectionGrid items={collections} />\n}\n",
    )
    write(
        root / "src/lib/collections.ts",
        "export async function getCollections() {\n  return fetch('/api/collections')\n}\n",
    )
    write(root / "src/app/cart/page.tsx", "export default function CartPage() { return null }\n")
    write(root / ".env", f"DATABASE_PASSWORD={ENV_SECRET}\n")
    hook = f"touch {root / 'HOOK_RAN'}"
    settings = {"hooks": {"UserPromptSubmit": [{"hooks": [{"type": "command", "command": hook}]}]}}
    write(root / ".claude/settings.json", json.dumps(settings))
    return root


def plan_request(repo: Path, **overrides: Any) -> PlanRequest:
    fields: dict[str, Any] = {
        "page_or_component": "Collections page",
        "feature_type": FeatureType.ENHANCEMENT,
        "priority_level": PriorityLevel.HIGH,
        "repository": repo,
    }
    return PlanRequest(**(fields | overrides))


@pytest.fixture(scope="module")
def anthropic_api() -> Iterator[tuple[FakeAnthropic, str]]:
    """The fake Messages API on a free port, for a whole test module: (fake, base URL)."""
    fake = FakeAnthropic(api_key=ANTHROPIC_KEY)
    with BackgroundServer(fake.app) as server:
        yield fake, server.url


@pytest.fixture
def fake_anthropic(anthropic_api: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    """The module's fake, with no script and no recorded requests."""
    anthropic_api[0].play([])
    return anthropic_api[0]


@pytest.fixture(scope="module")
def openai_api() -> Iterator[tuple[FakeOpenAI, str]]:
    """The fake Chat Completions API on a free port, for a whole test module: (fake, base
    URL ending in /v1)."""
    fake = FakeOpenAI()
    with serve(fake) as url:
        yield fake, url


@pytest.fixture
def fake_openai(openai_api: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    """The module's fake, with no replies and no recorded requests."""
    openai_api[0].reset()
    return openai_api[0]


async def play(
    provider: Provider, fake: FakeAnthropic, script: Sequence[Step], request: PlanRequest
) -> tuple[PlanResult, RecordingSink]:
    """Play ``script`` on the fake Messages API and run ``provider`` to its result."""
    fake.play(script)
    sink = RecordingSink()
    return await provider.run(request, sink), sink


async def play_to_failure(
    provider: Provider, fake: FakeAnthropic, script: Sequence[Step], request: PlanRequest
) -> tuple[ProviderError, RecordingSink]:
    """Play ``script`` and run ``provider`` to a ``ProviderError``, which must show no key
    and no traceback."""
    fake.play(script)
    sink = RecordingSink()
    with pytest.raises(ProviderError) as caught:
        await provider.run(request, sink)
    message = str(caught.value)
    assert ANTHROPIC_KEY not in message and "Traceback" not in message
    return caught.value, sink
