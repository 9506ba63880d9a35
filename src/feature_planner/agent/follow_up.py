"""What a follow-up tells an AI model: the earlier run's suggestions with their evidence,
what the user says about them, and the text of the files that run read.

A follow-up ("why #2?", "not this one, something for mobile", "split #3 into smaller
steps") starts where its parent ended. Giving the model the parent's files in its first
message means it need not read them again; it may still use the tools to look further.
The files are read through the ``Sandbox`` (what the tools may read, and nothing else),
numbered like the ``Read`` tool's answer so that evidence can be cited from them, and
bounded (``FILES_BUDGET_BYTES`` in all).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..models import Suggestion
from .base import FollowUp
from .sandbox import Sandbox, SandboxError

__all__ = [
    "FILES_BUDGET_BYTES",
    "ParentFile",
    "follow_up_section",
    "read_parent_files",
    "suggestion_label",
]

FILES_BUDGET_BYTES = 60_000  # the parent's files' text in the first message, at most
_MAX_FILES = 40


@dataclass(frozen=True, slots=True)
class ParentFile:
    """One file the parent run read, as this run's first message shows it."""

    path: str
    text: str  # numbered lines ("     1\t..."), as the Read tool answers
    truncated: bool = False


def read_parent_files(
    repository: Path, paths: Iterable[str], budget: int = FILES_BUDGET_BYTES
) -> list[ParentFile]:
    """The text of the files the parent read, in its order, through the sandbox: a path it
    no longer lets through (gone, ignored, binary, a secret) is skipped; the file that
    meets the budget is cut at a line's end, and is the last. Blocking: run it in a worker
    thread."""
    sandbox = Sandbox(repository)
    files: list[ParentFile] = []
    seen: set[str] = set()
    left = budget
    for raw in paths:
        if left <= 0 or len(files) >= _MAX_FILES:
            break
        try:
            location = sandbox.resolve(raw)
            if location.is_dir or location.rel in seen:
                continue
            text = sandbox.read_text(location, left, truncate=True)
        except (SandboxError, OSError):
            continue
        seen.add(location.rel)
        whole = len(text.encode()) < left
        if not whole:
            text = text[: text.rfind("\n") + 1]  # whole lines only
        files.append(ParentFile(location.rel, _numbered(text), truncated=not whole))
        if not whole:
            break  # the budget is spent
        left -= len(text.encode())
    return files


def suggestion_label(index: int, suggestion: Suggestion) -> str:
    """How the model and the user name a suggestion: by its number from 1, as shown."""
    return f'suggestion {index + 1} ("{suggestion.title}")'


def follow_up_section(follow_up: FollowUp, files: Sequence[ParentFile]) -> list[str]:
    """The lines a follow-up adds to the first message."""
    lines = ["", "This run follows up an earlier run on the same page. Its suggestions were:"]
    for index, suggestion in enumerate(follow_up.parent_suggestions):
        lines += _suggestion_lines(index, suggestion)
    lines.append("")
    about = follow_up.suggestion
    if about is not None and follow_up.suggestion_index is not None:
        target = suggestion_label(follow_up.suggestion_index, about)
        lines.append(f"The user's message about {target}:")
    else:
        lines.append("The user's message about the earlier run:")
    lines += [_quoted(follow_up.message), ""]
    if files:
        lines.append(
            "The files the earlier run read, with line numbers (you need not Read them "
            "again; cite their lines as evidence, or use the tools to look further):"
        )
        for file in files:
            cut = " (cut short: Read the rest if you need it)" if file.truncated else ""
            lines += [f"--- {file.path}{cut}", file.text.rstrip("\n"), f"--- end of {file.path}"]
        lines.append("")
    lines.append(
        "Answer the user's message with new suggestions for this page: when it asks for "
        "more like one, find the same kind of thing elsewhere; when it rejects one, do not "
        "suggest it again; when it asks for smaller steps, split that suggestion into "
        "steps that each stand alone. Each suggestion cites the lines it rests on."
    )
    return lines


def _suggestion_lines(index: int, suggestion: Suggestion) -> list[str]:
    lines = [
        f"{index + 1}. {suggestion.title}"
        + (
            f" (effort {suggestion.effort.value}, impact {suggestion.impact.value})"
            if suggestion.effort is not None and suggestion.impact is not None
            else ""
        ),
        f"   {suggestion.description}",
        f"   Why: {suggestion.rationale}",
    ]
    for item in suggestion.evidence or ():
        quote = " ".join(item.quote.split())[:300]
        lines.append(f"   Evidence: {item.path}:{item.start_line}-{item.end_line} {quote!r}")
    return lines


def _quoted(message: str) -> str:
    return "\n".join("> " + line for line in message.splitlines() or [""])


def _numbered(text: str) -> str:
    return "".join(
        f"{number:>6}\t{line}\n" for number, line in enumerate(text.splitlines(), start=1)
    )
