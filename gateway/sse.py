"""Server-sent events: an incremental parser and the event type the policies see.

The parser follows the WHATWG event-stream rules that matter for model APIs:
``\\n``, ``\\r\\n`` and ``\\r`` line ends, multi-line ``data``, ``event`` and
``id`` fields, comment lines (``: ping``) and an event dispatched on a blank
line. It is fed bytes in whatever pieces the network delivers and yields whole
events, so a field or a UTF-8 sequence split across reads is handled.
"""

from __future__ import annotations

from typing import Any

import orjson

_NOT_JSON = object()


class StreamEvent:
    """One SSE event. ``json`` is the parsed ``data`` when it is a JSON object.

    Policies read and modify ``json`` in place; the engine re-encodes the event
    when it forwards it. ``data`` holds the raw text of non-JSON payloads such
    as OpenAI's ``[DONE]`` sentinel (it is empty when ``json`` is set).

    ``wire`` is the event as the parser read it, in the form :meth:`encode`
    writes, with the upstream's own JSON text: the engine forwards it instead
    of re-encoding when no stream filter has seen the event (no filter, no
    chance that ``json`` was changed: the protocol adapters only read events).
    Events made any other way have none.
    """

    __slots__ = ("data", "event", "id", "json", "wire")

    def __init__(
        self,
        data: str = "",
        *,
        event: str | None = None,
        id: str | None = None,
        json: dict[str, Any] | None = None,
    ) -> None:
        self.data = data
        self.event = event
        self.id = id
        self.json = json
        self.wire: bytes | None = None

    @classmethod
    def of(cls, payload: dict[str, Any], event: str | None = None) -> StreamEvent:
        """An event carrying a JSON object (what policies create when they emit)."""
        return cls(event=event, json=payload)

    def head(self) -> bytes:
        """The ``event`` and ``id`` lines of the wire form."""
        head = b""
        if self.event is not None:
            head = b"event: " + self.event.encode() + b"\n"
        if self.id is not None:
            head += b"id: " + self.id.encode() + b"\n"
        return head

    def encode(self) -> bytes:
        """The wire form, ending in the blank line that dispatches the event."""
        if self.event is None and self.id is None and self.json is not None:
            return b"".join((b"data: ", orjson.dumps(self.json), b"\n\n"))  # the usual event
        parts: list[bytes] = []
        if self.event is not None:
            parts.append(b"event: " + self.event.encode() + b"\n")
        if self.id is not None:
            parts.append(b"id: " + self.id.encode() + b"\n")
        if self.json is not None:
            parts.append(b"data: " + orjson.dumps(self.json) + b"\n\n")
        else:
            for line in self.data.split("\n"):
                parts.append(b"data: " + line.encode() + b"\n")
            parts.append(b"\n")
        return b"".join(parts)

    def copy(self) -> StreamEvent:
        """A deep copy (used for shadow-mode policies, which must change nothing)."""
        return StreamEvent(
            self.data,
            event=self.event,
            id=self.id,
            json=orjson.loads(orjson.dumps(self.json)) if self.json is not None else None,
        )

    def __repr__(self) -> str:
        body = self.json if self.json is not None else self.data
        return f"StreamEvent(event={self.event!r}, data={body!r})"


class SSEParser:
    """Incremental event-stream parser: ``feed(bytes)`` yields complete events.

    Data lines are parsed as JSON when they look like an object; a payload that
    starts with ``{`` but does not parse raises :class:`ValueError`, so callers
    can treat upstream garbage as a protocol error instead of forwarding it.
    """

    __slots__ = ("_buffer", "_data", "_event", "_id", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: str | None = None
        self._id: str | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """The events ``chunk`` completes, in order (a list: callers take them all at once)."""
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = False
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):
                # A lone CR at the end may be the first half of CRLF.
                self._pending_cr = True
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        out: list[StreamEvent] = []
        start = 0
        if not self._data and self._event is None:
            # The shapes model APIs send, whole: "data: X" or "event: E" + "data: X", then a blank
            # line; taken a block at a time. Anything else (and an event begun in an earlier
            # chunk) goes line by line below, from where this stopped.
            find = buffer.find
            append = out.append
            loads = orjson.loads
            while True:
                end = find(b"\n\n", start)
                if end < 0:
                    break
                name = None
                newline = find(b"\n", start, end)
                if newline >= 0:
                    if not buffer.startswith(b"event: ", start):
                        break
                    name_end, start_data = newline, newline + 1
                    if find(b"\n", start_data, end) >= 0:
                        break
                    name = buffer[start + 7 : name_end]
                    if not buffer.startswith(b"data: ", start_data):
                        break
                else:
                    start_data = start
                    if not buffer.startswith(b"data: ", start):
                        break
                    if self._id is None and buffer.startswith(b"{", start + 6):
                        # The usual event, inlined: its wire form is this very block of the buffer.
                        try:
                            parsed = loads(buffer[start + 6 : end])
                        except orjson.JSONDecodeError as exc:
                            raise ValueError(f"stream event data is not valid JSON: {exc}") from None
                        if type(parsed) is dict:
                            append(_parsed(parsed, buffer[start : end + 2]))
                            start = end + 2
                            continue
                raw = buffer[start_data + 6 : end]
                start = end + 2
                append(self._event_of(raw, None if name is None else name.decode("utf-8")))
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if not line:
                event = self._dispatch()
                if event is not None:
                    out.append(event)
                continue
            self._field(line)
        self._buffer = buffer[start:]
        return out

    def close(self) -> list[StreamEvent]:
        """Flush at end of input: a final event without its blank line is still dispatched."""
        if self._buffer:
            self._field(self._buffer)
            self._buffer = b""
        event = self._dispatch()
        return [] if event is None else [event]

    def _field(self, line: bytes) -> None:
        if line.startswith(b"data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(b" ") else value)
            return
        if line.startswith(b":"):
            return
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"event":
            self._event = value.decode("utf-8")
        elif name == b"id":
            self._id = value.decode("utf-8")
        # 'retry' and unknown fields are ignored, as the standard says.

    def _dispatch(self) -> StreamEvent | None:
        lines = self._data
        if not lines:
            self._event = None
            return None
        raw = lines[0] if len(lines) == 1 else b"\n".join(lines)
        self._data = []
        name, self._event = self._event, None
        return self._event_of(raw, name)

    def _event_of(self, raw: bytes, name: str | None) -> StreamEvent:
        if raw.startswith(b"{"):
            # Parsed from the bytes (no str round trip); JSON events keep no raw text.
            parsed = _loads(raw)
            if isinstance(parsed, dict):
                event = StreamEvent("", event=name, id=self._id, json=parsed)
                if name is None and self._id is None:
                    event.wire = b"data: " + raw + b"\n\n"
                else:
                    event.wire = event.head() + b"data: " + raw + b"\n\n"
                return event
        return StreamEvent(raw.decode("utf-8"), event=name, id=self._id)


def _loads(raw: bytes) -> Any:
    """The JSON of an event's data (it starts with ``{``); ValueError when it is not valid JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"stream event data is not valid JSON: {exc}") from None


_new = object.__new__


def _parsed(payload: dict[str, Any], wire: bytes) -> StreamEvent:
    """A parsed ``data:`` event with no name or id: StreamEvent(json=payload) with its wire text,
    without the keyword call (a third of the parse of a token's event)."""
    event: StreamEvent = _new(StreamEvent)
    event.data = ""
    event.event = None
    event.id = None
    event.json = payload
    event.wire = wire
    return event
