"""The structured result every AI provider must produce, and the prompts they share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feature_planner.agent.base import PlanRequest
from feature_planner.agent.planner import (
    InvalidPlanError,
    parse_plan,
    plan_schema,
    system_prompt,
    user_prompt,
)
from feature_planner.agent.profile import DEFAULT_AGENT, AgentProfile
from feature_planner.models import FeatureType, PriorityLevel

SUGGESTION = {
    "title": "Saved filters",
    "rationale": "Users rebuild the same filters every visit",
    "description": "Persist filters per user in src/app/collections/page.tsx",
    "implementationConsiderations": ["Store in the URL", "Add a test"],
}


def test_a_valid_plan_becomes_suggestions() -> None:
    plan = parse_plan({"suggestions": [SUGGESTION] * 3, "context": "Read page.tsx"})
    suggestions = plan.to_suggestions()
    assert len(suggestions) == 3
    assert suggestions[0].implementation_considerations == ["Store in the URL", "Add a test"]
    assert suggestions[0].to_wire()["implementationConsiderations"] == [
        "Store in the URL",
        "Add a test",
    ]


def test_a_plan_given_as_json_text_is_parsed_too() -> None:
    raw = json.dumps({"suggestions": [SUGGESTION] * 4, "context": "c"})
    assert len(parse_plan(raw).suggestions) == 4


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"suggestions": [SUGGESTION] * 2, "context": "c"}, "suggestions"),
        ({"suggestions": [SUGGESTION] * 6, "context": "c"}, "suggestions"),
        ({"suggestions": [SUGGESTION] * 3}, "context"),
        ({"suggestions": [{**SUGGESTION, "title": ""}] * 3, "context": "c"}, "title"),
        ({"suggestions": [SUGGESTION] * 3, "context": "c", "extra": 1}, "extra"),
        ("{not json", "input"),
    ],
)
def test_an_invalid_plan_explains_what_to_fix(raw: object, expected: str) -> None:
    with pytest.raises(InvalidPlanError) as caught:
        parse_plan(raw)
    assert expected in caught.value.feedback
    assert "submit_suggestions again" in caught.value.feedback


def test_the_schema_is_self_contained_for_tool_apis() -> None:
    schema = plan_schema()
    assert "$ref" not in json.dumps(schema) and "$defs" not in schema
    item = schema["properties"]["suggestions"]["items"]
    assert set(item["required"]) == {
        "title",
        "rationale",
        "description",
        "implementationConsiderations",
    }
    assert schema["properties"]["suggestions"]["minItems"] == 3
    assert schema["properties"]["suggestions"]["maxItems"] == 5


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
