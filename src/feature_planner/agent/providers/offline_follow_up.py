"""How the offline engine follows up a run: what the user's message asks, and which of the
facts of the earlier run's files answer it.

There is no model to understand the message, so the engine reads it for the few things a
follow-up asks ("more like #2", "not this one", "smaller steps", "for mobile") and which
suggestion it is about (``suggestionIndex``, else "#2" or "suggestion 2" in the message).
The answer is always drawn from facts in the code the earlier run read: the same kind of
fact elsewhere, other facts, layout facts first, or one suggestion split into steps that
each cite its lines. When no fact fits, it says so rather than pad.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ...models import Effort, Evidence, Suggestion
from ..base import FollowUp
from ..facts import Fact, FactKind

__all__ = ["Intent", "Reading", "Steered", "read_message", "smaller_steps", "steer"]


class Intent(StrEnum):
    MORE_LIKE = "more like this"
    NOT_THIS = "not this"
    SMALLER_STEPS = "smaller steps"
    MOBILE = "for mobile"


_INTENTS: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    (
        Intent.SMALLER_STEPS,
        re.compile(
            r"\b(smaller|split|break (?:it |this |that )?(?:down|up)|steps?|incremental(?:ly)?|"
            r"phases?|piece by piece|bit by bit)\b"
        ),
    ),
    (
        Intent.NOT_THIS,
        re.compile(
            r"\b(not (?:this|that|it|these|those)|no,|don'?t|do not|instead|something else|"
            r"other than|rather than|skip|drop|without)\b"
        ),
    ),
    (
        Intent.MORE_LIKE,
        re.compile(r"\b(more like|like (?:this|that|it)|similar|same kind|more of|another)\b"),
    ),
    (
        Intent.MOBILE,
        re.compile(
            r"\b(mobile|phones?|responsive|small screens?|tablets?|touch|narrow|breakpoints?)\b"
        ),
    ),
)
_NUMBERED = re.compile(r"(?:#|\bsuggestion\s+|\bnumber\s+|\bno\.\s*)(\d{1,2})\b")
# Layout first, for a small screen: the grid, then what a thumb and a screen reader meet.
_MOBILE_KINDS = (FactKind.FIXED_GRID, FactKind.UNLABELLED_INPUT, FactKind.MISSING_ROUTE_STATE)


@dataclass(frozen=True, slots=True)
class Reading:
    """What the message asks, and which of the earlier run's suggestions it is about."""

    intents: frozenset[Intent]
    target: int | None  # an index into the parent's suggestions
    named: bool  # the target was named (by the index or in the message), not assumed


def read_message(follow_up: FollowUp) -> Reading:
    message = follow_up.message.lower()
    intents = frozenset(intent for intent, pattern in _INTENTS if pattern.search(message))
    count = len(follow_up.parent_suggestions)
    target = follow_up.suggestion_index
    if target is None:
        for match in _NUMBERED.finditer(message):
            if 1 <= int(match.group(1)) <= count:
                target = int(match.group(1)) - 1
                break
    if target is not None and target < count:
        return Reading(intents, target, named=True)
    if Intent.SMALLER_STEPS in intents and count:
        return Reading(intents, 0, named=False)  # steps of what? the first, and it says so
    return Reading(intents, None, named=False)


@dataclass(frozen=True, slots=True)
class Steered:
    """The facts that answer the message, best first, and what the engine did, in words."""

    facts: list[Fact]
    done: str  # "Other facts than suggestion 2 (…)": the narrative's account

    def shortfall(self, count: int) -> str:
        if count >= 3:
            return ""
        if count == 0:
            return (
                "Nothing else in the files the earlier run read answers this follow-up, so "
                "no suggestion is made rather than a generic one."
            )
        things = "thing" if count == 1 else "things"
        return (
            f"Only {count} {things} in the files the earlier run read answer this "
            "follow-up; no more are made up."
        )


