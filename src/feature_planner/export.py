"""A completed job as a document to keep: Markdown for people, JSON for programs.

Both are pure functions of the job's status document (``JobStatus`` on the wire, as the JSON
status of its stream URL answers it), so every replica, and a job read back from the history
long after its event log expired, exports the same bytes.

Everything in the Markdown that came from the model or the repository (titles, descriptions,
considerations, context, the request's own text, paths, quotes) is data, not Markdown: it can
add words to the document, never structure. Inline text has each character that CommonMark
(or GitHub's extensions: tables, strikethrough, math) gives a meaning backslash-escaped, and
the ones that mean something only at the start of a line (``>``, ``-``, ``+``, ``=``, ``1.``)
escaped there; lines are trimmed (no indented code, no hard breaks) and control characters
dropped (a lone CR is a line break to CommonMark). A heading or a list item is one line.
Quotes go in fenced code blocks whose fence is longer than any backtick run in the quote.
Bare URLs are left as they are: GitHub shows ``https://…`` as a link, but one that says
where it goes; a ``javascript:`` link, or text that hides its target, cannot be written.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .models import CompleteEvent, Evidence, JobState, JobStatus, Suggestion

__all__ = ["ExportFormat", "file_name", "render", "to_json", "to_markdown"]


class ExportFormat(StrEnum):
    """How an exported job is written: a Markdown document, or its status as JSON."""

    MARKDOWN = "markdown"
    JSON = "json"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self]


_MEDIA_TYPES = {
    ExportFormat.MARKDOWN: "text/markdown; charset=utf-8",
    ExportFormat.JSON: "application/json",
}
_EXTENSIONS = {ExportFormat.MARKDOWN: "md", ExportFormat.JSON: "json"}

# Meaningful anywhere in a line: escapes, code, emphasis, links and images, HTML and
# entities, strikethrough, tables, math; and ``#``, which also closes an ATX heading.
_SPECIAL = re.compile(r"([\\`*_\[\]<&~|$#])")
# Meaningful only where a line starts: block quotes, list items, setext underlines.
_LINE_START = re.compile(r"^([>+=-])|^(\d{1,9})([.)])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_BACKTICKS = re.compile(r"`+")
_LANGUAGE = re.compile(r"[A-Za-z0-9]{1,16}")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_SLUG_CHARS = 60

_TOKEN_LABELS = {
    "inputTokens": "Input tokens",
    "outputTokens": "Output tokens",
    "cacheReadInputTokens": "Cache read input tokens",
    "cacheCreationInputTokens": "Cache creation input tokens",
    "costUsd": "Cost (USD)",
}


def render(status: Mapping[str, Any], chosen: ExportFormat) -> bytes:
    """The document's bytes in ``chosen`` format."""
    if chosen is ExportFormat.JSON:
        return to_json(status)
    return to_markdown(status).encode()


def to_json(status: Mapping[str, Any]) -> bytes:
    """The status document itself, indented for people who open the file."""
    return json.dumps(status, ensure_ascii=False, indent=2).encode() + b"\n"


def to_markdown(status: Mapping[str, Any]) -> str:
    """A completed job's status document as Markdown; ``ValueError`` for any other job."""
    job = JobStatus.model_validate(status)
    if job.status is not JobState.COMPLETED or job.result is None:
        raise ValueError(f"job {job.job_id} is {job.status.value}, not completed with a result")
    return "\n".join(_document(job, job.result))


def file_name(status: Mapping[str, Any], chosen: ExportFormat) -> str:
    """``<page-or-component>-<first 8 of the job id>.<extension>``: ASCII letters, digits and
    hyphens only, so that it is safe in a header, a shell and any file system."""
    page = str(status.get("input", {}).get("pageOrComponent", ""))
    folded = unicodedata.normalize("NFKD", page).encode("ascii", "ignore").decode().lower()
    slug = _NOT_SLUG.sub("-", folded).strip("-")[:_SLUG_CHARS].rstrip("-") or "feature-suggestions"
    job = _NOT_SLUG.sub("", str(status.get("jobId", "")).lower())[:8]
    return f"{slug}-{job}.{chosen.extension}" if job else f"{slug}.{chosen.extension}"


# -- the document ----------------------------------------------------------------------------


