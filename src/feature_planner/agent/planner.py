"""What every AI provider shares: the prompts, and the structured result and its checks.

A provider streams the model's narrative through the ``RunSink``, lets the model use the
repository tools, and ends when the model calls ``submit_suggestions`` (a tool whose input
schema is ``PlanOutput``). ``parse_plan`` validates that input; on failure the provider
feeds ``InvalidPlanError.feedback`` back to the model and asks again, up to the configured
number of retries.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..models import Suggestion
from .base import PlanRequest
from .profile import DEFAULT_AGENT, AgentProfile

__all__ = [
    "SUBMIT_TOOL_DESCRIPTION",
    "SUBMIT_TOOL_NAME",
    "InvalidPlanError",
    "PlanOutput",
    "parse_plan",
    "plan_schema",
    "system_prompt",
    "user_prompt",
]

SUBMIT_TOOL_NAME = "submit_suggestions"
SUBMIT_TOOL_DESCRIPTION = (
    "Submit the final feature suggestions (3 to 5) and a short summary of what you looked "
    "at. Call it exactly once, at the end."
)


class _PlannedSuggestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=3, max_length=200)]
    rationale: Annotated[str, Field(min_length=3, max_length=2000)]
    description: Annotated[str, Field(min_length=3, max_length=4000)]
    implementationConsiderations: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=1000)]],
        Field(min_length=1, max_length=10),
    ]


class PlanOutput(BaseModel):
    """The input of the ``submit_suggestions`` tool."""

    model_config = ConfigDict(extra="forbid")

    suggestions: Annotated[list[_PlannedSuggestion], Field(min_length=3, max_length=5)]
    context: Annotated[str, Field(min_length=1, max_length=2000)]

    def to_suggestions(self) -> list[Suggestion]:
        return [
            Suggestion(
                title=item.title,
                rationale=item.rationale,
                description=item.description,
                implementation_considerations=item.implementationConsiderations,
            )
            for item in self.suggestions
        ]


def plan_schema() -> dict[str, Any]:
    """The JSON schema of ``PlanOutput``, inlined (no ``$ref``) for providers' tool APIs."""
    schema = PlanOutput.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


class InvalidPlanError(Exception):
    """The model's result does not fit ``PlanOutput``; ``feedback`` tells it what to fix."""

    def __init__(self, feedback: str) -> None:
        super().__init__(feedback)
        self.feedback = feedback


def parse_plan(raw: Any) -> PlanOutput:
    """Validate the model's ``submit_suggestions`` input (a dict, or a JSON string)."""
    try:
        if isinstance(raw, str | bytes):
            return PlanOutput.model_validate_json(raw)
        return PlanOutput.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'input'}: {error['msg']}"
            for error in exc.errors(include_url=False)[:10]
        )
        raise InvalidPlanError(
            f"The {SUBMIT_TOOL_NAME} input was not valid ({problems}). "
            f"Call {SUBMIT_TOOL_NAME} again with a corrected input."
        ) from None


def system_prompt(agent: AgentProfile | None = None) -> str:
    profile = agent or DEFAULT_AGENT
    return f"{profile.system_prompt}\n\nYour role: {profile.role}\nYour focus: {profile.focus}"


def user_prompt(request: PlanRequest) -> str:
    lines = [
        f"Page or component: {request.page_or_component}",
        f"Feature type: {request.feature_type.value}",
        f"Priority: {request.priority_level.value}",
    ]
    if request.additional_context:
        lines.append(f"Additional context from the user: {request.additional_context}")
    lines.append("Explore the repository, then call submit_suggestions with 3 to 5 suggestions.")
    return "\n".join(lines)
