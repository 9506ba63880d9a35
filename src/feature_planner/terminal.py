"""How ``feature-planner suggest`` and ``show`` show a job's stream in a terminal: JSON
lines, or the live text with a progress bar and each suggestion as it arrives; and how
``runs`` lists the caller's runs."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, Final

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from .client import EventEnvelope
from .models import (
    CompleteEvent,
    DeltaEvent,
    ErrorEvent,
    Evidence,
    JobPage,
    JobState,
    ProgressEvent,
    ProgressPhase,
    Suggestion,
    SuggestionEvent,
)

__all__ = [
    "JsonView",
    "RichView",
    "StreamView",
    "evidence_ref",
    "print_json",
    "print_result",
    "print_runs",
    "print_suggestion",
    "stderr",
    "stdout",
]

LIVE_TAIL_LINES: Final = 12  # lines of the streaming text kept on screen
QUOTE_LINES: Final = 3  # lines of an evidence quote printed under its reference

# What each phase of a ``progress`` event says on the progress line.
PHASE_WORDS: Final = {
    ProgressPhase.READING_DOCS: "Reading the docs",
    ProgressPhase.EXPLORING: "Exploring the code",
    ProgressPhase.DRAFTING: "Drafting suggestions",
    ProgressPhase.VERIFYING: "Checking the evidence",
}


def stderr() -> Console:
    return Console(stderr=True, soft_wrap=True)


def stdout() -> Console:
    """The console for results; not on a terminal, wide enough that a table's rows stay on
    one line each (a pipe has no width; Rich would assume 80 columns)."""
    console = Console(soft_wrap=True)
    return console if console.is_terminal else Console(soft_wrap=True, width=240)


class StreamView:
    """Renders a stream; remembers how it ended."""

    def __init__(self) -> None:
        self.final: CompleteEvent | ErrorEvent | None = None

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None

    def show(self, envelope: EventEnvelope) -> None:
        if isinstance(envelope.event, CompleteEvent | ErrorEvent):
            self.final = envelope.event

    def finish(self) -> bool:
        """Whether the job completed; says on stderr how it failed when it did not."""
        if isinstance(self.final, CompleteEvent):
            return True
        if isinstance(self.final, ErrorEvent):
            message = f"{self.final.code}: {self.final.message}"
        else:
            message = "the stream ended without a result"
        stderr().print(Text(f"Error {message}", style="bold red"))
        return False


class JsonView(StreamView):
    """``--json``: one compact JSON object per event on stdout, nothing else."""

    def show(self, envelope: EventEnvelope) -> None:
        super().show(envelope)
        sys.stdout.write(json.dumps(envelope.to_wire(), separators=(",", ":")) + "\n")
        sys.stdout.flush()


class RichView(StreamView):
    """The live text and a progress bar; each suggestion as its ``suggestion`` event arrives
    (any the stream did not send one by one, at ``complete``), then a line about the run.

    On a terminal the text streams in a Rich ``Live`` area on stderr (with the bar), from the
    first event that is not final (a finished job shown by ``show`` gets no bar); when stderr
    is not a terminal the deltas are printed as they come to stdout instead. Suggestions go
    to stdout either way (above the live area when both are the same terminal).

    The bar follows the ``progress`` events: their phase in words, their percent (which
    never goes down), how many suggestions are ready; it is full at ``complete``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._out = Console(soft_wrap=True)
        self._err = stderr()
        self._text = Text()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[ready]}", style="dim"),
            console=self._err,
        )
        self._task = self._progress.add_task("Planning", total=100, ready="")
        self._live: Live | None = None
        self._live_started = False
        self._text_written = False  # deltas printed to stdout (no Live) since the last card
        self._percent = 0.0  # what the bar shows; never goes down
        self._printed: set[int] = set()  # indexes of the suggestions printed
        if self._err.is_terminal:
            # Stdout is redirected above the live area only when it is the terminal too: a
            # pipe gets the suggestions, not the live area's console.
            self._live = Live(
                self._render(),
                console=self._err,
                transient=True,
                refresh_per_second=12,
                redirect_stdout=self._out.is_terminal,
            )

    def _render(self) -> Group:
        lines = self._text.plain.splitlines()[-LIVE_TAIL_LINES:]
        return Group(Text("\n".join(lines), style="dim"), self._progress)

    def _advance(self, percent: float, **fields: Any) -> None:
        self._percent = max(self._percent, min(100.0, percent))
        self._progress.update(self._task, completed=self._percent, **fields)

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None and self._live_started:
            self._live.stop()

    def show(self, envelope: EventEnvelope) -> None:
        super().show(envelope)
        event = envelope.event
        if self._live is not None and not self._live_started and self.final is None:
            self._live.start()
            self._live_started = True
        if isinstance(event, DeltaEvent):
            if self._live is None:
                sys.stdout.write(event.text)
                sys.stdout.flush()
                self._text_written = True
            else:
                self._text.append(event.text)
                self._live.update(self._render())
        elif isinstance(event, ProgressEvent):
            ready = f"{event.suggestions_ready} of {event.suggestions_expected} suggestions ready"
            self._advance(
                event.percent,
                description=PHASE_WORDS.get(event.phase, str(event.phase)),
                ready=ready if event.suggestions_expected else "",
            )
            if self._live is not None:
                self._live.update(self._render())
        elif isinstance(event, SuggestionEvent):
            self._print_suggestion(event.index, event.suggestion)
        elif isinstance(event, CompleteEvent):
            self._advance(100)
            if self._live is None:
                self._end_text()
            else:
                self._live.update(self._render())

    def _print_suggestion(self, index: int, suggestion: Suggestion) -> None:
        """Print one suggestion, once (a repeated index is the same suggestion: final)."""
        if index in self._printed:
            return
        self._printed.add(index)
        self._end_text()
        console = self._out
        if self._live is not None and self._live_started and self._out.is_terminal:
            console = self._live.console  # printed above the live area
        print_suggestion(console, index + 1, suggestion)

    def _end_text(self) -> None:
        """A blank line between the text printed to stdout so far and what follows it."""
        if self._text_written:
            sys.stdout.write("\n\n")
            sys.stdout.flush()
            self._text_written = False

    def finish(self) -> bool:
        if isinstance(self.final, CompleteEvent):
            for index, suggestion in enumerate(self.final.suggestions):
                self._print_suggestion(index, suggestion)
            print_result(self._out, self.final, suggestions=False)
        return super().finish()


