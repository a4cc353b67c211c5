"""Which partial words the marker may pass on before they are complete (time to first token).

The scanner holds the chunk in progress until the whitespace after it arrives,
because only then is the word known. Most partial chunks need not wait: the
lexical scheme can change a chunk only when its word is one a *substitutable*
form ends with (a one-word form, the second word of a two-word form, a guarded
word), of a class the tier writes. If no such word starts with the partial
chunk's word, the chunk will be written exactly as it arrived whatever follows,
so its text can go out now; the chunk itself still goes through the scanner and
the tracker when it completes (protection state, keyed context for the next
word), only its output is already out. :class:`Triggers` answers that question
with prefix sets built once per dictionary and tier settings.

Sentence connectives (``Moreover,``) change only at the start of a sentence, so
inside a sentence their prefixes (``the`` of ``therefore``) do not hold a word.
Case does not matter here (lower-cased, as the tracker looks words up), which
only ever holds more than needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from policies.watermark.dictionary import Dictionary, Group

if TYPE_CHECKING:
    from policies.watermark.marker import LexicalSettings

# What can follow: the chunk is never a word, a word the scheme leaves as it is, or may be rewritten.
NOT_WORD, PLAIN, HOLD = 0, 1, 2

# lead punctuation, then the word's letters so far and the character after them (see segmenter.WORD)
_HEAD = re.compile(r"[(\[*_]*(?:([A-Za-z][A-Za-z'\u2019-]*)(.?))?")


def _prefixes(words: set[str]) -> frozenset[str]:
    return frozenset(word[:end] for word in words for end in range(len(word) + 1))


def _sentence_only(group: Group, form: str) -> bool:
    """A one-word form that ``reachable`` changes only at a sentence start (boundary ``^`` or ``.``)."""
    if group.prev or " " in form:
        return False  # guarded and two-word units take their boundary from an earlier word
    return group.kind == "sentence_initial_word" or (group.kind == "sentence_initial" and not group.article)


@dataclass(frozen=True, slots=True)
class Triggers:
    """The words whose chunks the tier may rewrite, anywhere and at a sentence start, with their prefixes."""

    anywhere: frozenset[str]
    anywhere_prefixes: frozenset[str]
    sentence: frozenset[str]
    sentence_prefixes: frozenset[str]

    @classmethod
    def build(cls, dictionary: Dictionary, settings: LexicalSettings | None) -> Triggers:
        """The words (lower case, ASCII apostrophes) that can end a unit of a class ``settings`` writes.

        This mirrors :class:`~policies.watermark.dictionary.Dictionary`'s lookup tables: a
        one-word form and a guarded word are found by that word, a two-word form by its second
        word (a merge drops the whitespace before it). Contractions held for the next word
        (``it's``) need no entry when their class is off: the held clitic is written as it was.
        """
        anywhere: set[str] = set()
        sentence: set[str] = set()
        for group in dictionary.groups if settings is not None else ():
            if not settings.allows(group.cls):
                continue
            for form in group.forms:
                if form.count(" ") > 1:
                    continue  # written in place of a shorter form, never read as a unit
                if group.prev:
                    if " " in form:
                        continue  # guarded words are looked up by one word: never found
                    word = form
                else:
                    word = form.split(" ")[1] if " " in form else form
                (sentence if _sentence_only(group, form) else anywhere).add(word)
        sentence |= anywhere
        return cls(frozenset(anywhere), _prefixes(anywhere), frozenset(sentence), _prefixes(sentence))

    def classify(self, chunk: str, sentence: bool) -> int:
        """:data:`NOT_WORD`, :data:`PLAIN` or :data:`HOLD` for a partial chunk, whatever completes it.

        ``sentence``: the chunk may start a sentence (the tracker's boundary before it is ``^``/``.``).
        """
        head = _HEAD.match(chunk)
        assert head is not None  # every part of the pattern may match nothing
        core, after = head.groups()
        words, prefixes = (
            (self.sentence, self.sentence_prefixes) if sentence else (self.anywhere, self.anywhere_prefixes)
        )
        if core is None:
            if head.end() < len(chunk):
                return NOT_WORD  # something other than a letter after the lead: never a word
            return HOLD if prefixes else PLAIN  # only lead punctuation so far: any word may follow
        key = core.lower()
        if "\u2019" in key:
            key = key.replace("\u2019", "'")
        # the word is complete once another character follows it; else any word starting with it may come
        return HOLD if key in (words if after else prefixes) else PLAIN


_CACHE: dict[tuple[int, frozenset[str], str], tuple[Dictionary, Triggers]] = {}


def triggers_for(dictionary: Dictionary, settings: LexicalSettings | None) -> Triggers:
    """:meth:`Triggers.build`, once per dictionary and (classes, strength): markers are made per stream."""
    classes, strength = (settings.classes, settings.strength) if settings is not None else (frozenset(), "")
    key = (id(dictionary), classes, strength)
    entry = _CACHE.get(key)
    if entry is not None and entry[0] is dictionary:
        return entry[1]
    if len(_CACHE) >= 64:  # the shipped dictionaries are two; tests may build their own
        _CACHE.clear()
    triggers = Triggers.build(dictionary, settings)
    _CACHE[key] = (dictionary, triggers)  # the dictionary is kept so that its id is not reused
    return triggers
