"""The JSON schema of a sanitized text field matches exactly the strings it accepts.

Fields marked ``Sanitized`` are trimmed and stripped of control characters before their
length is checked, so their schema states the limits as a ``pattern`` over the raw string;
the fuzzer trusts that pattern both ways (valid data accepted, invalid data refused).
"""

from __future__ import annotations

import math
import re
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from feature_planner.agent.profile import AgentProfile
from feature_planner.models import SuggestionRequest, sanitize_text, sanitized_length_pattern

# What sanitizing treats specially: controls (C0, C1, DEL), tab, newline, Unicode spaces.
SPECIAL = " \t\n\r\x00\x0b\x1c\x1f\x7f\x85\x9f\xa0\u1680\u2000\u200a\u2028\u202f\u3000\ufeff"
TEXT = st.text(
    st.sampled_from(SPECIAL) | st.sampled_from("ab") | st.characters(codec="utf-8"), max_size=12
)


def _matches(pattern: str, text: str) -> bool:
    """As JSON Schema reads a pattern: in Python, and in the Rust engine Schemathesis uses."""
    in_python = re.search(pattern, text) is not None
    in_rust = jsonschema_rs.validator_for({"type": "string", "pattern": pattern}).is_valid(text)
    assert in_python == in_rust, (pattern, text)
    return in_python


@settings(max_examples=500, database=None)
@given(
    text=TEXT,
    limits=st.sampled_from([(1, 1), (1, 3), (0, 3), (2, 5), (1, None), (0, 0)]),
)
def test_the_pattern_matches_the_strings_whose_sanitized_text_fits(
    text: str, limits: tuple[int, int | None]
) -> None:
    low, high = limits
    fits = low <= len(sanitize_text(text)) <= (math.inf if high is None else high)
    assert _matches(sanitized_length_pattern(low, high), text) == fits


def _field_schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)["properties"][name]
    return next((s for s in schema.get("anyOf", []) if s.get("type") == "string"), schema)


def _accepts(model: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body, by_alias=True, by_name=False)
    except ValidationError:
        return False
    return True


SUGGESTION = {"pageOrComponent": "Cart", "featureType": "enhancement", "priorityLevel": "low"}
PROFILE = {"name": "n", "role": "r", "focus": "f", "systemPrompt": "p"}


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (SuggestionRequest, SUGGESTION, "pageOrComponent"),
        (SuggestionRequest, SUGGESTION, "additionalContext"),
        (AgentProfile, PROFILE, "name"),
        (AgentProfile, PROFILE, "role"),
    ],
)
@settings(max_examples=200, database=None)
@given(text=TEXT | st.text(st.sampled_from(SPECIAL + "ab"), min_size=95, max_size=210))
def test_each_sanitized_field_is_described_as_validated(
    model: type[BaseModel], body: dict[str, Any], field: str, text: str
) -> None:
    schema = _field_schema(model, field)
    assert "maxLength" not in schema and "minLength" not in schema
    assert _matches(schema["pattern"], text) == _accepts(model, {**body, field: text})
