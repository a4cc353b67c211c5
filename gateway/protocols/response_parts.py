"""The part types of the response view: what a policy reads and edits in a response.

:class:`Part` (a piece of text), :class:`LogprobsPart` (a run of token log-probabilities),
:class:`Block` (a block or item) and :class:`Anchor` (an offset into a part's text), with the
:data:`PartKind` and :data:`PartKey` they are typed by. The views that yield them are in
:mod:`gateway.protocols.response_view`, which re-exports all of these (import them from there).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Literal, get_args

PartKind = Literal[
    "text", "reasoning", "tool_arguments", "refusal", "logprobs", "annotation", "usage", "media"
]
"""What a content part is.

``text``: the visible answer. ``reasoning``: the model's reasoning (fields, blocks, items, and
inline ``<think>`` spans, which the adapter reports as a capability, see
:attr:`ResponseView.inline_think`). ``tool_arguments``: the arguments of a tool call.
``refusal``: a refusal message. ``logprobs``: token log-probabilities. ``annotation``: offsets
into a text part (citations). ``usage``: token counts. ``media``: generated images and audio.
"""

PART_KINDS: frozenset[str] = frozenset(get_args(PartKind))
PartKey = tuple[Hashable, ...]
TEXT_KINDS: frozenset[str] = frozenset({"text", "reasoning", "tool_arguments", "refusal"})

ReasoningDetail = Literal["", "raw", "summary", "encrypted"]
"""For ``reasoning`` parts: ``raw`` trace text, a provider ``summary``, or ``encrypted`` opaque
continuity data (Responses ``encrypted_content``, Anthropic ``redacted_thinking`` or a signature-only
thinking block) that carries no readable text."""


class Anchor:
    """An offset into the text of a part's key (the start or end of an annotation's span)."""

    __slots__ = ("_field", "_holder", "end")

    def __init__(self, holder: dict[str, Any], field: str, end: bool) -> None:
        self._holder = holder
        self._field = field
        self.end = end  # True: the offset ends a span (moves to the end of a rewritten word)

    @property
    def value(self) -> int:
        return int(self._holder[self._field])

    def move(self, value: int) -> None:
        """Point the anchor at ``value`` in the rewritten text."""
        self._holder[self._field] = value


def anchors_of(annotations: Any, inside: str | None = None) -> list[Anchor]:
    """The start/end offsets (``start_index``, ``end_index``) of a list of annotations: on each
    annotation itself (Responses), or on its member ``inside`` (chat's ``url_citation``)."""
    out: list[Anchor] = []
    for annotation in annotations if isinstance(annotations, list) else ():
        holder = annotation.get(inside) if inside and isinstance(annotation, dict) else annotation
        if not isinstance(holder, dict):
            continue
        for field, end in (("start_index", False), ("end_index", True)):
            value = holder.get(field)
            if isinstance(value, int) and not isinstance(value, bool):
                out.append(Anchor(holder, field, end))
    return out


class Block:
    """A block or item of a response (an Anthropic content block, a Responses output item).

    ``key``: ``("block", i)`` or ``("item", id)``, as the adapter builds it; ``kind``: the part
    kind of its content (``text``, ``reasoning``, ``tool_arguments``; ``""`` for other blocks).
    In a whole body, ``drop()`` removes it; in a stream, a policy drops a block by returning no
    event whose :attr:`EventView.block` is it (the engine renumbers the rest).
    """

    __slots__ = ("_remove", "key", "kind")

    def __init__(self, key: PartKey, kind: str, remove: Callable[[], None] | None = None) -> None:
        self.key = key
        self.kind = kind
        self._remove = remove

    def drop(self) -> None:
        if self._remove is None:
            raise ValueError(f"{self.key!r} is not a block of a whole body")
        self._remove()

    def __repr__(self) -> str:
        return f"Block({self.key!r}, {self.kind!r})"


def list_blocks(
    items: Any, key_of: Callable[[int, Any], PartKey], kind_of: Callable[[Any], str]
) -> Iterator[Block]:
    """The :class:`Block` of each entry of a body's list of blocks or items (``drop`` removes it).

    Over a copy, so that a block dropped while iterating does not shift the ones after it.
    """
    if not isinstance(items, list):
        return
    for position, item in enumerate(list(items)):

        def remove(item: Any = item) -> None:
            items.remove(item)

        yield Block(key_of(position, item), kind_of(item), remove)


class Part:
    """One piece of text content, read and edited in place in the body or event it came from.

    ``kind``: what it is; ``key``: whose content it is; ``delta``: True when it continues the
    key's content (a stream delta), False when it holds the whole content (a body, or a final
    object that repeats it); ``choice``: the alternative it belongs to (``n`` > 1; 0 otherwise);
    ``detail``: for reasoning, which sort (:data:`ReasoningDetail`).
    """

    __slots__ = ("_extra", "_field", "_holder", "choice", "delta", "key", "kind")

    def __init__(
        self,
        kind: PartKind,
        key: PartKey,
        holder: dict[str, Any],
        field: str,
        delta: bool = False,
        choice: int = 0,
        detail: ReasoningDetail = "",
        remove: Callable[[], None] | None = None,
        seal: Callable[[str], None] | None = None,
    ) -> None:
        # Built for every delta of every event: positional arguments and few slots keep it cheap.
        self.kind = kind
        self.key = key
        self._holder = holder
        self._field = field
        self.delta = delta
        self.choice = choice
        self._extra = (detail, remove, seal) if detail or remove is not None or seal is not None else None

    @property
    def detail(self) -> ReasoningDetail:
        return self._extra[0] if self._extra is not None else ""

    @property
    def text(self) -> str:
        value = self._holder.get(self._field)
        return value if isinstance(value, str) else ""

    def set_text(self, text: str) -> None:
        """Replace the part's text (the client sees ``text`` where the upstream's was)."""
        self._holder[self._field] = text

    def drop(self) -> None:
        """Remove the part: the field, or the block or item that is nothing but this part."""
        remove = self._extra[1] if self._extra is not None else None
        if remove is not None:
            remove()
        else:
            self._holder.pop(self._field, None)

    def raw(self) -> Any:
        """The JSON object holding the part as the API sent it (what to seal, for reasoning)."""
        return self._holder

    @property
    def sealable(self) -> bool:
        """Whether the format has a place for an opaque blob standing for this part (see :meth:`seal`)."""
        return self._extra is not None and self._extra[2] is not None

    def seal(self, blob: str) -> None:
        """Put ``blob`` where the format keeps opaque reasoning the client sends back (Responses
        ``encrypted_content``, Anthropic ``signature``, chat's ``sealed_reasoning`` field), and
        remove the readable text. A format without such a place raises ValueError."""
        seal = self._extra[2] if self._extra is not None else None
        if seal is None:
            raise ValueError(f"no place for sealed content of {self.key!r} in this format")
        seal(blob)

    def anchors(self) -> list[Anchor]:
        """Offsets into this part's text that must follow it when it is rewritten (citations)."""
        return []

    def __repr__(self) -> str:
        return f"Part({self.kind}, {self.key!r}, delta={self.delta}, text={self.text[:40]!r})"


class LogprobsPart(ABC):
    """A run of token log-probabilities of one key, in the format's own layout.

    ``prompt``: log-probabilities of prompt tokens (vLLM ``prompt_logprobs``), positions from 0
    in every event; ``echoes_prompt``: the run begins with the echoed prompt's tokens when the
    request asked for an echo (legacy completions); ``delta``: the run continues the key's
    earlier runs (positions go on from where they stopped), else it starts at position 0.
    """

    __slots__ = ("choice", "delta", "echoes_prompt", "key", "prompt")

    kind: Literal["logprobs"] = "logprobs"

    def __init__(
        self, key: PartKey, delta: bool, prompt: bool = False, echoes_prompt: bool = False, choice: int = 0
    ) -> None:
        self.key = key
        self.delta = delta
        self.prompt = prompt
        self.echoes_prompt = echoes_prompt
        self.choice = choice

    @abstractmethod
    def positions(self) -> int:
        """How many token positions the run covers."""

    @abstractmethod
    def cap(self, top_k: int) -> int:
        """Keep the ``top_k`` most likely alternatives per position (what top-k means in this format,
        best first by the upstream's values); returns how many alternatives were removed."""

    @abstractmethod
    def map_values(self, value: Callable[[Any, int, Any], Any], start: int = 0) -> None:
        """Replace each logprob ``lp`` of ``token`` at offset ``i`` by ``value(lp, start + i, token)``.

        (``start`` was added after the first API commit: additive.)"""

    def coarsen(self, top_k: int, value: Callable[[Any, int, Any], Any], start: int = 0) -> int:
        """:meth:`cap` then :meth:`map_values` (a layout may do both in one pass); returns what ``cap``
        removed. (Added after the first API commit: additive.)"""
        withheld = self.cap(top_k)
        self.map_values(value, start)
        return withheld

    @abstractmethod
    def alternatives(self) -> int:
        """How many alternatives the run carries (what :meth:`drop` withholds)."""

    @abstractmethod
    def drop(self) -> int:
        """Remove the run (the format's empty value); returns :meth:`alternatives` before it."""
