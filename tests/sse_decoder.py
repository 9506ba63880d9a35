"""An SSE decoder for the tests: the WHATWG rules, fed bytes as they arrive.

The service only writes events (``feature_planner.sse``) and its client reads them with
httpx-sse; the tests read raw streams with this, so that they also see comments (heartbeats),
``retry:`` and the exact line endings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["SSEDecoder", "ServerSentEvent"]

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class SSEDecoder:
    """An incremental parser following the WHATWG rules (CR, LF and CRLF all end a line).

    Feed it bytes as they arrive; it returns the events completed so far. Comments are
    counted in ``comments`` so that tests can see heartbeats.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._pending_cr = False
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._has_fields = False
        self.comments: list[str] = []
        self.last_event_id: str | None = None
        self.retry: int | None = None  # the server's reconnection time, ms

    def feed(self, chunk: bytes | str) -> list[ServerSentEvent]:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]
        self._pending_cr = False
        self._buffer += text
        events: list[ServerSentEvent] = []
        while True:
            cut = _find_line_end(self._buffer)
            if cut is None:
                break
            end, skip = cut
            line = self._buffer[:end]
            if self._buffer[end] == "\r" and end + 1 == len(self._buffer):
                self._pending_cr = True  # a CRLF may be split across chunks
            self._buffer = self._buffer[end + skip :]
            event = self._process_line(line)
            if event is not None:
                events.append(event)
        return events

    def _process_line(self, line: str) -> ServerSentEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:].lstrip(" "))
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
            self._has_fields = True
        elif field == "id":
            if "\0" not in value:
                self._id = value
                self.last_event_id = value
        elif field == "retry" and value.isdigit():
            self._retry = self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        # As browsers do: a block without data (`retry:` alone, say) dispatches nothing.
        if not self._has_fields:
            self._event, self._id, self._retry = "", None, None
            return None
        event = ServerSentEvent(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self._id,
            retry=self._retry,
        )
        self._event, self._data, self._id, self._retry = "", [], None, None
        self._has_fields = False
        return event


def _find_line_end(buffer: str) -> tuple[int, int] | None:
    """Index of the first line terminator and its length, or None if the line is incomplete."""
    match = _LINE_END.search(buffer)
    if match is None:
        return None
    return match.start(), match.end() - match.start()