def evidence_ref(item: Evidence) -> str:
    """``path:start-end`` (``path:line`` for one line): the ``path:line`` a terminal or an
    editor opens, and the range after it."""
    if item.end_line > item.start_line:
        return f"{item.path}:{item.start_line}-{item.end_line}"
    return f"{item.path}:{item.start_line}"


def _sizes(suggestion: Suggestion) -> str:
    parts = []
    if suggestion.effort is not None:
        parts.append(f"Effort: {suggestion.effort.value}")
    if suggestion.impact is not None:
        parts.append(f"Impact: {suggestion.impact.value}")
    return " · ".join(parts)


def print_suggestion(console: Console, number: int, suggestion: Suggestion) -> None:
    """One suggestion: title, effort and impact, why, what, considerations, and its evidence
    as ``path:start-end`` references with the first lines of each quote."""
    console.print(Text(f"{number}. {suggestion.title}", style="bold cyan"))
    sizes = _sizes(suggestion)
    if sizes:
        console.print(Text(f"   {sizes}", style="magenta"))
    console.print(Text(f"   Why: {suggestion.rationale}"))
    console.print(Text(f"   {suggestion.description}"))
    for item in suggestion.implementation_considerations:
        console.print(Text(f"   • {item}"))
    if suggestion.evidence:
        console.print(Text("   Evidence:", style="bold"))
        for evidence in suggestion.evidence:
            console.print(Text(f"   {evidence_ref(evidence)}", style="green"))
            lines = evidence.quote.strip("\n").splitlines() or [""]
            for line in lines[:QUOTE_LINES]:
                console.print(Text(f"     │ {line}", style="dim"))
            if len(lines) > QUOTE_LINES:
                more = len(lines) - QUOTE_LINES
                console.print(Text(f"     │ … ({more} more lines)", style="dim"))
    console.print()


def print_result(console: Console, event: CompleteEvent, *, suggestions: bool = True) -> None:
    """The suggestions (unless ``suggestions`` is false: they were printed as they came),
    then a line about the run: engine, model, tokens, time, evidence checked."""
    if suggestions:
        for number, suggestion in enumerate(event.suggestions, start=1):
            print_suggestion(console, number, suggestion)
    usage = event.token_usage
    seconds = event.execution_time_ms / 1000
    cost = usage.cost_usd
    console.print(
        Text(
            f"{event.provider} · {event.model} · {usage.input_tokens} input / "
            f"{usage.output_tokens} output tokens"
            + ("" if cost is None else f" · ${cost:.4f}")
            + f" · {seconds:.1f} s",
            style="dim",
        )
    )
    stats = event.evidence_stats
    if stats is not None:
        console.print(
            Text(
                f"Evidence: {stats.cited} cited · {stats.verified} verified · "
                f"{stats.dropped} dropped",
                style="dim",
            )
        )
    notice = getattr(event, "notice", None)
    if notice:
        console.print(Text(f"Note: {notice}", style="yellow"))


_STATE_STYLES: Final = {
    JobState.PENDING: "dim",
    JobState.IN_PROGRESS: "cyan",
    JobState.COMPLETED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "yellow",
}


def _local_time(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M")


def print_runs(console: Console, page: JobPage) -> None:
    """The runs of one page as a table, in the page's order (newest first)."""
    if not page.jobs:
        console.print(Text("No runs.", style="dim"))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("JOB", no_wrap=True, min_width=36)
    table.add_column("STATE", no_wrap=True)
    table.add_column("PAGE OR COMPONENT")
    table.add_column("TYPE", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    table.add_column("SUGGESTIONS", justify="right", no_wrap=True)
    for job in page.jobs:
        count = job.suggestions_count
        table.add_row(
            job.job_id,
            Text(job.status.value, style=_STATE_STYLES.get(job.status, "")),
            job.input.page_or_component,
            job.input.feature_type.value,
            _local_time(job.created_at),
            "-" if count is None else str(count),
        )
    console.print(table)


def print_json(data: Any) -> None:
    """``--json``: one JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")
    sys.stdout.flush()
