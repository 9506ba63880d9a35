"""Server-Sent Events framing: pure, byte-exact functions. Every byte of a stream that is not
the application's own data is written here.

The server writes LF only (``\\n``), never CRLF: the original design's client splits on
``\\n\\n``. Every event carries ``id:``, ``event:`` and exactly one ``data:`` line, so the data
must not contain CR or LF (JSON escapes both inside strings). What the events hold is built in
``events``; the tests' decoder is ``tests/sse_decoder.py`` (the client uses httpx-sse).
"""

from __future__ import annotations

__all__ = ["PING", "decode_event", "encode_comment", "encode_event"]


def encode_event(event_id: int, name: str, data: bytes) -> bytes:
    """Frame one event. ``data`` is a single line of JSON, UTF-8."""
    if b"\n" in data or b"\r" in data or "\n" in name or "\r" in name:
        raise ValueError("SSE event name and data must be single lines")
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, name.encode(), data)


def decode_event(frame: bytes) -> tuple[int, str, bytes]:
    """The id, name and data of one frame that ``encode_event`` wrote."""
    fields = dict(line.split(b": ", 1) for line in frame.rstrip(b"\n").split(b"\n"))
    return int(fields[b"id"]), fields[b"event"].decode(), fields[b"data"]


def encode_comment(text: str, *, retry_ms: int | None = None) -> bytes:
    """A comment block (one ``:`` line per line of ``text``), which clients do not dispatch;
    with ``retry_ms``, it also sets the time a client waits before it reconnects."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    block = "".join(f": {line}\n" for line in lines)
    if retry_ms is not None:
        block += f"retry: {retry_ms:d}\n"
    return (block + "\n").encode()


PING = encode_comment("ping")  # the heartbeat of a quiet stream
