"""A ``RunSink`` that records what a provider reports, for the provider tests."""

from __future__ import annotations

import asyncio


class RecordingSink:
    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.activities: list[tuple[str, str]] = []
        self.first_text = asyncio.Event()

    def text(self, chunk: str) -> None:
        self.chunks.append(chunk)
        self.first_text.set()

    def activity(self, tool: str, detail: str) -> None:
        self.activities.append((tool, detail))

    @property
    def narrative(self) -> str:
        return "".join(self.chunks)
