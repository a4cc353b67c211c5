"""The variant dictionary (package data ``data/variants.json``) and the guards that keep substitutions exact.

A *group* is a set of forms with the same meaning (``toward``/``towards``,
``do not``/``don't``). A form is one word, or two words joined by one space.
Whether one form may be rewritten into another depends on the group's kind and
on the local context, and the rules here are shared by the embedder and the
detector, so both agree on which positions carry a mark:

* two-word forms merge into a one-word form only when the one-word form starts
  with the first word (``do`` + ``not`` -> ``don't``; ``will not`` cannot become
  ``won't`` because ``will`` was already sent);
* negative contractions are split only where the split reads as plain English
  (not at the start of a sentence, after a comma or after a wh-word: ``Don't
  you``, ``isn't it?``, ``why don't we`` stay as they are);
* pronoun contractions merge only before a following word (``it is.`` stays);
  the ambiguous ones (``it's`` = it is / it has, ``I'd`` = I would / I had)
  are split only when the *next* word settles the reading (``it's a`` -> ``it
  is a``, ``I'd recommend`` -> ``I would recommend``; never ``it's been``,
  ``I'd better``): the marker holds the two-character clitic until that word
  is complete (see :mod:`.lexical`);
* sentence connectives change only at the start of a sentence before a comma;
* guarded words change only after their guard words (``for example``,
  ``based on``/``based upon``);
* near-synonym groups (strength ``near`` only) add their own guards: a
  whitelist (``after``) or blacklist (``not_after``) of previous words, one-way
  groups (only the first form is rewritten), and the article guard (after
  ``a``/``an`` only forms with the same kind of first letter are written).

There is one dictionary per strength: ``exact`` holds the exactly equivalent
groups, ``near`` holds those plus the near-synonym groups (a near group may
*supersede* an exact one, e.g. the connective set ``moreover/furthermore/
additionally`` grows by ``also``).

The dictionary is built by ``python -m policies.watermark.build_dictionary``;
``docs/watermark.md`` says how it was curated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

SENTENCE_START = frozenset({"^", "."})
# Negative contractions keep their inverted reading after these words ("why don't we").
NO_SPLIT_AFTER = frozenset({"why", "how", "what", "where", "when", "who", "whom", "whose", "which", "nor"})
NO_SPLIT_BOUNDARY = frozenset({"^", ".", ",", "<p>"})
# "a while", "worth your while": the noun, which has no "whilst".
WHILE_NOUN_AFTER = frozenset(
    {"a", "the", "this", "that", "worth", "little", "long", "short", "good", "whole", "brief", "some", "any",
     "each", "great", "quite", "your", "our", "their", "my", "his", "her", "its", "once"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Group:
    """One set of equivalent forms. ``forms`` are lower case with ASCII apostrophes."""

    id: str
    cls: str
    forms: tuple[str, ...]
    kind: str = ""
    prev: tuple[tuple[str, ...], ...] = ()  # guard: the words that must come right before
    split: bool = True
    merge: bool = True
    after: frozenset[str] = frozenset()  # near: the previous word must be one of these
    not_after: frozenset[str] = frozenset()  # near: never after these previous words
    oneway: bool = False  # only forms[0] is rewritten (the others are never read as a position)
    article: bool = False  # after "a"/"an", only forms whose first letter is of the same kind

    def is_phrase(self, form: str) -> bool:
        return " " in form


@dataclass(frozen=True, slots=True)
class Context:
    """What a unit's rules and hash may look at; all of it is visible in the output text.

    ``before`` is the word before the unit (lower case) and ``boundary`` what
    separates it from the unit: ``""`` (a plain space), ``","`` (clause
    punctuation), ``"."`` (sentence end), ``"^"`` (start of text or line) or
    ``"<p>"`` (after something protected). ``lookahead`` is the first character
    after the unit's word ("" at the end of the text).
    """

    before: str
    boundary: str
    lookahead: str
    next_word: str = ""  # only for a held contraction: the word after it ("" when none or not a word)

    @property
    def key(self) -> str:
        return f"{self.before}|{self.boundary}"


# Words after which an ambiguous "'s" can only be "is" (never "has"): articles, determiners,
# prepositions, wh-words and adjectives that are not participles. Adverbs are left out ("it's
# already been"), and so are -ed forms ("it's used" may be "it has used").
IS_NEXT = frozenset(
    {"a", "an", "the", "this", "that", "these", "those", "my", "your", "our", "their", "his", "her", "its",
     "some", "any", "no", "each", "every", "one", "two", "another", "much", "in", "on", "at", "for", "with",
     "from", "about", "like", "because", "as", "into", "between", "than", "why", "how", "what", "where",
     "when", "who", "worth", "time", "okay", "ok", "true", "false", "fine", "important", "possible",
     "impossible", "easy", "hard", "difficult", "better", "best", "worse", "clear", "likely", "unlikely",
     "useful", "necessary", "safe", "unsafe", "common", "simple", "great", "good", "bad", "free",
     "available", "enough", "wrong", "right", "correct", "normal", "usual", "unclear", "obvious", "up",
     "over", "more", "less", "all", "both"}
)  # fmt: skip
# Words after which "'d" can only be "would": bare verbs ("I'd better" = had, so not "better").
WOULD_NEXT = frozenset(
    {"like", "love", "prefer", "recommend", "suggest", "say", "be", "need", "want", "expect", "argue",
     "guess", "imagine", "rather", "have", "go", "use", "start", "add", "keep", "do", "try", "make", "see",
     "think", "help", "consider", "check", "look", "avoid", "choose", "pick", "put", "write", "run", "ask",
     "agree", "bet", "hate", "hope", "appreciate", "call", "welcome"}
)  # fmt: skip


def clitic_next(form: str) -> frozenset[str] | None:
    """For a contraction held for its next word (``it's``, ``I'd``): the next words that allow a split."""
    if form.endswith("'s"):
        return IS_NEXT
    if form.endswith("'d"):
        return WOULD_NEXT
    return None


def _ing(word: str) -> bool:
    # "it's going" = it is going; "nothing"/"something" are left out ("it's nothing to do with" = has).
    return len(word) >= 5 and word.endswith("ing") and word not in _NOT_ING


_NOT_ING = frozenset({"thing", "nothing", "something", "everything", "anything"})


@dataclass(slots=True)
class Dictionary:
    version: int
    groups: list[Group]
    single: dict[str, Group] = field(default_factory=dict)  # one-word form -> group (unguarded)
    phrase: dict[tuple[str, str], Group] = field(default_factory=dict)  # (first, second) -> group
    guarded: dict[str, list[Group]] = field(default_factory=dict)  # word -> groups with a prev guard
    vocabulary: frozenset[str] = frozenset()  # every word that can end a unit (a fast first test)

    def __post_init__(self) -> None:
        for group in self.groups:
            for form in group.forms:
                if form.count(" ") > 1:
                    continue  # written in place of a shorter form, never read back as a unit
                if group.prev:
                    self.guarded.setdefault(form, []).append(group)
                elif " " in form:
                    first, second = form.split(" ")
                    self.phrase[(first, second)] = group
                else:
                    if form in self.single:
                        raise ValueError(f"form {form!r} is in two groups")
                    self.single[form] = group
        self.vocabulary = frozenset(
            set(self.single) | set(self.guarded) | {second for _, second in self.phrase}
        )

    def classes(self) -> list[str]:
        return sorted({group.cls for group in self.groups})


def _vowel(word: str) -> bool:
    return word[:1] in "aeiou"


def reachable(group: Group, form: str, ctx: Context) -> tuple[str, ...]:
    """The forms the embedder may write in place of ``form`` here (``form`` itself included)."""
    if group.oneway and form != group.forms[0]:
        return (form,)
    if ctx.before in group.not_after or (group.after and (ctx.before not in group.after or ctx.boundary)):
        return (form,)
    if group.kind == "clause_final" and (ctx.lookahead == "" or ctx.lookahead not in ".!?"):
        return (form,)
    if group.kind == "after_comma" and ctx.boundary != ",":
        return (form,)
    if group.kind == "sentence_initial_word":
        return group.forms if ctx.boundary in SENTENCE_START and ctx.lookahead.isspace() else (form,)
    if group.article and ctx.before in ("a", "an"):
        return tuple(f for f in group.forms if _vowel(f) == _vowel(form))
    if group.kind == "sentence_initial":
        if ctx.boundary not in SENTENCE_START or ctx.lookahead != ",":
            return (form,)
        return group.forms
    if group.kind == "while" and form == "while" and (ctx.before in WHILE_NOUN_AFTER):
        return (form,)
    if group.kind == "although" and form != "although":
        return (form,)
    out = [form]
    for other in group.forms:
        if other == form:
            continue
        if " " in form and " " not in other:  # merge
            first = form.split(" ")[0]
            if not group.merge or not other.startswith(first):
                continue
            if group.kind == "pronoun" and not ctx.lookahead.isspace():
                continue
        elif " " not in form and " " in other:  # split
            if not group.split:
                allowed = clitic_next(form) if group.kind == "pronoun" else None
                word = ctx.next_word
                if allowed is None or not (word in allowed or (form.endswith("'s") and _ing(word))):
                    continue
            if group.kind in ("negation", "negation_word") and (
                ctx.boundary in NO_SPLIT_BOUNDARY or ctx.before in NO_SPLIT_AFTER
            ):
                continue
        elif (
            group.kind == "negation_word"
            and form == "can't"
            and (ctx.boundary in NO_SPLIT_BOUNDARY or ctx.before in NO_SPLIT_AFTER)
        ):
            continue
        out.append(other)
    return tuple(out)


def _group(raw: dict[str, Any]) -> Group:
    prev = tuple(tuple(p.split(" ")) for p in raw.get("prev", ()))
    return Group(
        id=raw["id"],
        cls=raw["class"],
        forms=tuple(raw["forms"]),
        kind=raw.get("kind", ""),
        prev=prev,
        split=raw.get("split", True),
        merge=raw.get("merge", True),
        after=frozenset(raw.get("after", ())),
        not_after=frozenset(raw.get("not_after", ())),
        oneway=raw.get("oneway", False),
        article=raw.get("article", False),
    )


STRENGTHS = ("exact", "near")


@cache
def load_dictionary(strength: str = "exact") -> Dictionary:
    """The shipped dictionary for ``strength`` (``exact`` or ``near``), parsed once per process."""
    if strength not in STRENGTHS:
        raise ValueError(f"unknown strength {strength!r}; expected one of {', '.join(STRENGTHS)}")
    raw = json.loads(files("policies.watermark").joinpath("data/variants.json").read_text("utf-8"))
    near = strength == "near"
    superseded = {i for g in raw["groups"] if g.get("strength") == "near" for i in g.get("supersedes", ())}
    groups = [
        _group(g)
        for g in raw["groups"]
        if (g.get("strength", "exact") == "exact" and not (near and g["id"] in superseded))
        or (near and g.get("strength") == "near")
    ]
    return Dictionary(version=int(raw["version"]), groups=groups)
