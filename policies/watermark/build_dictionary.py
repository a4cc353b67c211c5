"""Builds ``data/variants.json``, the lexical watermark's variant dictionary.

Run ``python -m policies.watermark.build_dictionary`` after editing the lists it
reads: ``build_spelling.py``, ``build_phrases.py`` and ``build_near.py``.

Every group is a set of surface forms that mean exactly the same thing in any
context where the group's guard allows a substitution. The sources are small,
hand-checked lists in those modules; nothing is mined from a thesaurus, because near
synonyms ("big"/"large") change meaning in some contexts and this dictionary
must not. Classes:

* ``spelling``: American/British spelling pairs (-ize/-ise, -yze/-yse, -or/-our,
  -er/-re, doubled -ll-, a few singletons), generated with their inflections from
  hand-picked stems. Stems that double as code identifiers (initialize, color in
  CSS...) or whose pair differs in meaning (program/programme, meter/metre,
  practice/practise, check/cheque, tire/tyre) are left out on purpose.
* ``contraction``: ``do not``/``don't`` style pairs. Negations are two-way (a
  contraction is split only where the split reads as plain English, see the guards
  in ``dictionary.py``); pronoun + be/will/am merges are two-way where the
  contraction has one reading (``you're``, ``I'll``) and merge-only where it has
  two (``it's`` = it is / it has).
* ``function``: function words and fixed phrases with exact equivalents
  (toward/towards, among/amongst, for example/for instance, based on/upon...).
* ``connective``: sentence-initial connectives followed by a comma
  (Moreover,/Furthermore,/Additionally,; Nevertheless,/Nonetheless,...).
* ``compound``: hyphenated/closed spellings of the same compound (email/e-mail).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from policies.watermark.build_near import near_groups
from policies.watermark.build_phrases import (
    COMPOUNDS,
    CONNECTIVE_AFTER_IN,
    CONNECTIVES,
    FUNCTION_GROUPS,
    NEGATIONS,
    PREV_GUARDED,
    PRONOUNS,
    SPLIT_ONLY,
    SPLIT_ONLY_COMPOUNDS,
)
from policies.watermark.build_spelling import spelling_pairs

OUT = Path(__file__).with_name("data") / "variants.json"
VERSION = 2


def build() -> dict[str, Any]:
    groups: list[dict[str, Any]] = []

    def add(cls: str, forms: list[str], **extra: object) -> None:
        groups.append({"class": cls, "forms": forms, **extra})

    seen: set[str] = set()
    for forms in spelling_pairs():
        if forms[0] in seen or forms[1] in seen or forms[0] == forms[1]:
            continue
        seen.update(forms)
        add("spelling", forms)
    for aux, contracted in NEGATIONS:
        add("contraction", [f"{aux} not", contracted], kind="negation")
    add("contraction", ["will not", "won't"], kind="negation", merge=False)
    add("contraction", ["cannot", "can't"], kind="negation_word")
    for pronoun, verb, contracted, split in PRONOUNS:
        add("contraction", [f"{pronoun} {verb}", contracted], kind="pronoun", split=split)
    for pronoun, verb, contracted in SPLIT_ONLY:
        add("contraction", [f"{pronoun} {verb}", contracted], kind="pronoun", merge=False)
    for forms in FUNCTION_GROUPS:
        add("function", forms)
    add("function", ["while", "whilst"], kind="while")
    add("function", ["although", "though"], kind="although")
    # one way only: "despite" -> "in spite of" (the three-word form is never read back as a unit)
    add("function", ["despite", "in spite of"])
    for forms, prev in PREV_GUARDED:
        add("function", forms, prev=prev)
    for forms in CONNECTIVES:
        add("connective", forms, kind="sentence_initial")
    for forms in CONNECTIVE_AFTER_IN:
        add("connective", forms, kind="sentence_initial", prev=["in"])
    for forms in COMPOUNDS:
        add("compound", forms)
    for forms in SPLIT_ONLY_COMPOUNDS:
        add("compound", forms, merge=False)
    ids = [group["forms"][0] for group in groups]
    assert len(set(ids)) == len(ids), "group ids (first forms) must be unique"
    for group in groups:
        # The id is hashed into every mark: it must never change for a given group.
        group["id"] = group["forms"][0]
    near = near_groups()
    ids += [group["id"] for group in near]
    assert len(set(ids)) == len(ids), "near group ids must be unique"
    for strength_groups in (groups, _near_dictionary(groups, near)):
        forms = [f for g in strength_groups for f in g["forms"] if f.count(" ") <= 1 and not g.get("prev")]
        duplicates = {f for f in forms if forms.count(f) > 1}
        assert not duplicates, f"forms in two groups: {sorted(duplicates)}"
    return {"version": VERSION, "groups": groups + near}


def _near_dictionary(exact: list[dict[str, Any]], near: list[dict[str, Any]]) -> list[dict[str, Any]]:
    superseded = {i for g in near for i in g.get("supersedes", ())}
    assert superseded <= {g["id"] for g in exact}, "a near group supersedes an unknown group"
    return [g for g in exact if g["id"] not in superseded] + near


def main() -> None:
    data = build()
    OUT.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(data['groups'])} groups to {OUT}")


if __name__ == "__main__":
    main()
