"""A format-neutral reading of one response, whole or streamed, owned by the protocol adapters.

The response side of the adapters' "one reading" (the request side is :mod:`request_view`): for a
whole body and for each stream event the adapter exposes the **content parts** it carries, each of
one :data:`PartKind` and addressed by a stable :data:`PartKey`, with edit operations. A policy
written against these types never names a field or an event type of any API, so it applies to
every family whose adapter implements the view.

Parts
    :class:`Part` is a piece of text (visible ``text``, ``reasoning``, ``tool_arguments``,
    ``refusal``): read ``text``, ``set_text``, ``drop``; ``delta`` says whether it continues
    its key's content (a stream delta) or holds all of it (a body, or a closing event that
    repeats it). :class:`LogprobsPart` is a run of token log-probabilities: ``cap``,
    ``map_values``, ``drop``. ``usage`` is read through :meth:`ResponseView.usage`.

Keys
    A :data:`PartKey` is a tuple the adapter builds; it is equal for every piece of the same
    content (all deltas of one chat choice's text, one Responses output_text part, one
    Anthropic block) and for the final objects that repeat it, so a policy keeps per-key
    state (a marker, a token counter) without parsing it. Policies treat keys as opaque.

Streams
    :class:`StreamView` is the adapter's per-stream reader. ``event(ev)`` gives an
    :class:`EventView` whose ``parts`` are the event's content, whose ``closes`` are the keys
    whose content ends at this event, and whose ``add_text`` puts text for a key at this point
    in the stream's own shape (into this event, or a delta event before it); ``events()`` is
    what to forward. ``text_event`` makes a stand-alone delta (to flush at the end of a stream
    the upstream never closed). A policy may drop events and blocks freely: the engine runs the
    adapter's :class:`StreamNumbering` after every policy filter, so sequence numbers and block
    and item indexes the client sees stay consecutive; renumbering lives there only.

The part types live in :mod:`gateway.protocols.response_parts` and are re-exported here; this
module holds the views.

Cost: views are built on demand from the already parsed JSON (``StreamEvent.json``), hold
references into it (no copies), and enumerate only the kinds asked for.

Malformed content (a delta whose text is not a string, a logprobs field of the wrong type) raises
:class:`ValueError`: inside a policy phase the engine then fails closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from gateway.protocols.numbering import IndexMap as IndexMap  # re-exported: part of the view's API
from gateway.protocols.numbering import StreamNumbering as StreamNumbering
from gateway.protocols.response_parts import PART_KINDS as PART_KINDS  # the part types: re-exported
from gateway.protocols.response_parts import TEXT_KINDS as TEXT_KINDS
from gateway.protocols.response_parts import Anchor as Anchor
from gateway.protocols.response_parts import Block as Block
from gateway.protocols.response_parts import LogprobsPart as LogprobsPart
from gateway.protocols.response_parts import Part as Part
from gateway.protocols.response_parts import PartKey as PartKey
from gateway.protocols.response_parts import PartKind as PartKind
from gateway.protocols.response_parts import ReasoningDetail as ReasoningDetail
from gateway.sse import StreamEvent

if TYPE_CHECKING:
    from gateway.protocols.base import Usage


class ResponseView:
    """The content of one whole (non-streaming) response body."""

    __slots__ = ("_usage", "body", "inline_think")

    def __init__(
        self, body: dict[str, Any], *, inline_think: bool = False, usage: Callable[[], Usage] | None = None
    ) -> None:
        self.body = body
        self._usage = usage  # the adapter's reading of the body's usage
        # The format carries reasoning inline in its text (``<think>`` spans): a policy that
        # treats reasoning must parse text parts for it; elsewhere reasoning has its own parts.
        self.inline_think = inline_think

    def parts(self, kinds: frozenset[str] = TEXT_KINDS) -> Iterator[Part | LogprobsPart]:
        """The body's parts of ``kinds``, in document order (no part of any other kind is parsed)."""
        return iter(())

    def text_parts(self, kinds: frozenset[str] = frozenset({"text"})) -> Iterator[Part]:
        """The body's text parts (visible text by default)."""
        for part in self.parts(kinds):
            if isinstance(part, Part):
                yield part

    def logprobs(self) -> Iterator[LogprobsPart]:
        for part in self.parts(_LOGPROBS):
            if isinstance(part, LogprobsPart):
                yield part

    def usage(self) -> Usage | None:
        """Token usage the body reports (None: not known here)."""
        return self._usage() if self._usage is not None else None

    def blocks(self) -> Iterator[Block]:
        """The body's blocks or items, in order (none where the format has no blocks: chat choices).

        Added after the first API commit (additive)."""
        return iter(())


_LOGPROBS = frozenset({"logprobs"})
_TEXT = frozenset({"text"})


