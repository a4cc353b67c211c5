"""Inline ``<think>...</think>`` spans in streamed text: a chunking-independent state machine.

:class:`ThinkSplitter` is fed text in whatever pieces the upstream sends and
returns :class:`Piece` s: visible ``text``, the ``open`` of a think span, its
``reasoning`` and its ``close``. Its output, concatenated, does not depend on
where the input was cut, so a streamed answer and the same answer in one piece
are split identically.

Rules (``tags`` are names, ``think`` by default):

* Outside a span, ``<name>`` opens a span; it ends at ``</name>``, or at the
  end of the text (an unterminated span is still reasoning).
* ``open_at_start``: the text starts inside an implicit span (chat templates
  that pre-fill ``<think>``); it ends at the first closing tag of any name.
* A closing tag with no opening tag, seen before any visible text (only
  whitespace so far), closes an implicit span: what came before it was
  reasoning. A closing tag after visible text is left as text and counted in
  ``stray_closes`` (a sign that ``assume_open_think`` should be on).
* A whole text (a non-streamed answer, in hand at once) in which a closing tag comes before any
  opening tag starts inside an implicit span, whatever ``open_at_start`` says
  (:func:`opens_implicitly`): a stream has to decide before the tag arrives, a whole body does not.
* Text inside a span is never parsed for tags other than its closing tag, so
  nested opening tags are reasoning text.

Hold-back: at most ``len("</name>") - 1`` characters (a possible tag prefix at
the end of the input so far), plus leading whitespace until the first visible
character (it may turn out to precede an implicit span's closing tag).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

PieceKind = Literal["text", "open", "reasoning", "close"]


@dataclass(slots=True)
class Piece:
    """A run of input. ``start`` is its offset in the whole input; ``tag`` names the span's tag."""

    kind: PieceKind
    text: str
    start: int
    tag: str = ""


def opens_implicitly(text: str, tags: Sequence[str]) -> bool:
    """Whether ``text``, complete, has a closing tag before any opening tag (a pre-filled span)."""
    first_close = min((at for tag in tags if (at := text.find(f"</{tag}>")) >= 0), default=-1)
    if first_close < 0:
        return False
    return not any(0 <= text.find(f"<{tag}>") < first_close for tag in tags)


@functools.lru_cache(maxsize=64)
def _tag_tables(tags: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str], int, frozenset[str]]:
    """The opening and closing tags of ``tags`` (text to name), the longest closing tag's length, and
    every proper prefix of every tag (for the hold-back test at the end of the buffer)."""
    opens = {f"<{tag}>": tag for tag in tags}
    closes = {f"</{tag}>": tag for tag in tags}
    prefixes = frozenset(t[:i] for t in (*opens, *closes) for i in range(1, len(t)))
    return opens, closes, max(len(t) for t in closes), prefixes


