"""What every AI provider asks of its model: the prompts, and the two tools that end a run.

The model submits its suggestions one at a time with ``submit_suggestion`` (a tool whose input
schema is ``SuggestionInput``: the suggestion, its 1-5 evidence items, effort and impact),
and ends the run with ``finish`` (``FinishInput``: what it looked at). ``parse_suggestion``
and ``parse_finish`` validate those inputs; on failure ``InvalidPlanError.feedback`` says
what to fix, for the provider to send back to the model. What happens to a valid submission
(its evidence verified, the suggestion sent or sent back) is the conversation's part
(``providers.conversation.Submissions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..models import Effort, Evidence, Impact, Suggestion
from .base import PlanRequest
from .evidence import MAX_EVIDENCE
from .follow_up import ParentFile, follow_up_section
from .profile import DEFAULT_AGENT, AgentProfile

__all__ = [
    "FINISH_TOOL_DESCRIPTION",
    "FINISH_TOOL_NAME",
    "MAX_SUGGESTIONS",
    "MIN_SUGGESTIONS",
    "SUBMIT_TOOL_DESCRIPTION",
    "SUBMIT_TOOL_NAME",
    "FinishInput",
    "InvalidPlanError",
    "SuggestionInput",
    "finish_schema",
    "parse_finish",
    "parse_suggestion",
    "suggestion_schema",
    "system_prompt",
    "user_prompt",
]

MIN_SUGGESTIONS = 3
MAX_SUGGESTIONS = 5
SUBMIT_TOOL_NAME = "submit_suggestion"
FINISH_TOOL_NAME = "finish"
SUBMIT_TOOL_DESCRIPTION = (
    f"Submit ONE feature suggestion; call it once per suggestion ({MIN_SUGGESTIONS} to "
    f"{MAX_SUGGESTIONS} in all), as soon as each is ready. Cite 1 to {MAX_EVIDENCE} evidence "
    "items from files you have read: the path relative to the repository root, the exact "
    "lines (startLine and endLine, 1-based, inclusive) and a quote copied verbatim from those "
    "lines. Every item is checked against the repository before the user sees the "
    "suggestion; the result tells you what failed, so you can submit it again fixed."
)
FINISH_TOOL_DESCRIPTION = (
    f"End the run once you have submitted {MIN_SUGGESTIONS} to {MAX_SUGGESTIONS} suggestions, "
    "with a short summary of what you looked at."
)


class _Quoted(BaseModel):
    """One evidence item as the model writes it (the wire's field names)."""

    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, Field(min_length=1, max_length=500)]
    startLine: Annotated[int, Field(ge=1)]
    endLine: Annotated[int, Field(ge=1)]
    quote: Annotated[str, Field(min_length=1, max_length=2000)]

    @model_validator(mode="after")
    def _lines_in_order(self) -> _Quoted:
        if self.endLine < self.startLine:
            raise ValueError(
                f"endLine ({self.endLine}) is before startLine ({self.startLine}): lines are "
                "1-based and inclusive, endLine >= startLine"
            )
        return self


class SuggestionInput(BaseModel):
    """The input of the ``submit_suggestion`` tool."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=3, max_length=200)]
    rationale: Annotated[str, Field(min_length=3, max_length=2000)]
    description: Annotated[str, Field(min_length=3, max_length=4000)]
    implementationConsiderations: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=1000)]],
        Field(min_length=1, max_length=10),
    ]
    evidence: Annotated[list[_Quoted], Field(min_length=1, max_length=MAX_EVIDENCE)]
    effort: Effort
    impact: Impact

    def to_suggestion(self) -> Suggestion:
        """The suggestion, its evidence still unchecked."""
        return Suggestion(
            title=self.title,
            rationale=self.rationale,
            description=self.description,
            implementation_considerations=self.implementationConsiderations,
            evidence=[
                Evidence(
                    path=item.path,
                    start_line=item.startLine,
                    end_line=item.endLine,
                    quote=item.quote,
                )
                for item in self.evidence
            ],
            effort=self.effort,
            impact=self.impact,
        )


class FinishInput(BaseModel):
    """The input of the ``finish`` tool."""

    model_config = ConfigDict(extra="forbid")

    context: Annotated[str, Field(min_length=1, max_length=2000)]


def _inlined_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with no ``$ref``, as providers' tool APIs want it."""
    schema = model.model_json_schema()
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


def suggestion_schema() -> dict[str, Any]:
    """The input schema of ``submit_suggestion``."""
    return _inlined_schema(SuggestionInput)


def finish_schema() -> dict[str, Any]:
    """The input schema of ``finish``."""
    return _inlined_schema(FinishInput)


class InvalidPlanError(Exception):
    """A tool input does not fit its schema; ``feedback`` tells the model what to fix."""

    def __init__(self, feedback: str) -> None:
        super().__init__(feedback)
        self.feedback = feedback


_Input = TypeVar("_Input", bound=BaseModel)


def _parse(model: type[_Input], tool: str, raw: Any) -> _Input:
    try:
        if isinstance(raw, str | bytes):
            return model.model_validate_json(raw)
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'input'}: {error['msg']}"
            for error in exc.errors(include_url=False)[:10]
        )
        raise InvalidPlanError(
            f"The {tool} input was not valid ({problems}). Call {tool} again with a corrected "
            "input."
        ) from None


def parse_suggestion(raw: Any) -> SuggestionInput:
    """Validate a ``submit_suggestion`` input (a dict, or a JSON string)."""
    return _parse(SuggestionInput, SUBMIT_TOOL_NAME, raw)


def parse_finish(raw: Any) -> FinishInput:
    """Validate a ``finish`` input (a dict, or a JSON string)."""
    return _parse(FinishInput, FINISH_TOOL_NAME, raw)


def system_prompt(agent: AgentProfile | None = None) -> str:
    profile = agent or DEFAULT_AGENT
    return f"{profile.system_prompt}\n\nYour role: {profile.role}\nYour focus: {profile.focus}"


def user_prompt(
    request: PlanRequest, page_map: str | None = None, parent_files: Sequence[ParentFile] = ()
) -> str:
    """The first message: the request, and what the repository map found for the page; for
    a follow-up, the earlier run's suggestions, the user's message and ``parent_files``."""
    lines = [
        f"Page or component: {request.page_or_component}",
        f"Feature type: {request.feature_type.value}",
        f"Priority: {request.priority_level.value}",
    ]
    if request.additional_context:
        lines.append(f"Additional context from the user: {request.additional_context}")
    if page_map:
        lines += ["", "What a map of the repository found for this page:", page_map, ""]
    if request.follow_up is not None:
        lines += follow_up_section(request.follow_up, parent_files)
    lines.append(
        f"Explore the repository, then call {SUBMIT_TOOL_NAME} once for each of "
        f"{MIN_SUGGESTIONS} to {MAX_SUGGESTIONS} suggestions, each citing the lines it is "
        f"based on, and call {FINISH_TOOL_NAME} at the end."
    )
    return "\n".join(lines)
