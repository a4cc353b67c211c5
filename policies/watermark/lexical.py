"""Scheme ``lexical``: keyed, context-conditioned choices between equivalent forms.

At each *unit* (a word or a two-word phrase whose form is in the dictionary) the
account key and the unit's context (the word before it and the punctuation
between) pick one of the group's ``k`` forms, the *green* form. The embedder
writes it where the guards of :mod:`.dictionary` allow; the detector counts how
many scored units are green. With an unknown key each scored unit is green with
probability exactly 1/k whatever the text (the keyed choice is uniform over the
forms), so a hit at a k-form position carries log2(k) bits; the detector's test
(:class:`~policies.watermark.stats.WeightedTest`) uses each position's own null
rate, over distinct (context, group) pairs.

A unit is scored only where every form of its group could have been written
(``reachable`` returns the whole group): there a form we sent is always green,
and a form we could not change never dilutes the count.

The context is the *previous word* (Yang et al. 2023; conditional like CATER, so
global word frequencies stay balanced): a substitution never changes the text it
is conditioned on, so the detector recomputes every context from the text alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from policies.watermark.dictionary import Context, Dictionary, Group, clitic_next, reachable
from policies.watermark.segmenter import Chunk, split_word

_GATE_SCALE = float(1 << 32)


@dataclass(frozen=True, slots=True)
class Unit:
    """One scorable position: its group, the form found, and its context."""

    group: Group
    form: str
    context: Context
    scored: bool  # every form of the group was reachable here

    @property
    def k(self) -> int:
        """How many forms the group has (the null hit rate is 1/k)."""
        return len(self.group.forms)

    @property
    def pair(self) -> tuple[str, str]:
        """What deduplication compares: (group id, context)."""
        return (self.group.id, self.context.key)


def keyed_choice(key: bytes, group: Group, context_key: str) -> tuple[tuple[str, ...], float, float]:
    """(the green form as a 1-tuple, density gate in [0,1), enforcement gate in [0,1)) for one position.

    The green form is the first of a keyed shuffle of the forms, so every form
    is green with probability exactly 1/k for a key that did not mark the text.
    (For two forms this is the keyed half used since the first version.)
    """
    digest = hashlib.blake2b(f"{group.id}\x1f{context_key}".encode(), key=key, digest_size=16).digest()
    bits = int.from_bytes(digest[:8], "big")
    forms = list(group.forms)
    count = len(forms)
    for i in range(count - 1, 0, -1):  # Fisher-Yates driven by the digest
        bits, j = divmod(bits, i + 1)
        forms[i], forms[j] = forms[j], forms[i]
    gate = int.from_bytes(digest[8:12], "big") / _GATE_SCALE
    strength = int.from_bytes(digest[12:16], "big") / _GATE_SCALE
    return (forms[0],), gate, strength


def case_of(word: str) -> str | None:
    """'lower', 'title' or 'upper' (the pronoun I counts as lower case); None for mixed case."""
    if word.islower():
        return "lower"
    core = word[1:] if word[:1] == "I" and (len(word) == 1 or not word[1].isalpha()) else word
    letters = [c for c in core if c.isalpha()]
    if not letters:
        return "lower"
    if all(c.islower() for c in letters):
        return "lower"
    if all(c.isupper() for c in letters):
        return "upper" if len(letters) > 1 or core is word else "lower"
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return "title"
    return None


def apply_case(form: str, case: str) -> str:
    if case == "upper":
        out = form.upper()
    elif case == "title":
        out = form[0].upper() + form[1:]
    else:
        out = form
    if out[:2] in ("i ", "i'"):
        out = "I" + out[1:]
    return out


# A word of the history, a plain tuple (one is made per word): (text as written in the output,
# case kept; its lower form; the boundary between the previous word and this one; whether it is a word)
_Word = tuple[str, str, str, bool]


Decide = Callable[[Unit], str | None]


def _boundary_after(trail: str) -> str:
    """The boundary that a word's trailing punctuation (not empty) makes before the next word."""
    if "." in trail or "!" in trail or "?" in trail:
        return "."
    return "," if trail[0] in ",;:" else "<p>"


@dataclass(slots=True)
class _Held:
    """An ambiguous contraction (``it's``, ``I'd``) whose clitic waits for the next word."""

    unit: Unit
    case: str
    ws: str
    core: str  # as written, e.g. "It's"
    boundary: str


