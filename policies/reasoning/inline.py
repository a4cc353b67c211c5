"""One text stream (a choice's content) rewritten by the mode: think spans out, replacements in."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.plugins import Interval
from policies.reasoning.think import Piece, ThinkSplitter

if TYPE_CHECKING:
    from policies.reasoning.withhold import Withholder


@dataclass(frozen=True, slots=True)
class ThinkSettings:
    """Inline-tag parsing for one exchange (None when ``think_tags`` is empty)."""

    tags: tuple[str, ...]
    assume_open: bool


def think_settings(
    tags: list[str], assume_open: bool | str, models: list[str], model: str | None
) -> ThinkSettings | None:
    if not tags:
        return None
    if assume_open == "auto":
        name = (model or "").lower()
        assume_open = any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in models)
    return ThinkSettings(tuple(tags), bool(assume_open))


class ThinkRewriter:
    """Feeds a :class:`ThinkSplitter` and renders its pieces for the mode (the treatment's InlineText).

    ``feed`` returns the text to forward and the intervals of the input that it
    forwards verbatim, relative to the start of the text just fed (held-back
    text released later has negative offsets), which is what logprob
    filtering needs.
    """

    __slots__ = ("_chars", "_pending", "_raw", "_seal", "fed", "splitter", "withholder")

    def __init__(self, tags: Sequence[str], open_at_start: bool, withholder: Withholder) -> None:
        self.splitter = ThinkSplitter(tags, open_at_start=open_at_start)
        self.withholder = withholder
        self._seal = withholder.mode == "seal"
        self._raw: list[str] = []
        self._chars = 0
        self._pending: list[Piece] = self.splitter.start_pieces()
        self.fed = 0

    def feed(self, text: str) -> tuple[str, list[Interval] | None]:
        """(text to forward, intervals forwarded verbatim; None when all of ``text`` passes unchanged)."""
        origin = self.fed
        self.fed += len(text)
        if not self._pending and self.splitter.passes(text):
            return text, None
        pieces = self.splitter.feed(text)
        if self._pending:
            pieces = self._pending + pieces
            self._pending = []
        return self._render(pieces, origin)

    def close(self, origin: int | None = None) -> tuple[str, list[Interval]]:
        """Flush at the end of the text. ``origin``: offset the intervals are relative to."""
        pieces = self._pending + self.splitter.close()
        self._pending = []
        self.withholder.ledger.stray_closes += self.splitter.stray_closes
        return self._render(pieces, self.fed if origin is None else origin)

    def _render(self, pieces: list[Piece], origin: int) -> tuple[str, list[Interval]]:
        out: list[str] = []
        visible: list[Interval] = []
        for piece in pieces:
            kind = piece.kind
            if kind == "text":
                out.append(piece.text)
                start = piece.start - origin
                if visible and visible[-1][1] == start:
                    visible[-1] = (visible[-1][0], start + len(piece.text))
                else:
                    visible.append((start, start + len(piece.text)))
            elif kind == "reasoning":
                self._chars += len(piece.text)
                if self._seal:
                    self._raw.append(piece.text)
            elif kind == "open":
                self._chars = 0
                self._raw = [piece.text] if self._seal else []
            else:  # close
                if self._seal:
                    self._raw.append(piece.text)
                out.append(self.withholder.think_replacement(piece.tag, "".join(self._raw), self._chars))
                self._raw = []
                self._chars = 0
        return "".join(out), visible
