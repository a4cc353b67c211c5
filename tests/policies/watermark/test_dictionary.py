"""The dictionaries per strength, the guards of the near groups, and contractions split by their next word."""

from __future__ import annotations

import pytest

from policies.watermark.dictionary import load_dictionary
from policies.watermark.marker import LexicalSettings, collect_units, mark_text

KEYS = [bytes([i]) * 32 for i in range(24)]
NEAR = LexicalSettings(strength="near")


def _variants(text: str, settings: LexicalSettings | None = None) -> set[str]:
    return {mark_text(text, key, settings) for key in KEYS}


def test_each_strength_has_its_own_dictionary() -> None:
    exact, near = load_dictionary("exact"), load_dictionary("near")
    assert "usually" not in exact.vocabulary and "usually" in near.vocabulary
    assert {g.cls for g in exact.groups} == {"spelling", "contraction", "function", "connective", "compound"}
    # a near group superseding an exact one replaces it (one group per form)
    assert exact.single["moreover"].forms == ("moreover", "furthermore", "additionally")
    assert near.single["moreover"].forms == ("moreover", "furthermore", "additionally", "also")
    assert near.single["moreover"].id != exact.single["moreover"].id
    with pytest.raises(ValueError):
        load_dictionary("loose")


def test_exact_strength_never_uses_near_synonyms() -> None:
    assert _variants("We usually check it often.") == {"We usually check it often."}
    assert len(_variants("We usually check it often.", NEAR)) == 4


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("We make sure it works.", {"We make sure it works.", "We make certain it works."}),
        ("Please be kind to it.", {"Please be kind to it."}),  # "kind" only after a determiner
        (
            "This seems not exactly right.",
            {"This seems not exactly right."},
        ),  # an understatement keeps its word
        ("It happens every so often.", {"It happens every so often."}),
        ("Start the server now.", {"Start the server now."}),  # one-way: "start" is never rewritten
        ("We begin now.", {"We begin now.", "We start now."}),
        ("This is an additional step.", {"This is an additional step.", "This is an extra step."}),
        ("This is a rare case.", {"This is a rare case."}),  # "a uncommon" would break the article
        ("Check if it works.", {"Check if it works.", "Check whether it works."}),
        ("Tell me if it works.", {"Tell me if it works."}),
        ("Note that it works.", {"Note that it works.", "Notice that it works."}),
        ("Take a note of it.", {"Take a note of it."}),
        ("It works, but slowly.", {"It works, but slowly.", "It works, yet slowly."}),
        ("But it works.", {"But it works."}),
        (
            "Moreover, it works.",
            {f"{w}, it works." for w in ("Moreover", "Furthermore", "Additionally", "Also")},
        ),
        ("We do it too.", {"We do it too.", "We do it as well."}),
        ("This is too slow.", {"This is too slow."}),
    ],
)
def test_near_guards(text: str, allowed: set[str]) -> None:
    variants = _variants(text, NEAR)
    assert variants <= allowed
    assert len(variants) == len(allowed)


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("It's a good idea.", "It is a good idea."),
        ("That's why we do it.", "That is why we do it."),
        ("There's a catch here.", "There is a catch here."),
        ("It's going well.", "It is going well."),
        ("I'd recommend it.", "I would recommend it."),
        ("It's been fine.", None),  # "has"
        ("It's used here.", None),  # "is used" or "has used"
        ("It's nothing to do with it.", None),  # British "has nothing to do with"
        ("I'd better go.", None),  # "had better"
        ("I'd already left.", None),
        ("It's\na line.", None),
        ("(It's a case.)", None),
        ("It's.", None),
    ],
)
def test_ambiguous_contractions_split_only_when_the_next_word_settles_them(
    text: str, split: str | None
) -> None:
    assert _variants(text) == ({text, split} if split else {text})
    units = [u for u in collect_units(text) if u.form.endswith(("'s", "'d"))]
    assert all(u.scored == bool(split) for u in units)


def test_merged_forms_read_back_as_the_same_position() -> None:
    for key in KEYS[:8]:
        for text in ("It is a good idea and I would say so.", "It's a good idea and I'd say so."):
            marked = mark_text(text, key)
            scored = [u for u in collect_units(marked) if u.scored]
            assert len(scored) == 2, marked
