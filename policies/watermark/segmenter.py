"""Splitting streamed text into whitespace-delimited chunks and telling prose words from protected text.

The scanner is fed text in any pieces and returns :class:`Chunk` objects as
soon as each chunk is complete, i.e. when the whitespace after it arrives. It
holds back only the trailing partial chunk and the whitespace before it (at most
one word); a chunk longer than :data:`MAX_WORD` characters cannot be a dictionary
word and is released as it arrives.

Protected text is never changed. It is tracked by a small state machine over the
characters: fenced code blocks (```` ``` ```` / ``~~~``), inline code, ``$`` math,
double quotes (straight and curly), single quotes (curly, and straight ones that
open before a letter), ``{...}`` (JSON), block quotes (``>`` lines) and indented
code lines, and inline reasoning spans (``<think>...</think>``, for the tag names
configured; with ``think_open`` the text starts inside one, which ends at the
first closing tag, as chat templates that pre-fill ``<think>`` produce). Quotes
and inline code do not run past a blank line; think spans do. Chunks that hold
URLs, e-mail addresses, paths, identifiers, markup or digits are not words
(:data:`WORD` decides), so they pass through as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_WORD = 48
# lead punctuation, a word (letters, inner apostrophes and hyphens), trail punctuation
WORD = re.compile(r"([(\[*_]*)([A-Za-z](?:[A-Za-z'\u2019-]*[A-Za-z])?)([.,;:!?)\]*_]*)")
_PIECES = re.compile(r"\s+|\S+")
_SPECIALS = re.compile(r"[`~$\"\u201c\u201d\u2018\u2019'{}]")
_STATEFUL = re.compile(r"[`~$\"\u201c\u201d\u2018\u2019'{}<]")  # _SPECIALS and the start of a think tag
_MARKER = re.compile(r"(?:[-*+#>|]+|\d{1,3}[.)])")  # list, heading and table markers


def split_word(text: str) -> tuple[str, str, str] | None:
    """The groups of ``WORD.fullmatch(text)`` (lead, word, trail), or None; plain words skip the regex."""
    if text.isascii():
        if text.isalpha():
            return ("", text, "")
        if text[-1] in ".,;:!?" and text[:-1].isalpha():
            return ("", text[:-1], text[-1])
    match = WORD.fullmatch(text)
    if match is None:
        return None
    lead, word, trail = match.groups()  # all three groups always take part (possibly empty)
    return lead, word, trail


def _can_hold(text: str) -> bool:
    """Whether ``text`` can be held back as (part of) one chunk: no whitespace (ASCII only, the quick
    test) and not too long to be a word."""
    return 0 < len(text) <= MAX_WORD and text.isascii() and text.isprintable() and " " not in text


@dataclass(slots=True)
class Chunk:
    """A complete chunk with the whitespace before it.

    ``released`` chunks were already passed on (too long to be a word); only
    their effect on the context matters.
    """

    ws: str
    text: str
    next_char: str
    protected: bool
    line_start: bool
    word: tuple[str, str, str] | None  # (lead, word, trail): the groups of WORD, None when not a word
    released: bool = False

    @property
    def marker(self) -> bool:
        """A list, heading or table marker at the start of a line (the next word starts a sentence)."""
        return self.line_start and _MARKER.fullmatch(self.text) is not None


class Protection:
    """The protected-span state machine (see the module docstring)."""

    __slots__ = (
        "active",
        "brace",
        "curly_double",
        "curly_single",
        "dquote",
        "fence",
        "inline",
        "line",
        "math",
        "squote",
        "think",
        "think_tags",
    )

    def __init__(self, think_tags: tuple[str, ...] = (), think_open: bool = False) -> None:
        self.think_tags = think_tags
        # None: outside a think span; "": an implicit span (any closing tag ends it); else its tag name
        self.think: str | None = "" if think_open and think_tags else None
        self.fence: tuple[str, int] | None = None
        self.inline = 0
        self.math = 0
        self.dquote = False
        self.squote = False
        self.curly_double = 0
        self.curly_single = 0
        self.brace = 0
        self.line = False  # block quote or indented code line
        # inside a protected span: kept up to date by every method that changes the state
        self.active = self._active()

    def _active(self) -> bool:
        return bool(
            self.think is not None
            or self.fence
            or self.inline
            or self.math
            or self.dquote
            or self.squote
            or self.curly_double
            or self.curly_single
            or self.brace
            or self.line
        )

    def whitespace(self, ws: str) -> None:
        newlines = ws.count("\n")
        if newlines:
            self.line = False
        if newlines >= 2:
            # A blank line ends a paragraph: quotes and inline spans do not cross it.
            self.inline = self.math = 0
            self.dquote = self.squote = False
            self.curly_double = self.curly_single = 0
        self.active = self._active()

    def chunk(self, text: str, line_start: bool, indent: int, next_char: str) -> None:
        """Update the state with one complete chunk."""
        self._chunk(text, line_start, indent, next_char)
        self.active = self._active()

    def _chunk(self, text: str, line_start: bool, indent: int, next_char: str) -> None:
        if self.think_tags and self._think(text):
            return
        start = 0
        if line_start and self.fence is None and indent >= 4:
            self.line = True
        if line_start and indent <= 3:
            run = len(text) - len(text.lstrip(text[0])) if text[0] in "`~" else 0
            if self.fence is not None:
                char, size = self.fence
                if text[0] == char and run >= size:
                    self.fence = None
                return
            if run >= 3 and not self.inline:
                self.fence = (text[0], run)
                return
            if text[0] == ">":
                self.line = True
        if self.fence is not None:
            return
        specials = list(_SPECIALS.finditer(text))
        index = 0
        while index < len(specials):
            match = specials[index]
            char = match.group()
            position = match.start()
            end = position + 1
            # extend a run of the same character
            while index + 1 < len(specials) and specials[index + 1].start() == end and text[end] == char:
                index += 1
                end += 1
            index += 1
            run = end - position
            before = text[position - 1] if position > start else " "
            after = text[end] if end < len(text) else (next_char or " ")
            self._delimiter(char, run, before, after)

    def _think(self, text: str) -> bool:
        """Track think spans; True when the chunk was inside one (nothing else in it is parsed)."""
        if self.think is not None:
            names = self.think_tags if self.think == "" else (self.think,)
            if any(f"</{name}>" in text for name in names):
                self.think = None
            return True
        if self.fence is not None or self.inline or self.math:
            return False
        for name in self.think_tags:
            at = text.find(f"<{name}>")
            if at >= 0:
                self.think = None if f"</{name}>" in text[at:] else name
                return True
        return False

    def _delimiter(self, char: str, run: int, before: str, after: str) -> None:
        if char == "`":
            if not self.inline:
                if not self.math:
                    self.inline = run
            elif self.inline == run:
                self.inline = 0
            return
        if self.inline:
            return
        if char == "$":
            if self.math:
                if run == self.math:
                    self.math = 0
            elif run >= 2 or not (after.isspace() or after.isdigit()):
                self.math = min(run, 2)
            return
        if self.math:
            return
        if char == '"':
            if run % 2:
                self.dquote = not self.dquote
        elif char == "\u201c":
            self.curly_double += run
        elif char == "\u201d":
            self.curly_double = max(0, self.curly_double - run)
        elif char == "\u2018":
            self.curly_single += run
        elif char == "\u2019":
            if self.curly_single and not after.isalnum():
                self.curly_single -= 1
        elif char == "'":
            if self.squote:
                if not before.isspace() and not after.isalnum():
                    self.squote = False
            elif (before.isspace() or before in "([{") and after.isalnum():
                self.squote = True
        elif char == "{":
            self.brace += run
        elif char == "}":
            self.brace = max(0, self.brace - run)
        # "~" outside a fence is plain text


class Scanner:
    """Incremental chunker: ``feed(text)`` and ``finish()`` return what is ready, in order.

    Returns a list of :class:`Chunk` and plain strings; strings are text to pass
    on unchanged (a released long chunk, trailing whitespace at the end).
    """

    __slots__ = ("_at_start", "_chunk", "_chunk_ws", "_long", "_ws", "state")

    def __init__(self, think_tags: tuple[str, ...] = (), think_open: bool = False) -> None:
        self.state = Protection(think_tags, think_open)
        self._ws = ""
        self._chunk = ""
        self._chunk_ws = ""
        self._long = False
        self._at_start = True

    @property
    def partial(self) -> tuple[str, str] | None:
        """(whitespace before, text) of the chunk in progress while it is held back; None when there is none.

        A chunk too long to be a word is passed on as it arrives, so it is never partial.
        """
        if not self._chunk or self._long:
            return None
        return self._chunk_ws, self._chunk

    @property
    def at_start(self) -> bool:
        """No chunk has completed yet (the next one starts a line)."""
        return self._at_start

    def plain_partial(self, following: str) -> tuple[str, str] | None:
        """(whitespace before, text) of the chunk in progress if whitespace and ``following`` would
        complete it plainly and make ``following`` the chunk in progress; None otherwise.

        That is: a chunk held back, not at a line start, outside protected text and with no
        character that may change the protection state in it, so it completes unprotected, and
        ``following`` can start the next (:func:`_can_hold`). Changes nothing: the caller writes
        the completed chunk and calls :meth:`start_word`.
        """
        chunk = self._chunk
        ws = self._chunk_ws
        if (
            not chunk
            or self._long
            or self._ws
            or self._at_start
            or "\n" in ws
            or self.state.active
            or not _can_hold(following)
            or _STATEFUL.search(chunk) is not None
        ):
            return None
        return ws, chunk

    def start_word(self, ws: str, text: str) -> None:
        """Take ``ws`` + ``text`` (one whitespace character, then the ``following`` text) after
        :meth:`plain_partial` said the chunk in progress completes plainly: that chunk is done
        (its caller wrote it) and ``text`` is the new chunk in progress, held back."""
        self._chunk_ws = ws
        self._chunk = text

    def extend(self, text: str) -> bool:
        """Take ``text`` if it only extends the chunk in progress: a chunk is held back and ``text``
        holds no whitespace and keeps it short enough to be a word. :meth:`feed` would return
        nothing for it (a chunk completes at whitespace only); False (nothing changed) otherwise."""
        chunk = self._chunk
        if not chunk or self._long or not _can_hold(text) or len(chunk) + len(text) > MAX_WORD:
            return False
        self._chunk = chunk + text
        return True

    def feed(self, text: str) -> list[Chunk | str]:
        out: list[Chunk | str] = []
        ws, chunk, long = self._ws, self._chunk, self._long
        for piece in _PIECES.findall(text):
            if piece[0].isspace():
                if chunk:
                    out.append(self._complete(self._chunk_ws, chunk, piece[0], long))
                    chunk, long = "", False
                ws += piece
                continue
            if not chunk:
                self._chunk_ws, ws = ws, ""
            chunk += piece
            if long:
                out.append(piece)
            elif len(chunk) > MAX_WORD:
                long = True
                out.append(self._chunk_ws + chunk)
        self._ws, self._chunk, self._long = ws, chunk, long
        return out

    def finish(self) -> list[Chunk | str]:
        out: list[Chunk | str] = []
        if self._chunk:
            out.append(self._complete(self._chunk_ws, self._chunk, "", self._long))
            self._chunk, self._long = "", False
        if self._ws:
            out.append(self._ws)
            self._ws = ""
        return out

    def _complete(self, ws: str, text: str, next_char: str, released: bool) -> Chunk:
        """The chunk ``text`` after ``ws``, now that the character after it is known."""
        if self._at_start or "\n" in ws:
            line_start = True
            tail = ws.rsplit("\n", 1)[-1]
            indent = len(tail) + 3 * tail.count("\t")
            self._at_start = False
        else:
            line_start = False
            indent = 0
        state = self.state
        if "\n" in ws:
            state.whitespace(ws)
        protected = state.active
        if line_start or _STATEFUL.search(text) is not None:
            # only these can change the state (otherwise chunk() would leave it as it is)
            state.chunk(text, line_start, indent, next_char)
            protected = protected or state.active
        word = None if released else split_word(text)
        return Chunk(ws, text, next_char, protected, line_start, word, released)
