"""The SSE codec: byte-exact framing, and the tests' WHATWG-conformant decoder."""

from __future__ import annotations

import pytest

from feature_planner.sse import PING, encode_comment, encode_event
from tests.sse_decoder import SSEDecoder


@pytest.mark.parametrize(
    ("event_id", "name", "data", "expected"),
    [
        (0, "connected", b'{"jobId":"j"}', b'id: 0\nevent: connected\ndata: {"jobId":"j"}\n\n'),
        (7, "delta", b'{"text":"a"}', b'id: 7\nevent: delta\ndata: {"text":"a"}\n\n'),
        (
            1,
            "delta",
            '{"text":"é\\n\\r"}'.encode(),
            'id: 1\nevent: delta\ndata: {"text":"é\\n\\r"}\n\n'.encode(),
        ),
    ],
)
def test_encode_event_is_byte_exact(event_id: int, name: str, data: bytes, expected: bytes) -> None:
    assert encode_event(event_id, name, data) == expected


@pytest.mark.parametrize(
    ("name", "data"), [("delta", b"a\nb"), ("delta", b"a\rb"), ("del\nta", b"{}"), ("d\r", b"{}")]
)
def test_encode_event_refuses_multi_line_data(name: str, data: bytes) -> None:
    with pytest.raises(ValueError, match="single lines"):
        encode_event(1, name, data)


def test_comments_and_ping() -> None:
    assert PING == b": ping\n\n"
    assert encode_comment("a\r\nb") == b": a\n: b\n\n"
    assert encode_comment("a\rb\nc") == b": a\n: b\n: c\n\n"


def test_a_comment_can_set_the_reconnection_time() -> None:
    """What a stream handed off at shutdown ends with: the client reconnects after 250 ms."""
    farewell = encode_comment("shutting down; reconnect to resume", retry_ms=250)
    assert farewell == b": shutting down; reconnect to resume\nretry: 250\n\n"
    decoder = SSEDecoder()
    assert decoder.feed(farewell) == []
    assert decoder.retry == 250
    assert decoder.comments == ["shutting down; reconnect to resume"]


@pytest.mark.parametrize("newline", ["\n", "\r", "\r\n"])
def test_decoder_accepts_every_line_ending(newline: str) -> None:
    stream = newline.join(["id: 3", "event: delta", "data: {}", "", ": ping", "", ""])
    decoder = SSEDecoder()
    events = decoder.feed(stream)
    assert [(e.id, e.event, e.data) for e in events] == [("3", "delta", "{}")]
    assert decoder.comments == ["ping"]


def test_decoder_handles_any_split_of_the_bytes() -> None:
    raw = (
        b'id: 1\r\nevent: delta\r\ndata: {"text":"\xc3\xa9"}\r\n\r\n'
        b"id: 2\r\ndata: x\r\ndata: y\r\n\r\n"
    )
    whole = [(e.id, e.event, e.data) for e in SSEDecoder().feed(raw)]
    for cut in range(1, len(raw)):
        decoder = SSEDecoder()
        text = raw.decode()
        # split on characters, not bytes: the decoder takes decoded text per chunk
        parts = decoder.feed(text[:cut]) + decoder.feed(text[cut:])
        assert [(e.id, e.event, e.data) for e in parts] == whole, cut
    assert whole == [("1", "delta", '{"text":"é"}'), ("2", "message", "x\ny")]


def test_decoder_ignores_unknown_fields_and_strips_one_space() -> None:
    events = SSEDecoder().feed("foo: bar\ndata:  two spaces\nretry: 10\n\n")
    assert events[0].data == " two spaces"
    assert events[0].retry == 10


def test_a_block_without_data_dispatches_nothing_but_sets_the_retry_and_id() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(": shutting down\nretry: 250\n\nid: 7\nevent: delta\n\n") == []
    assert decoder.retry == 250
    assert decoder.last_event_id == "7"
    [event] = decoder.feed("data: x\n\n")
    assert (event.event, event.data, event.id) == ("message", "x", None)