def _document(job: JobStatus, result: CompleteEvent) -> Iterator[str]:
    request = job.input
    yield f"# Feature suggestions: {_inline(request.page_or_component)}"
    yield ""
    yield from _items(
        (_label(label), value)
        for label, value in (
            ("Feature type", _inline(request.feature_type.value)),
            ("Priority", _inline(request.priority_level.value)),
            ("Additional context", _inline(request.additional_context or "") or None),
            ("Provider", _inline(result.provider)),
            ("Model", _inline(result.model)),
            ("Requested", _when(job.created_at)),
            ("Completed", _when(job.finished_at)),
            ("Job", _code_span(job.job_id)),
            ("Follow-up of", _code_span(job.parent_job_id) if job.parent_job_id else None),
        )
    )
    notice = (result.model_extra or {}).get("notice")
    if isinstance(notice, str):
        yield from _paragraphs(notice)
    for number, suggestion in enumerate(result.suggestions, start=1):
        yield from _suggestion(number, suggestion)
    yield "## Context"
    yield ""
    yield from _paragraphs(result.context) if result.context.strip() else ["(none)", ""]
    yield "## Evidence and token usage"
    yield ""
    yield from _items(_figures(result))


def _suggestion(number: int, suggestion: Suggestion) -> Iterator[str]:
    yield f"## {number}. {_inline(suggestion.title) or '(untitled)'}"
    yield ""
    yield from _paragraphs(suggestion.description)
    if suggestion.rationale.strip():
        yield "### Rationale"
        yield ""
        yield from _paragraphs(suggestion.rationale)
    considerations = [_inline(text) for text in suggestion.implementation_considerations]
    if any(considerations):
        yield "### Implementation considerations"
        yield ""
        yield from (f"- {text}" for text in considerations if text)
        yield ""
    sizes = [
        f"**{label}:** {value.value}"
        for label, value in (("Effort", suggestion.effort), ("Impact", suggestion.impact))
        if value is not None
    ]
    if sizes:
        yield " · ".join(sizes)
        yield ""
    if suggestion.evidence:
        yield "### Evidence"
        yield ""
        for item in suggestion.evidence:
            yield from _evidence(item)


def _evidence(item: Evidence) -> Iterator[str]:
    yield _code_span(f"{item.path}:{item.start_line}-{item.end_line}")
    yield ""
    quote = _LINE_BREAK.sub("\n", _CONTROL.sub("", item.quote)).strip("\n")
    longest = max((len(run) for run in _BACKTICKS.findall(quote)), default=0)
    fence = "`" * max(3, longest + 1)
    extension = item.path.rpartition(".")[2] if "." in item.path.rpartition("/")[2] else ""
    language = extension.lower() if _LANGUAGE.fullmatch(extension) else ""
    yield fence + language
    yield quote
    yield fence
    yield ""


def _figures(result: CompleteEvent) -> Iterator[tuple[str, str | None]]:
    if result.evidence_stats is not None:
        stats = result.evidence_stats
        yield _label("Evidence cited"), str(stats.cited)
        yield _label("Evidence verified"), str(stats.verified)
        yield _label("Evidence dropped"), str(stats.dropped)
    for key, value in result.token_usage.to_wire().items():
        # A figure this module has no name for (a provider's own) is named by its key.
        label = _TOKEN_LABELS.get(key)
        shown = str(value) if isinstance(value, int | float) else _inline(str(value))
        yield (_label(label) if label else _code_span(key) + ":"), shown
    yield _label("Execution time"), f"{result.execution_time_ms} ms"
    yield _label("Retries"), str(result.retry_count)


# -- Markdown, safely ------------------------------------------------------------------------


def _items(items: Iterable[tuple[str, str | None]]) -> Iterator[str]:
    """A list of ``label: value`` (the label already Markdown); items without a value are
    left out."""
    for label, value in items:
        if value is not None:
            yield f"- {label} {value}"
    yield ""


def _label(text: str) -> str:
    return f"**{text}:**"


def _paragraphs(text: str) -> Iterator[str]:
    """Text of several lines and paragraphs, each line escaped; nothing for blank text."""
    clean = _LINE_BREAK.sub("\n", _CONTROL.sub("", text))
    for paragraph in _BLANK_LINES.split(clean):
        lines = [_escape_line(line) for line in paragraph.split("\n")]
        lines = [line for line in lines if line]
        if lines:
            yield "\n".join(lines)
            yield ""


def _inline(text: str) -> str:
    """Text as one escaped line (for a heading or a list item)."""
    return _escape_line(" ".join(_CONTROL.sub("", text).split()))


def _escape_line(line: str) -> str:
    trimmed = line.strip()
    escaped = _SPECIAL.sub(r"\\\1", trimmed)
    return _LINE_START.sub(_escape_start, escaped, count=1)


def _escape_start(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return "\\" + match.group(1)
    return f"{match.group(2)}\\{match.group(3)}"


def _code_span(text: str) -> str:
    """``text`` as inline code: delimited by more backticks than it holds in a row."""
    flat = " ".join(_CONTROL.sub("", text).split())
    longest = max((len(run) for run in _BACKTICKS.findall(flat)), default=0)
    ticks = "`" * (longest + 1)
    padded = f" {flat} " if flat.startswith("`") or flat.endswith("`") else flat
    return f"{ticks}{padded}{ticks}"


def _when(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
