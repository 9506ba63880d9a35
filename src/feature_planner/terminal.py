"""How ``feature-planner suggest`` shows a job's stream in a terminal: JSON lines, or the
live text with a progress bar and then the suggestions."""

from __future__ import annotations

import json
import sys
from typing import Final

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.text import Text

from .client import EventEnvelope
from .models import CompleteEvent, DeltaEvent, ErrorEvent

__all__ = ["JsonView", "RichView", "StreamView", "print_result", "stderr"]

EXPECTED_LENGTH: Final = 2000  # code points of text that count as "nearly done" (95 %)
LIVE_TAIL_LINES: Final = 12  # lines of the streaming text kept on screen


def stderr() -> Console:
    return Console(stderr=True, soft_wrap=True)


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

    On a terminal the text streams in a Rich ``Live`` area on stderr (with the bar); when
    stderr is not a terminal the deltas are printed as they come to stdout instead.
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
        if self._err.is_terminal:
            self._live = Live(
                self._render(), console=self._err, transient=True, refresh_per_second=12
            )

    def _render(self) -> Group:
        lines = self._text.plain.splitlines()[-LIVE_TAIL_LINES:]
        return Group(Text("\n".join(lines), style="dim"), self._progress)

    def __enter__(self) -> None:
        if self._live is not None:
            self._live.start()

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.stop()

    def show(self, envelope: EventEnvelope) -> None:
        super().show(envelope)
        event = envelope.event
        if isinstance(event, DeltaEvent):
            progress = min(95.0, event.total_length / EXPECTED_LENGTH * 100)
            self._progress.update(self._task, completed=progress)
            if self._live is None:
                sys.stdout.write(event.text)
                sys.stdout.flush()
            else:
                self._text.append(event.text)
                self._live.update(self._render())
        elif isinstance(event, CompleteEvent):
            self._progress.update(self._task, completed=100)
            if self._live is None:
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
