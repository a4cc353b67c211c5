"""The SSE parser: line endings, multi-line data, comments, and any chunking of the bytes."""

from __future__ import annotations

import orjson
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


def _spaced(data: dict[str, str]) -> tuple[dict[str, str], str]:
    """``data`` and a JSON text of it with spaces orjson never writes."""
    return data, "{" + ", ".join(f'"{k}" : {orjson.dumps(v).decode()}' for k, v in data.items()) + "}"


spaced_json = st.dictionaries(st.sampled_from(["a", "b"]), st.text(max_size=12), max_size=3).map(_spaced)


@given(
    st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["delta", "ping"])), spaced_json), max_size=8),
    st.lists(st.integers(1, 30), max_size=30),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
)
def test_wire_is_the_upstream_text_in_the_encoded_form(
    events: list, cuts: list[int], newline: bytes, with_id: bool
) -> None:
    # The engine forwards ``wire`` for events no stream filter saw: it must be the upstream's own JSON
    # text (not re-encoded) in the form encode() writes, whatever the chunking, and parse back to the
    # same event.
    blocks = []
    for name, (_, text) in events:
        head = (f"event: {name}\n" if name else "") + ("id: 7\n" if with_id else "")
        blocks.append(f"{head}data: {text}\n\n".encode().replace(b"\n", newline))
    raw = b"".join(blocks)
    chunks, position = [], 0
    for size in cuts:
        chunks.append(raw[position : position + size])
        position += size
    chunks.append(raw[position:])
    parsed = parse(chunks)
    assert [(e.event, e.json) for e in parsed] == [(name, data) for name, (data, _) in events]
    for event, block in zip(parsed, blocks, strict=True):
        assert event.wire == block.replace(b"\r\n", b"\n")
        (again,) = parse([event.wire])
        assert (again.event, again.id, again.json) == (event.event, event.id, event.json)


def test_events_not_parsed_from_json_have_no_wire() -> None:
    # Non-JSON payloads are re-encoded from their text, and an event a policy creates has no upstream
    # text to forward.
    assert parse([b"data: [DONE]\n\n"])[0].wire is None
    assert StreamEvent.of({"a": 1}).wire is None
