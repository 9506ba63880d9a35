"""How ``feature-planner suggest`` and ``show`` show a job's stream in a terminal: JSON
lines, or the live text with a progress bar and then the suggestions; and how ``runs`` lists
the caller's runs."""

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
from .models import CompleteEvent, DeltaEvent, ErrorEvent, JobPage, JobState

__all__ = [
    "JsonView",
    "RichView",
    "StreamView",
    "print_json",
    "print_result",
    "print_runs",
    "stderr",
    "stdout",
]

EXPECTED_LENGTH: Final = 2000  # code points of text that count as "nearly done" (95 %)
LIVE_TAIL_LINES: Final = 12  # lines of the streaming text kept on screen


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
    """The live text and a progress bar, then the suggestions.

    On a terminal the text streams in a Rich ``Live`` area on stderr (with the bar), from the
    first event that is not final (a finished job shown by ``show`` gets no bar); when stderr
    is not a terminal the deltas are printed as they come to stdout instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self._out = Console(soft_wrap=True)
        self._err = stderr()
        self._text = Text()
        self._progress = Progress(
            TextColumn("[bold]Planning"),
            BarColumn(),
            TaskProgressColumn(),
            console=self._err,
        )
        self._task = self._progress.add_task("planning", total=100)
        self._live: Live | None = None
        self._live_started = False
        self._text_written = False  # deltas printed to stdout (no Live)
        if self._err.is_terminal:
            self._live = Live(
                self._render(), console=self._err, transient=True, refresh_per_second=12
            )

    def _render(self) -> Group:
        lines = self._text.plain.splitlines()[-LIVE_TAIL_LINES:]
        return Group(Text("\n".join(lines), style="dim"), self._progress)

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
            progress = min(95.0, event.total_length / EXPECTED_LENGTH * 100)
            self._progress.update(self._task, completed=progress)
            if self._live is None:
                sys.stdout.write(event.text)
                sys.stdout.flush()
                self._text_written = True
            else:
                self._text.append(event.text)
                self._live.update(self._render())
        elif isinstance(event, CompleteEvent):
            self._progress.update(self._task, completed=100)
            if self._live is None:
                if self._text_written:
                    sys.stdout.write("\n\n")
            else:
                self._live.update(self._render())

    def finish(self) -> bool:
        if isinstance(self.final, CompleteEvent):
            print_result(self._out, self.final)
        return super().finish()


def print_result(console: Console, event: CompleteEvent) -> None:
    for number, suggestion in enumerate(event.suggestions, start=1):
        console.print(Text(f"{number}. {suggestion.title}", style="bold cyan"))
        console.print(Text(f"   Why: {suggestion.rationale}"))
        console.print(Text(f"   {suggestion.description}"))
        for item in suggestion.implementation_considerations:
            console.print(Text(f"   • {item}"))
        console.print()
    usage = event.token_usage
    seconds = event.execution_time_ms / 1000
    console.print(
        Text(
            f"{event.provider} · {event.model} · {usage.input_tokens} input / "
            f"{usage.output_tokens} output tokens · {seconds:.1f} s",
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