class ThinkSplitter:
    """Splits one text stream (one choice's content) into visible text and think spans."""

    __slots__ = (
        "_at_start",
        "_buf",
        "_closes",
        "_consumed",
        "_first_tag",
        "_inside",
        "_longest",
        "_opens",
        "_prefixes",
        "stray_closes",
    )

    def __init__(self, tags: Sequence[str], *, open_at_start: bool = False) -> None:
        if not tags:
            raise ValueError("ThinkSplitter needs at least one tag name")
        # Shared by every splitter of the same tags (read only): built once, not per stream.
        self._opens, self._closes, self._longest, self._prefixes = _tag_tables(tuple(tags))
        self._first_tag = tags[0]
        self._buf = ""
        self._consumed = 0  # input offset of _buf[0]
        self._at_start = True  # no visible non-whitespace text emitted yet
        # None: outside a span; "": inside an implicit span (any closing tag ends it); else the tag.
        self._inside: str | None = "" if open_at_start else None
        self.stray_closes = 0

    @property
    def inside(self) -> bool:
        return self._inside is not None

    def start_pieces(self) -> list[Piece]:
        """The implicit span's opening, if the text starts inside one (call once, before feeding)."""
        return [Piece("open", "", 0, "")] if self._inside == "" else []

    def passes(self, text: str) -> bool:
        """Fast path: ``text`` is plain visible text (nothing held, no ``<``); consume it if so."""
        if self._inside is None and not self._buf and not self._at_start and "<" not in text:
            self._consumed += len(text)
            return True
        return False

    def feed(self, text: str) -> list[Piece]:
        out: list[Piece] = []
        if not text:
            return out
        self._buf += text
        while self._buf:
            if self._inside is None:
                if not self._outside(out):
                    break
            elif not self._in_span(out):
                break
        return out

    def close(self) -> list[Piece]:
        """End of text: flush what was held; an open span ends here."""
        out: list[Piece] = []
        if self._inside is not None:
            if self._buf:
                out.append(Piece("reasoning", self._buf, self._consumed, self._inside))
            out.append(Piece("close", "", self._consumed + len(self._buf), self._inside or self._first_tag))
            self._inside = None
        elif self._buf:
            out.append(Piece("text", self._buf, self._consumed))
        self._consumed += len(self._buf)
        self._buf = ""
        return out

    def _take(self, length: int) -> tuple[str, int]:
        text, start = self._buf[:length], self._consumed
        self._buf = self._buf[length:]
        self._consumed += length
        return text, start

    def _find(self, candidates: dict[str, str]) -> tuple[int, str]:
        best, found = -1, ""
        buf = self._buf
        for tag_text in candidates:
            at = buf.find(tag_text)
            if at >= 0 and (best < 0 or at < best):
                best, found = at, tag_text
        return best, found

    def _held(self) -> int:
        """How many characters at the end of the buffer could begin a tag."""
        buf = self._buf
        lowest = max(0, len(buf) - self._longest + 1)
        at = buf.find("<", lowest)
        while at >= 0:
            if buf[at:] in self._prefixes:
                return len(buf) - at
            at = buf.find("<", at + 1)
        return 0

    def _emit_text(self, out: list[Piece], length: int) -> None:
        if length <= 0:
            return
        text, start = self._take(length)
        out.append(Piece("text", text, start))
        if self._at_start and not text.isspace():
            self._at_start = False

    def _outside(self, out: list[Piece]) -> bool:
        at_open, open_text = self._find(self._opens)
        at_close, close_text = self._find(self._closes)
        if at_close >= 0 and (at_open < 0 or at_close < at_open):
            before = self._buf[:at_close]
            if self._at_start and (not before or before.isspace()):
                # A closing tag before any visible text closes an implicit span.
                tag = self._closes[close_text]
                out.append(Piece("open", "", self._consumed, tag))
                if before:
                    text, start = self._take(len(before))
                    out.append(Piece("reasoning", text, start, tag))
                text, start = self._take(len(close_text))
                out.append(Piece("close", text, start, tag))
                return True
            self.stray_closes += 1
            self._emit_text(out, at_close + len(close_text))
            return True
        if at_open >= 0:
            self._emit_text(out, at_open)
            tag = self._opens[open_text]
            text, start = self._take(len(open_text))
            out.append(Piece("open", text, start, tag))
            self._inside = tag
            return True
        visible = len(self._buf) - self._held()
        if self._at_start and self._buf[:visible].isspace():
            return False  # leading whitespace waits for the first visible character
        self._emit_text(out, visible)
        return False

    def _in_span(self, out: list[Piece]) -> bool:
        tag = self._inside
        if tag:
            close_text = f"</{tag}>"
            at = self._buf.find(close_text)
        else:
            at, close_text = self._find(self._closes)
            tag = self._closes.get(close_text, self._first_tag)
        if at >= 0:
            if at:
                text, start = self._take(at)
                out.append(Piece("reasoning", text, start, tag))
            text, start = self._take(len(close_text))
            out.append(Piece("close", text, start, tag))
            self._inside = None
            return True
        reasoning = len(self._buf) - self._held()
        if reasoning > 0:
            text, start = self._take(reasoning)
            out.append(Piece("reasoning", text, start, tag))
        return False
