"""How much of a partial word the marker may pass on before it is complete (time to first token).

The scanner holds the chunk in progress until the whitespace after it arrives,
because only then is the word known. Most of it need not wait: the lexical
scheme changes a chunk only when its word is one a substitutable form is found
by (a one-word form, a guarded word, the second word of a two-word form), of a
class the tier writes, and then it keeps the whitespace, the lead punctuation
and the case, and rewrites the word into another form of its group. So the
characters of a partial chunk are certain as far as every form of every group
that the word may still turn into starts with them (``We`` may become
``Website``/``Web site``: all of it is certain; ``The`` may become
``Therefore,``/``Thus,``: only the whitespace). Two exceptions hold the whole
chunk and its whitespace: a merge (``code`` + ``base`` -> ``codebase``, only
after the two-word form's first word) and, in the tripwire's space mode, the
single space before a word.

:class:`Triggers` answers it with tables built once per dictionary and tier
settings; the chunk itself still goes through the scanner and the tracker when
it completes (protection state, keyed context for the next word), only the
certain part of its output is already out. Sentence connectives change only at
a sentence start, so elsewhere their prefixes (``the`` of ``therefore``) are
certain. Case does not matter (lower-cased, as the tracker looks words up):
the rewrite writes the case the word came in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from policies.watermark.dictionary import Dictionary, Group

if TYPE_CHECKING:
    from policies.watermark.marker import LexicalSettings

MERGE = -1  # what :meth:`Triggers.certain` returns when even the whitespace before the chunk may go

# lead punctuation, then the word's letters so far and the character after them (see segmenter.WORD)
_HEAD = re.compile(r"[(\[*_]*(?:([A-Za-z][A-Za-z'\u2019-]*)(.?))?")

Table = dict[str, int]  # a word (or prefix of one) -> how many of its characters are certain


def _stable(word: str, forms: tuple[str, ...]) -> int:
    """How many leading characters of ``word`` every form starts with (a rewrite keeps them as written)."""
    if any(form[:2] in ("i ", "i'") for form in forms):
        return 0  # apply_case writes the pronoun I in capitals: "i'm" -> "I am"
    size = 0
    for position, char in enumerate(word):
        # the apostrophe is rewritten in the text's style; the forms must all agree up to here
        if char == "'" or any(form[position : position + 1] != char for form in forms):
            break
        size += 1
    return size


def _add(table: Table, word: str, forms: tuple[str, ...], prefixes: bool) -> None:
    """Record ``word`` (and with ``prefixes`` each of its prefixes) with the characters certain for it."""
    stable = _stable(word, forms)
    ends = range(1, len(word) + 1) if prefixes else (len(word),)
    for end in ends:
        key = word[:end]
        certain = min(stable, end)
        table[key] = min(table.get(key, certain), certain)


def _sentence_only(group: Group, form: str) -> bool:
    """A one-word form that ``reachable`` changes only at a sentence start (boundary ``^`` or ``.``)."""
    if group.prev or " " in form:
        return False  # guarded and two-word units take their boundary from an earlier word
    return group.kind == "sentence_initial_word" or (group.kind == "sentence_initial" and not group.article)


@dataclass(frozen=True, slots=True)
class Triggers:
    """Per tier: what of a partial word is certain, inside a sentence and at its start; the merges."""

    anywhere: tuple[Table, Table]  # (complete words, prefixes of words)
    sentence: tuple[Table, Table]
    merges: dict[str, tuple[frozenset[str], frozenset[str]]]  # first word -> (second words, their prefixes)
    candidates: tuple[frozenset[str], frozenset[str]]  # every key of the tables above: the rest is certain

    @classmethod
    def build(cls, dictionary: Dictionary, settings: LexicalSettings | None) -> Triggers:
        """The tables for the groups of a class ``settings`` writes.

        This mirrors :class:`~policies.watermark.dictionary.Dictionary`'s lookup tables: a
        one-word form and a guarded word are found by that word, a two-word form by its second
        word after its first (a merge, which drops the whitespace between them). Contractions
        held for the next word (``it's``) need no entry when their class is off: the held clitic
        is written as it came.
        """
        words: Table = {}
        prefixes: Table = {}
        sentence_words: Table = {}
        sentence_prefixes: Table = {}
        merges: dict[str, tuple[set[str], set[str]]] = {}
        for group in dictionary.groups:
            if settings is None or not settings.allows(group.cls):
                continue  # no lexical scheme, or a class this tier does not write
            for form in group.forms:
                if form.count(" ") > 1:
                    continue  # written in place of a shorter form, never read as a unit
                if " " in form and not group.prev:
                    first, second = form.split(" ")
                    seconds, starts = merges.setdefault(first, (set(), set()))
                    seconds.add(second)
                    starts.update(second[:end] for end in range(1, len(second) + 1))
                    continue
                if " " in form:
                    continue  # guarded words are looked up by one word: never found
                targets = (
                    (sentence_words, sentence_prefixes) if _sentence_only(group, form) else (words, prefixes)
                )
                for table, with_prefixes in zip(targets, (False, True), strict=True):
                    _add(table, form, group.forms, with_prefixes)
        for table, extra in ((sentence_words, words), (sentence_prefixes, prefixes)):
            for key, certain in extra.items():
                table[key] = min(table.get(key, certain), certain)
        candidates = (
            frozenset(sentence_words).union(*(pair[0] for pair in merges.values())),
            frozenset(sentence_prefixes).union(*(pair[1] for pair in merges.values())),
        )
        return cls(
            (words, prefixes),
            (sentence_words, sentence_prefixes),
            {first: (frozenset(s), frozenset(p)) for first, (s, p) in merges.items()},
            candidates,
        )

    def settled(self, chunk: str) -> bool:
        """Whether all of a partial chunk is certain whatever the context (the usual token: a quick test)."""
        if chunk.isalpha() and chunk.isascii():  # inlined from _key: this runs for every token
            return chunk.lower() not in self.candidates[1]
        head = _key(chunk)
        return head is None or head[0] not in self.candidates[0 if head[1] else 1]

    def certain(self, chunk: str, sentence: bool, previous: str) -> int:
        """How many leading characters of a partial chunk are written as they are, whatever completes it.

        ``sentence``: the chunk may start a sentence (the tracker's boundary before it is ``^``/``.``);
        ``previous``: the word before it, lower case ("" when it was not a word). :data:`MERGE`
        when the whitespace before the chunk may be dropped too.
        """
        head = _key(chunk)
        if head is None:
            return len(chunk)  # lead punctuation only (kept by every rewrite), or never a word
        key, after, lead = head
        # the word is complete once another character follows it; else any word starting with it may come
        if previous in self.merges and key in self.merges[previous][0 if after else 1]:
            return MERGE
        stable = (self.sentence if sentence else self.anywhere)[0 if after else 1].get(key)
        return len(chunk) if stable is None else lead + stable


def _key(chunk: str) -> tuple[str, str, int] | None:
    """(the word so far in lower case, the character after it, the length of the lead), or None: no word."""
    if chunk.isalpha() and chunk.isascii():  # the usual token: letters only, the word not complete
        return chunk.lower(), "", 0
    head = _HEAD.match(chunk)
    assert head is not None  # every part of the pattern may match nothing
    core, after = head.groups()
    if core is None:
        return None  # lead punctuation only, or something other than a letter after it: never a word
    key = core.lower()
    if "\u2019" in key:
        key = key.replace("\u2019", "'")
    return key, after, head.start(1)


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
