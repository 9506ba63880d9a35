"""The structured result every AI provider must produce, and the prompts they share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feature_planner.agent.base import PlanRequest
from feature_planner.agent.planner import (
    InvalidPlanError,
    finish_schema,
    parse_finish,
    parse_suggestion,
    suggestion_schema,
    system_prompt,
    user_prompt,
)
from feature_planner.agent.profile import DEFAULT_AGENT, AgentProfile
from feature_planner.models import Effort, FeatureType, Impact, PriorityLevel

CITED = {"path": "src/app/page.tsx", "startLine": 3, "endLine": 4, "quote": "useFilters()"}
SUGGESTION = {
    "title": "Saved filters",
    "rationale": "Users rebuild the same filters every visit",
    "description": "Persist filters per user in src/app/collections/page.tsx",
    "implementationConsiderations": ["Store in the URL", "Add a test"],
    "evidence": [CITED],
    "effort": "medium",
    "impact": "high",
}


def test_a_valid_submission_becomes_a_suggestion_with_its_evidence_unchecked() -> None:
    suggestion = parse_suggestion(SUGGESTION).to_suggestion()
    assert suggestion.implementation_considerations == ["Store in the URL", "Add a test"]
    assert (suggestion.effort, suggestion.impact) == (Effort.MEDIUM, Impact.HIGH)
    (item,) = suggestion.evidence
    assert (item.path, item.start_line, item.end_line, item.quote) == (
        "src/app/page.tsx",
        3,
        4,
        "useFilters()",
    )
    assert suggestion.to_wire()["evidence"] == [CITED]


def test_a_submission_given_as_json_text_is_parsed_too() -> None:
    assert parse_suggestion(json.dumps(SUGGESTION)).title == "Saved filters"
    assert parse_finish('{"context": "Read page.tsx"}').context == "Read page.tsx"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({**SUGGESTION, "evidence": []}, "evidence"),
        ({key: value for key, value in SUGGESTION.items() if key != "evidence"}, "evidence"),
        ({**SUGGESTION, "evidence": [CITED] * 6}, "evidence"),
        ({**SUGGESTION, "evidence": [{**CITED, "startLine": 0}]}, "startLine"),
        ({**SUGGESTION, "evidence": [{**CITED, "endLine": 2}]}, "endLine"),
        ({**SUGGESTION, "effort": "huge"}, "effort"),
        ({**SUGGESTION, "impact": None}, "impact"),
        ({**SUGGESTION, "title": ""}, "title"),
        ({**SUGGESTION, "extra": 1}, "extra"),
        ("{not json", "input"),
    ],
)
def test_an_invalid_submission_explains_what_to_fix(raw: object, expected: str) -> None:
    with pytest.raises(InvalidPlanError) as caught:
        parse_suggestion(raw)
    assert expected in caught.value.feedback
    assert "submit_suggestion again" in caught.value.feedback


def test_an_invalid_finish_explains_what_to_fix() -> None:
    with pytest.raises(InvalidPlanError) as caught:
        parse_finish({"context": ""})
    assert "context" in caught.value.feedback and "finish again" in caught.value.feedback


def test_the_schemas_are_self_contained_for_tool_apis() -> None:
    schema = suggestion_schema()
    assert "$ref" not in json.dumps(schema) and "$defs" not in schema
    assert set(schema["required"]) == {
        "title",
        "rationale",
        "description",
        "implementationConsiderations",
        "evidence",
        "effort",
        "impact",
    }
    cited = schema["properties"]["evidence"]
    assert (cited["minItems"], cited["maxItems"]) == (1, 5)
    assert set(cited["items"]["required"]) == {"path", "startLine", "endLine", "quote"}
    assert schema["properties"]["effort"]["enum"] == ["small", "medium", "large"]
    assert finish_schema()["required"] == ["context"]


def test_prompts_carry_the_request_and_the_agent() -> None:
    request = PlanRequest(
        page_or_component="Checkout",
        feature_type=FeatureType.OPTIMIZATION,
        priority_level=PriorityLevel.CRITICAL,
        repository=Path("."),
        additional_context="Mobile users abandon at payment",
    )
    prompt = user_prompt(request)
    for part in ("Checkout", "optimization", "critical", "Mobile users abandon at payment"):
        assert part in prompt
    assert "CLAUDE.md" in system_prompt()
    custom = AgentProfile(
        name="Perf",
        role="Performance engineer",
        focus="Latency",
        system_prompt="Find slow paths.",
    )
    assert system_prompt(custom).startswith("Find slow paths.")
    assert "Performance engineer" in system_prompt(custom)
    assert DEFAULT_AGENT.tools == ["Glob", "Grep", "Read"]
    assert "submit_suggestion" in prompt and "finish" in prompt


def test_the_first_message_carries_the_page_map_when_there_is_one() -> None:
    request = PlanRequest(
        page_or_component="Checkout",
        feature_type=FeatureType.OPTIMIZATION,
        priority_level=PriorityLevel.LOW,
        repository=Path("."),
    )
    assert "map of the repository" not in user_prompt(request)
    mapped = user_prompt(request, "app/checkout/page.tsx (route)")
    assert "map of the repository" in mapped and "app/checkout/page.tsx (route)" in mapped
