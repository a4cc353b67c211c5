"""The SSE parser: line endings, multi-line data, comments, and any chunking of the bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sse import SSEParser, StreamEvent


def parse(chunks: list[bytes]) -> list[StreamEvent]:
    parser = SSEParser()
    events = [e for chunk in chunks for e in parser.feed(chunk)]
    events.extend(parser.close())
    return events


def test_basic_events_and_done() -> None:
    events = parse([b'data: {"a": 1}\n\nevent: x\ndata: {"b": 2}\n\ndata: [DONE]\n\n'])
    assert [e.json for e in events] == [{"a": 1}, {"b": 2}, None]
    assert events[1].event == "x"
    assert events[2].data == "[DONE]"


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings(newline: bytes) -> None:
    raw = b"event: a" + newline + b'data: {"k": 1}' + newline + newline
    assert [(e.event, e.json) for e in parse([raw])] == [("a", {"k": 1})]


def test_crlf_split_between_chunks() -> None:
    events = parse([b'data: {"k": 1}\r', b"\n\r", b"\n"])
    assert [e.json for e in events] == [{"k": 1}]


def test_comments_and_multiline_data() -> None:
    events = parse([b": ping\n\ndata: line one\ndata: line two\n\n"])
    assert [e.data for e in events] == ["line one\nline two"]


def test_unterminated_final_event_is_dispatched_on_close() -> None:
    assert [e.json for e in parse([b'data: {"x": true}'])] == [{"x": True}]


def test_broken_json_raises() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        parse([b"data: {not json\n\n"])


def test_multibyte_utf8_split() -> None:
    raw = 'data: {"t": "héllo ☃"}\n\n'.encode()
    cut = raw.index("☃".encode()) + 1
    assert parse([raw[:cut], raw[cut:]])[0].json == {"t": "héllo ☃"}


def test_encode_roundtrip() -> None:
    event = StreamEvent.of({"type": "message_stop"}, event="message_stop")
    assert [(e.event, e.json) for e in parse([event.encode()])] == [
        ("message_stop", {"type": "message_stop"})
    ]
    assert parse([StreamEvent("[DONE]").encode()])[0].data == "[DONE]"


payloads = st.lists(
    st.tuples(
        st.one_of(st.none(), st.sampled_from(["message_start", "content_block_delta", "ping"])),
        st.dictionaries(st.sampled_from(["a", "b", "text"]), st.text(max_size=20), max_size=3),
    ),
    max_size=12,
)


@given(payloads, st.lists(st.integers(1, 40), max_size=40), st.sampled_from([b"\n", b"\r\n"]))
def test_any_chunking_gives_the_same_events(events: list, cuts: list[int], newline: bytes) -> None:
    raw = b"".join(StreamEvent.of(data, event=name).encode().replace(b"\n", newline) for name, data in events)
    chunks, position = [], 0
    for size in cuts:
        chunks.append(raw[position : position + size])
        position += size
    chunks.append(raw[position:])
    parsed = parse(chunks)
    assert [(e.event, e.json) for e in parsed] == [(name, data) for name, data in events]