class EventView:
    """One stream event's content, and the events to forward for it.

    ``parts(kinds)`` lists the event's parts; ``closes`` the keys whose content ends at this
    event (a ``finish_reason``, a block stop, a ``.done``), in order. ``add_text(key, text)``
    delivers more text for ``key`` at this point, before the event closes it: into the event
    itself where the format allows, else as a delta event inserted before it. ``events()`` is
    the list to return from ``StreamFilter.on_event``.
    """

    __slots__ = ("_before", "_closes", "_kinds", "_parts", "_reader", "event")

    def __init__(
        self,
        reader: StreamView,
        event: StreamEvent,
        kinds: frozenset[str] | None = None,
        parts: list[Part | LogprobsPart] | None = None,
        closes: tuple[PartKey, ...] | None = None,
    ) -> None:
        self._reader = reader
        self.event = event
        self._before: list[StreamEvent] | None = None
        # What the reader found in one pass when the caller named its kinds up front (the hot path).
        self._kinds = kinds
        self._parts = parts
        self._closes = closes

    @property
    def closes(self) -> tuple[PartKey, ...]:
        """The keys whose content ends at this event, in order."""
        if self._closes is None:
            self._closes = self._reader.closes(self.event)
        return self._closes

    def parts(self, kinds: frozenset[str] = TEXT_KINDS) -> Iterable[Part | LogprobsPart]:
        """The event's parts of ``kinds``, in order (only those kinds are parsed)."""
        if kinds is self._kinds and self._parts is not None:
            return self._parts
        return self._reader.event_parts(self.event, kinds)

    def text_parts(self, kinds: frozenset[str] = _TEXT) -> list[Part]:
        return [part for part in self._reader.event_parts(self.event, kinds) if isinstance(part, Part)]

    def logprobs(self) -> list[LogprobsPart]:
        return self._reader.event_parts(self.event, _LOGPROBS)  # type: ignore[return-value]

    @property
    def block(self) -> Block | None:
        """The block or item this event is about (its start, a delta, its stop), or None (chat
        chunks, events about the whole response). Added after the first API commit (additive)."""
        return self._reader.block_of(self.event)

    def add_text(self, key: PartKey, text: str) -> None:
        """Send ``text`` as more of ``key``'s content, at this point of the stream."""
        if text and not self._reader.append_text(self.event, key, text):
            if self._before is None:
                self._before = []
            self._before.append(self._reader.text_event(key, text, before=self.event))

    def insert_before(self, event: StreamEvent) -> None:
        """Forward ``event`` just before this one."""
        if self._before is None:
            self._before = []
        self._before.append(event)

    def events(self) -> list[StreamEvent]:
        """What to forward for this event: anything inserted, then the event."""
        if self._before is None:
            return [self.event]
        return [*self._before, self.event]


class StreamView:
    """The adapter's reader of one response stream (per exchange and policy: it may keep state).

    Family modules subclass it; the base reads nothing (an adapter without a stream view
    provides no part kinds, so policies that need some are refused before the stream starts).
    """

    __slots__ = ("inline_think",)

    def __init__(self, *, inline_think: bool = False) -> None:
        self.inline_think = inline_think

    def event(self, event: StreamEvent, kinds: frozenset[str] | None = None) -> EventView:
        """The view of ``event`` (call once per event, in stream order, before reading its parts).

        ``kinds``: the part kinds the caller will ask ``parts`` for (the same frozenset object):
        the reader then finds them and ``closes`` in one pass. (``kinds`` was added after the
        first API commit: additive.)
        """
        if kinds is None:
            self.observe(event)
            return EventView(self, event)
        parts, closes = self.read(event, kinds)
        return EventView(self, event, kinds, parts, closes)

    def read(
        self, event: StreamEvent, kinds: frozenset[str]
    ) -> tuple[list[Part | LogprobsPart], tuple[PartKey, ...]]:
        """The cheapest reading of one event, in place of :meth:`event`: its parts of ``kinds`` and
        the keys it closes, found in one pass (call once per event, in stream order). A filter that
        then needs to add or insert events wraps them: ``EventView(reader, event, kinds, parts,
        closes)``. (Added after the first API commit: additive.)"""
        self.observe(event)
        return list(self.event_parts(event, kinds)), self.closes(event)

    def observe(self, event: StreamEvent) -> None:
        """Note what later events need (block types, the first chunk); called once per event."""

    def closes(self, event: StreamEvent) -> tuple[PartKey, ...]:
        """Keys whose content ends with ``event``."""
        return ()

    def event_parts(self, event: StreamEvent, kinds: frozenset[str]) -> Iterable[Part | LogprobsPart]:
        """The parts of ``event`` of ``kinds``."""
        return ()

    def block_of(self, event: StreamEvent) -> Block | None:
        """The block or item ``event`` is about (see :attr:`EventView.block`)."""
        return None

    def append_text(self, event: StreamEvent, key: PartKey, text: str) -> bool:
        """Append ``text`` for ``key`` inside ``event`` when the format allows it there; False if not."""
        return False

    def text_event(self, key: PartKey, text: str, before: StreamEvent | None = None) -> StreamEvent:
        """A delta event carrying ``text`` for ``key`` (numbered like ``before`` when given)."""
        raise ValueError(f"this stream cannot carry more text for {key!r}")