class LexicalTracker:
    """Walks chunks in order, finds units, and (when embedding) rewrites them.

    ``decide(unit)`` returns the form to write, or None to keep the text. The
    same tracker with no ``decide`` only collects units (the detector).
    """

    __slots__ = (
        "_apostrophe",
        "_boundary",
        "_decide",
        "_held",
        "_history",
        "_vocabulary",
        "dictionary",
        "prefix",
        "substitutions",
        "units",
    )

    def __init__(self, dictionary: Dictionary, decide: Decide | None = None, collect: bool = False) -> None:
        self.dictionary = dictionary
        self._vocabulary = dictionary.vocabulary
        self._decide = decide
        self._history: list[_Word] = []
        self._boundary = "^"
        self._apostrophe = "'"
        self.substitutions = 0
        self.units: list[Unit] | None = [] if collect else None
        self._held: _Held | None = None
        self.prefix = ""  # the end of a held contraction, at the start of the last chunk's output

    @property
    def holding(self) -> bool:
        """Whether the last word's clitic (``'s``, ``'d``: two characters) is held for the next word."""
        return self._held is not None

    @property
    def boundary(self) -> str:
        """The boundary before the next word unless a newline comes first (see :class:`Context`)."""
        return self._boundary

    @property
    def previous(self) -> str:
        """The word before the next chunk, lower case, as two-word forms look it up ("" after a non-word)."""
        history = self._history
        return history[-1][1] if history and history[-1][3] else ""

    def release(self, following: Chunk | None = None) -> str:
        """The rest of a held contraction, decided now that the next chunk (or None) is known."""
        held = self._held
        if held is None:
            return ""
        self._held = None
        next_word = ""
        if (
            following is not None
            and following.word is not None
            and not (following.released or following.protected or following.word[0])
            and "\n" not in following.ws
        ):
            next_word = following.word[1].lower().replace("\u2019", "'")
        unit, context = held.unit, held.unit.context
        context = Context(context.before, context.boundary, context.lookahead, next_word)
        unit = self._make(unit.group, unit.form, context)
        if self.units is not None:
            self.units.append(unit)
        written = held.core
        if self._decide is not None:
            target = self._decide(unit)
            if target is not None and target != unit.form:
                written = apply_case(target, held.case)
                self.substitutions += 1
        self._advance(held.ws, written, held.boundary, "")
        return written[len(held.core) - 2 :]

    def chunk(self, chunk: Chunk) -> str:
        """The output for one chunk (its whitespace included), after the rest of a held contraction."""
        if self._held is None:
            self.prefix = ""
            return self._chunk(chunk)
        self.prefix = self.release(chunk)
        return self.prefix + self._chunk(chunk)

    def take_plain(self, ws: str, text: str, active: frozenset[str]) -> bool:
        """Take the complete chunk ``text`` after ``ws`` (not empty; unprotected, not at a line start)
        if it is a word the tracker writes as it came whatever the context: not one of ``active``
        (:func:`~policies.watermark.marker.active_words`), no contraction held. The steps of
        :meth:`chunk` for such a word, without building its :class:`Chunk`; False (nothing
        changed) otherwise, and :meth:`chunk` takes it.
        """
        if self._held is not None:
            return False
        if text.isalpha() and text.isascii():  # the usual word: split_word's own quick test
            lead = trail = ""
            core = text
        else:
            word = split_word(text)
            if word is None:
                return False
            lead, core, trail = word
        lower = core.lower()
        if "\u2019" in lower:
            lower = lower.replace("\u2019", "'")
        if lower in active:
            return False
        self.prefix = ""
        if "\u2019" in core:
            self._apostrophe = "\u2019"
        elif "'" in core:
            self._apostrophe = "'"
        boundary = self._boundary
        if lead and boundary not in ("^", "."):
            boundary = "<p>"
        history = self._history
        history.append((core, lower, boundary, True))
        if len(history) > 4:
            del history[:-4]
        self._boundary = _boundary_after(trail) if trail else ""
        return True

    def _chunk(self, chunk: Chunk) -> str:
        if chunk.released:
            self._not_word(chunk)
            return ""
        word = chunk.word
        if chunk.protected or word is None:
            self._not_word(chunk)
            return chunk.ws + chunk.text
        lead, core, trail = word
        if "\u2019" in core:
            self._apostrophe = "\u2019"
        elif "'" in core:
            self._apostrophe = "'"
        ws = chunk.ws
        boundary = "^" if (chunk.line_start or "\n" in ws) else self._boundary
        if lead:
            boundary = boundary if boundary in ("^", ".") else "<p>"
        lower = core.lower()
        if "\u2019" in lower:
            lower = lower.replace("\u2019", "'")
        if lower not in self._vocabulary:  # the common case: no unit here, the word is written as it is
            history = self._history  # what _advance does for one word
            if ws or not history:
                history.append((core, lower, boundary, True))
                if len(history) > 4:
                    del history[:-4]
            self._boundary = _boundary_after(trail) if trail else ""
            return ws + chunk.text
        lookahead = trail[:1] or chunk.next_char
        out_ws, out_core = ws, core
        found = self._unit(core, boundary, lookahead, ws, lead)
        if found is not None:
            unit, case, phrase_case = found
            if (
                not trail
                and not lead
                and lookahead.isspace()
                and unit.group.kind == "pronoun"
                and not unit.group.split
                and clitic_next(unit.form) is not None
            ):
                # "it's" / "I'd": whether it may be split depends on the next word; hold the clitic
                self._held = _Held(unit, case, chunk.ws, core, boundary)
                return chunk.ws + core[:-2]
            if self.units is not None:
                self.units.append(unit)
            if self._decide is not None:
                target = self._decide(unit)
                if target is not None and target != unit.form:
                    out_ws, out_core = self._rewrite(unit, target, case, phrase_case, chunk.ws)
                    self.substitutions += 1
        self._advance(out_ws, out_core, boundary, trail)
        return out_ws + lead + out_core + trail

    def _unit(
        self, core: str, boundary: str, lookahead: str, ws: str, lead: str
    ) -> tuple[Unit, str, str] | None:
        case = case_of(core)
        if case is None:
            return None
        lower = core.lower().replace("\u2019", "'")
        history = self._history
        sentence = boundary in ("^", ".")
        # two-word forms: the previous word and this one, joined by one plain space
        if ws == " " and boundary == "" and not lead and history and history[-1][3]:
            prev_text, prev_lower, prev_boundary, _ = history[-1]
            group = self.dictionary.phrase.get((prev_lower, lower))
            if group is not None:
                prev_case = case_of(prev_text)
                before = history[-2][1] if len(history) > 1 else ""
                ok = (prev_case == "lower" and case == "lower") or (prev_case == case == "upper")
                if prev_case == "title" and case == "lower" and prev_boundary in ("^", "."):
                    ok = True
                if ok and prev_case is not None:
                    context = Context(before, prev_boundary, lookahead)
                    form = f"{prev_lower} {lower}"
                    return self._make(group, form, context), case, prev_case
            guarded = self.dictionary.guarded.get(lower)
            if guarded and case == "lower":
                for group in guarded:
                    for guard in group.prev:
                        if self._guard_matches(guard):
                            start = len(history) - len(guard)
                            before = history[start - 1][1] if start > 0 else ""
                            context = Context(before, history[start][2], lookahead)
                            return self._make(group, lower, context), case, case
        if case == "title" and not sentence:
            return None  # a capitalised word inside a sentence may be a name
        group = self.dictionary.single.get(lower)
        if group is None:
            return None
        before = history[-1][1] if history else ""
        return self._make(group, lower, Context(before, boundary, lookahead)), case, case

    def _guard_matches(self, guard: tuple[str, ...]) -> bool:
        history = self._history
        if len(history) < len(guard):
            return False
        tail = history[-len(guard) :]
        for index, ((_, lower, boundary, is_word), expected) in enumerate(zip(tail, guard, strict=True)):
            if not is_word or lower != expected:
                return False
            if index and boundary != "":
                return False
        return True

    @staticmethod
    def _make(group: Group, form: str, context: Context) -> Unit:
        return Unit(group, form, context, len(reachable(group, form, context)) == len(group.forms))

    def _rewrite(self, unit: Unit, target: str, case: str, phrase_case: str, ws: str) -> tuple[str, str]:
        """(whitespace, word) to write for ``target``; a merge writes no whitespace."""
        source_is_phrase = " " in unit.form and unit.group.prev == ()
        if source_is_phrase and " " not in target:
            first = unit.form.split(" ")[0]
            suffix = target[len(first) :]
            suffix = suffix.upper() if case == "upper" else suffix
            prev_text, _, prev_boundary, _ = self._history[-1]
            self._history[-1] = (prev_text + suffix, target, prev_boundary, True)
            return "", suffix.replace("'", self._apostrophe)
        text = apply_case(target, case)
        return ws, text.replace("'", self._apostrophe)

    def _advance(self, ws: str, core: str, boundary: str, trail: str) -> None:
        history = self._history
        if ws or not history:
            if " " in core:
                for word in core.split(" "):
                    history.append((word, word.lower().replace("\u2019", "'"), boundary, True))
                    boundary = ""
            else:
                lower = core.lower()
                if "\u2019" in lower:
                    lower = lower.replace("\u2019", "'")
                history.append((core, lower, boundary, True))
            if len(history) > 4:
                del history[:-4]
        self._boundary = _boundary_after(trail) if trail else ""

    def _not_word(self, chunk: Chunk) -> None:
        if chunk.marker or (chunk.protected and chunk.text.startswith(("```", "~~~"))):
            self._history = []
            self._boundary = "^"
            return
        self._history = [(chunk.text[:32], chunk.text[:32].lower(), self._boundary, False)]
        self._boundary = "." if chunk.text[-1:] in ".!?" and not chunk.protected else "<p>"