def steer(follow_up: FollowUp, reading: Reading, facts: Sequence[Fact]) -> Steered:
    """The facts of the earlier run's files that answer the message, best first."""
    parents = follow_up.parent_suggestions
    target = parents[reading.target] if reading.target is not None else None
    suggested = [fact for fact in facts if any(_cites(s, fact) for s in parents)]
    about = [fact for fact in facts if target is not None and _cites(target, fact)]
    named = _name(reading.target, target)
    if Intent.MORE_LIKE in reading.intents and Intent.NOT_THIS not in reading.intents:
        kinds = {fact.kind for fact in (about if target is not None else suggested)}
        chosen = [fact for fact in facts if fact.kind in kinds and fact not in suggested]
        done = f"The same kind of thing as {named}, found elsewhere in the files it read"
    elif Intent.NOT_THIS in reading.intents:
        refused = about if target is not None else suggested
        kinds = {fact.kind for fact in refused}
        chosen = [fact for fact in facts if fact.kind not in kinds and fact not in suggested]
        done = f"Other things than {named}"
    else:  # a question ("why #2?") or a wish: what it is about first, then what is new
        chosen = [*about, *(fact for fact in facts if fact not in about and fact not in suggested)]
        done = f"What the code shows about {named}, then what the earlier run did not suggest"
    if Intent.MOBILE in reading.intents:
        chosen.sort(key=_mobile_rank)  # stable: the order above within each rank
        done += ", layout for small screens first"
    return Steered(chosen, done)


def smaller_steps(suggestion: Suggestion, index: int) -> list[Suggestion]:
    """``suggestion`` split into steps that each stand alone: one per place it cites, then
    checking the whole; a suggestion that cites one place and says nothing of how to check
    it is one step, and is not split."""
    places = list(
        dict.fromkeys((item.path, item.start_line, item.end_line) for item in suggestion.evidence)
    )
    items = {(item.path, item.start_line, item.end_line): item for item in suggestion.evidence}
    check = next(iter(suggestion.implementation_considerations), None)
    steps: list[tuple[str, str, list[Evidence]]] = []
    for path, start, end in places:
        where = f"{path}:{start}" + (f"-{end}" if end != start else "")
        steps.append(
            (
                f"Make the change at {where} alone",
                f"{suggestion.description} Only the code at {where}, in one small pull request.",
                [items[(path, start, end)]],
            )
        )
    if check is not None:
        steps.append(
            (
                "Check the change",
                f"{check} Do this once the step{'s' if len(places) > 1 else ''} above are merged.",
                list(suggestion.evidence),
            )
        )
    if len(steps) < 2:
        return []
    total = len(steps)
    return [
        Suggestion(
            title=f"Step {number} of {total} of “{suggestion.title}”: {title}",
            rationale=f"Suggestion {index + 1} of the earlier run, split into smaller steps: "
            f"{suggestion.rationale}",
            description=description,
            implementation_considerations=[
                f"Step {number} of {total}; each step can be reviewed and shipped on its own."
            ],
            evidence=evidence,
            effort=Effort.SMALL,
            impact=suggestion.impact,
        )
        for number, (title, description, evidence) in enumerate(steps, start=1)
    ]


def _cites(suggestion: Suggestion, fact: Fact) -> bool:
    """The suggestion rests on this fact: it cites lines of the fact's evidence."""
    return any(
        item.path == cited.path
        and item.start_line <= cited.end_line
        and cited.start_line <= item.end_line
        for item in fact.evidence
        for cited in suggestion.evidence
    )


def _name(index: int | None, suggestion: Suggestion | None) -> str:
    if index is None or suggestion is None:
        return "the earlier run's suggestions"
    return f"suggestion {index + 1} (“{suggestion.title}”)"


def _mobile_rank(fact: Fact) -> int:
    return _MOBILE_KINDS.index(fact.kind) if fact.kind in _MOBILE_KINDS else len(_MOBILE_KINDS)
