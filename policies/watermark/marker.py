"""Marking one stream of assistant text: the scanner, the lexical scheme and the unicode tripwire together.

:class:`TextMarker` is fed the text of one choice / content block in whatever
pieces arrive and returns the marked text as soon as it is final; ``finish()``
returns the rest. Whatever the pieces, the concatenated output is the same as
for the whole text at once (the re-chunking property tests check it). It holds
back at most the trailing partial word and the whitespace before it, and, after
an ambiguous contraction (``it's``, ``I'd``), its two-character clitic until the
next word shows whether it may be split (``it's a`` -> ``it is a``). A partial
word that the tier could not rewrite whatever follows (:mod:`.early`) is passed
on at once instead of waiting for the whitespace after it: what goes out early
is always a prefix of what the marker would write, and the marker checks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from policies.watermark.dictionary import SENTENCE_START, Dictionary, load_dictionary, reachable
from policies.watermark.early import triggers_for
from policies.watermark.lexical import LexicalTracker, Unit, keyed_choice
from policies.watermark.segmenter import Chunk, Scanner
from policies.watermark.unicode_mark import UnicodeMarker


@dataclass(frozen=True, slots=True)
class LexicalSettings:
    """How strongly the lexical scheme marks (per tier and risk level)."""

    density: float = 1.0  # fraction of eligible positions that carry the mark (keyed gate)
    enforce: float = 1.0  # fraction of marked positions where the keyed choice is enforced
    classes: frozenset[str] = frozenset({"spelling", "contraction", "function", "connective", "compound"})
    strength: str = "exact"  # "exact": exact equivalents only; "near": plus the guarded near synonyms

    def allows(self, cls: str) -> bool:
        return cls in self.classes or (cls == "near" and self.strength == "near")


# Every place the tracker reads a word: a letter, then letters, inner apostrophes and hyphens. On a
# word chunk the first match is exactly WORD's core (lead and trail characters are outside the class).
_CORE = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*")


_MARKABLE: dict[tuple[int, LexicalSettings], tuple[Dictionary, frozenset[str]]] = {}


def markable_words(dictionary: Dictionary, settings: LexicalSettings) -> frozenset[str]:
    """The words that can end a unit whose group ``settings`` marks (lower case, ASCII apostrophes).

    A text holding none of them comes out of the marker exactly as it went in: every other
    word is written as it is (the decision is only asked for units of an allowed class).
    Computed once per dictionary and settings (the dictionary is kept so its id stays its own).
    """
    cached = _MARKABLE.get((id(dictionary), settings))
    if cached is not None and cached[0] is dictionary:
        return cached[1]
    words = {word for word, group in dictionary.single.items() if settings.allows(group.cls)}
    words |= {
        word for word, groups in dictionary.guarded.items() if any(settings.allows(g.cls) for g in groups)
    }
    words |= {second for (_, second), group in dictionary.phrase.items() if settings.allows(group.cls)}
    if len(_MARKABLE) >= 64:  # a handful in a gateway (one per strength and tier); tests build more
        _MARKABLE.clear()
    _MARKABLE[(id(dictionary), settings)] = (dictionary, frozenset(words))
    return _MARKABLE[(id(dictionary), settings)][1]


_ACTIVE: dict[tuple[int, LexicalSettings | None], tuple[Dictionary, frozenset[str]]] = {}


def active_words(dictionary: Dictionary, settings: LexicalSettings | None) -> frozenset[str]:
    """The words the tracker may do more with than write them as they came (lower case).

    The words a unit of a class ``settings`` writes can end with (:func:`markable_words`), and
    every word of a pronoun group, whatever its class: an ambiguous contraction (``it's``) is
    held for the next word even where it is never rewritten. After any other word, the
    tracker's state is what its plain-word branch leaves (the history, the boundary), whether
    the word is in the vocabulary or not. Computed once per dictionary and settings.
    """
    cached = _ACTIVE.get((id(dictionary), settings))
    if cached is not None and cached[0] is dictionary:
        return cached[1]
    words = set(markable_words(dictionary, settings)) if settings is not None else set()
    words |= {word for word, group in dictionary.single.items() if group.kind == "pronoun"}
    words |= {word for word, groups in dictionary.guarded.items() if any(g.kind == "pronoun" for g in groups)}
    words |= {second for (_, second), group in dictionary.phrase.items() if group.kind == "pronoun"}
    if len(_ACTIVE) >= 64:
        _ACTIVE.clear()
    _ACTIVE[(id(dictionary), settings)] = (dictionary, frozenset(words))
    return _ACTIVE[(id(dictionary), settings)][1]


DETECT_THINK_TAGS = ("think",)  # reasoning left in a harvested corpus was never marked: not scored


class TextMarker:
    """Marks one text stream with an account key."""

    __slots__ = (
        "_active",
        "_ahead",
        "_fed",
        "_in",
        "_key",
        "_markable",
        "_out",
        "_scanner",
        "_settings",
        "_space_mark",
        "_tail",
        "_tracker",
        "_triggers",
        "_unicode",
        "sync",
        "unicode_marks",
        "words",
    )

    def __init__(
        self,
        key: bytes,
        settings: LexicalSettings | None,
        unicode_marker: UnicodeMarker | None = None,
        dictionary: Dictionary | None = None,
        think_tags: tuple[str, ...] = (),
        think_open: bool = False,
    ) -> None:
        self._key = key
        self._settings = settings
        self._scanner = Scanner(think_tags, think_open)
        decide = self._decide if settings is not None else None
        strength = settings.strength if settings is not None else "exact"
        dictionary = dictionary or load_dictionary(strength)
        self._tracker = LexicalTracker(dictionary, decide)
        self._markable = markable_words(dictionary, settings) if settings is not None else frozenset()
        self._triggers = triggers_for(dictionary, settings)
        self._active = active_words(dictionary, settings)
        self._unicode = unicode_marker
        # the tripwire's space mode rewrites the single space before a word
        self._space_mark = unicode_marker is not None and unicode_marker.mode == "space"
        self._fed = False  # any text fed (or passed unchanged) yet
        self._ahead = ""  # text passed on early that the marker has not written yet
        self.words = 0
        self.unicode_marks = 0
        self._tail = ""  # the last output word so far (a merge extends it)
        self._in = self._out = 0
        # (input offset, output offset) pairs where input and output are aligned (chunk boundaries
        # with nothing held), for mapping offsets into the text (Responses annotations)
        self.sync: list[tuple[int, int]] = [(0, 0)]

    @property
    def protected(self) -> bool:
        """Whether the text so far ends inside protected material (code, quotes, JSON...)."""
        return self._scanner.state.active

    @property
    def substitutions(self) -> int:
        return self._tracker.substitutions

    def _decide(self, unit: Unit) -> str | None:
        settings = self._settings
        assert settings is not None
        group = unit.group
        if not settings.allows(group.cls):
            return None
        green, gate, enforce = keyed_choice(self._key, group, unit.context.key)
        if gate >= settings.density or enforce >= settings.enforce or unit.form in green:
            return None
        allowed = reachable(group, unit.form, unit.context)
        for form in green:
            if form in allowed:
                return form
        return None

    def passes_unchanged(self, text: str) -> bool:
        """Whether ``text``, as the whole stream, would come out exactly as it is (checked before feeding it).

        True only for a fresh marker without the unicode tripwire and a text that holds no
        markable word (:func:`markable_words`; none at all when the lexical scheme is off).
        Protected spans and contractions held for the next word change what is marked, never
        a text with nothing markable in it. On True the caller writes ``text`` as it is and
        records it with :meth:`passed_unchanged` instead of feeding the marker.
        """
        if self._unicode is not None or self._fed:
            return False
        markable = self._markable
        if not markable:
            return True
        if text.isascii():
            return markable.isdisjoint(_CORE.findall(text.lower()))
        return markable.isdisjoint(w.lower().replace("\u2019", "'") for w in _CORE.findall(text))

    def passed_unchanged(self, text: str) -> None:
        """Record ``text`` as written unchanged (after :meth:`passes_unchanged`): input and output aligned."""
        self._fed = True
        self._in = self._out = len(text)
        if text:
            self.sync.append((self._in, self._out))

    def feed(self, text: str) -> str:
        if not text:
            return ""
        if text[0] == " ":
            if self._ahead:  # the word in progress went out early, in whole or in part: the usual case
                out = self._next_word(text)
                if out is not None:
                    return out
        elif self._unicode is None and self._scanner.extend(text):
            return self._early()  # the word in progress grew, nothing completed: see Scanner.extend
        self._fed = True
        out = self._render(self._scanner.feed(text))
        ahead = self._ahead
        if ahead:
            if out.startswith(ahead):  # the usual case, inlined: the word that went out is complete
                self._ahead = ""
                out = out[len(ahead) :]
            else:
                out = self._passed(out)
        return out + self._early()

    def _next_word(self, text: str) -> str | None:
        """The usual token, a space and a word, after a word passed on early: :meth:`feed` in one step.

        The steps :meth:`feed` takes, without the scanner's pieces or a :class:`Chunk`: the
        scanner completes the word in progress (unprotected, not at a line start, nothing in it
        that changes the protection state), the tracker writes it as it came (not one of
        :func:`active_words`), so its output is the text already passed on early (``_ahead``,
        all of the word or a start of it) and the rest of the word, and the new word is the chunk
        in progress, of which :meth:`_early` passes on what is certain (all of it, the usual case,
        without asking it). Every check comes before any change; None (nothing changed) sends
        the token through the general path. The re-chunking property tests hold it to it.
        """
        if self._unicode is not None:  # the tripwire rewrites completed words and the space before
            return None
        scanner = self._scanner
        word = text[1:]
        completed = scanner.plain_partial(word)
        if completed is None:
            return None
        ws, previous = completed
        done = ws + previous  # what the tracker writes for the completed word
        if not ws or not done.startswith(self._ahead):
            return None
        if not self._tracker.take_plain(ws, previous, self._active):  # the last check: it commits
            return None
        scanner.start_word(text[0], word)
        self.words += 1
        self._in += len(done)  # _advance: the completed word, written as it came
        self._out += len(done)
        self.sync.append((self._in, self._out))
        rest = done[len(self._ahead) :]  # of the completed word, what did not go out early
        if self._triggers.settled(word):  # _early's answer here: unprotected, nothing held
            self._ahead = text
            return rest + text if rest else text
        self._ahead = ""
        return rest + self._early()

    def finish(self) -> str:
        out = self._render(self._scanner.finish())
        rest = self._tracker.release()
        self._advance(0, rest)
        out += rest
        if self._ahead:
            out = self._passed(out)
            if self._ahead:
                raise RuntimeError(f"watermark: text passed on early was never written: {self._ahead!r}")
        return out

    def _early(self) -> str:
        """The part of the chunk in progress that can go out now (see :mod:`.early`), or ""."""
        scanner = self._scanner
        partial = scanner.partial
        tracker = self._tracker
        if partial is None or tracker.holding:
            return ""  # a held clitic is decided by this very word: nothing may overtake it
        ws, chunk = partial
        newline = "\n" in ws
        if newline or not scanner.state.active:  # else inside protected text: written as it is
            if self._space_mark and ws == " ":
                return ""  # the tripwire may write this space as U+2004/U+2005
            triggers = self._triggers
            if not triggers.settled(chunk):
                sentence = newline or scanner.at_start or tracker.boundary in SENTENCE_START
                size = triggers.certain(chunk, sentence, tracker.previous)
                if size < 0:
                    return ""  # a merge drops the whitespace before the word
                chunk = chunk[:size]
        text = ws + chunk
        ahead = self._ahead
        if not ahead:  # the usual case: a new word
            self._ahead = text
            return text
        if len(text) <= len(ahead):
            return ""
        if not text.startswith(ahead):
            raise RuntimeError(f"watermark: text passed on early {ahead!r} is not a prefix of {text!r}")
        self._ahead = text
        return text[len(ahead) :]

    def _passed(self, out: str) -> str:
        """``out`` (what the marker writes) less the text already passed on early."""
        ahead = self._ahead
        if out.startswith(ahead):
            self._ahead = ""
            return out[len(ahead) :]
        if ahead.startswith(out):  # a held clitic: the rest comes with the next word
            self._ahead = ahead[len(out) :]
            return ""
        # Never reached (the property tests check every chunking); a stream that differs must stop.
        raise RuntimeError(f"watermark: text passed on early {ahead!r} differs from the marked {out!r}")

    def _advance(self, consumed: int, produced: str) -> None:
        self._in += consumed
        self._out += len(produced)
        if not self._tracker.holding and self.sync[-1] != (self._in, self._out):
            self.sync.append((self._in, self._out))

    def _render(self, pieces: list[Chunk | str]) -> str:
        out: list[str] = []
        tracker = self._tracker
        for piece in pieces:
            if isinstance(piece, str):
                rest = tracker.release()  # text passed as is ends a held contraction first
                out.append(rest)
                out.append(piece)
                self._advance(len(piece), rest + piece)
                continue
            text = tracker.chunk(piece)
            if tracker.prefix:
                out.append(tracker.prefix)
                text = text[len(tracker.prefix) :]
            if piece.word is not None and not piece.protected:
                self.words += 1
                if self._unicode is not None and not tracker.holding:
                    text = self._tripwire(text)
            elif text.strip():
                self._tail = text.split()[-1]
            out.append(text)
            self._advance(0 if piece.released else len(piece.ws) + len(piece.text), tracker.prefix + text)
        return "".join(out)

    def _tripwire(self, text: str) -> str:
        unicode_marker = self._unicode
        assert unicode_marker is not None
        token = text.split()[-1] if text[:1].isspace() or not self._tail else self._tail + text
        self._tail = token
        space = unicode_marker.space_for(text)
        if space is not None:
            text = space + text[1:]
            self.unicode_marks += 1
        marked = unicode_marker.mark(text, token)
        self.unicode_marks += marked is not text
        return marked


def mark_text(text: str, key: bytes, settings: LexicalSettings | None = None) -> str:
    """The whole text marked at once (what a non-streaming response gets)."""
    marker = TextMarker(key, settings or LexicalSettings())
    return marker.feed(text) + marker.finish()


def collect_units(text: str, dictionary: Dictionary | None = None, strength: str = "exact") -> list[Unit]:
    """Every unit of ``text`` in order (the detector's view), with the dictionary of ``strength``."""
    tracker = LexicalTracker(dictionary or load_dictionary(strength), None, collect=True)
    scanner = Scanner(DETECT_THINK_TAGS)
    for piece in scanner.feed(text) + scanner.finish():
        if isinstance(piece, str):
            tracker.release()
        else:
            tracker.chunk(piece)
    tracker.release()
    assert tracker.units is not None
    return tracker.units
