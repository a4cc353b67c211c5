"""The quality check of the watermark evaluation: how much marking changes, and whether it only swaps.

A change is accepted when it swaps forms within one dictionary group (composed
swaps and swaps that cover a context word included); any other change is
counted as a non-dictionary change.
"""

from __future__ import annotations

import difflib
from typing import Any

from bench.watermark_eval.measures import mark
from policies.watermark.dictionary import load_dictionary


def quality(texts: list[str], key: bytes, strength: str = "exact", examples: int = 0) -> dict[str, Any]:
    """Substitutions per 100 words, and any change that is not a swap within one dictionary group."""
    dictionary = load_dictionary(strength)
    forms_of: dict[str, set[str]] = {}
    for group in dictionary.groups:
        for form in group.forms:
            forms_of.setdefault(form, set()).update(group.forms)
    words = substitutions = violations = 0
    shown: list[str] = []  # examples of near-synonym substitutions
    exact_forms = {w for g in load_dictionary("exact").groups for f in g.forms for w in f.split()}
    near_only = {w for f in forms_of for w in f.split()} - exact_forms
    for text in texts:
        marked = mark(text, key, strength)
        a, b = text.split(), marked.split()
        words += len(a)
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if tag == "equal":
                continue
            old = _plain(a[i1:i2])
            new = _plain(b[j1:j2])
            substitutions += 1
            if len(shown) < examples and near_only & (set(old.split()) | set(new.split())):
                context = " ".join(a[max(0, i1 - 4) : i1])
                shown.append(f"...{context} [{old} -> {new}] {' '.join(a[i2 : i2 + 3])}...")
            if not _swaps(old.split(), new.split(), forms_of):
                violations += 1
                if violations <= 3:
                    print(f"    non-dictionary change? {old!r} -> {new!r}")
    return {
        "words": words,
        "per_100_words": 100 * substitutions / max(1, words),
        "non_dictionary": violations,
        "examples": shown,
    }


def _plain(words: list[str]) -> str:
    """Words compared by the quality check: lower case, ASCII apostrophes, no punctuation around each word."""
    return " ".join(w.lower().replace("\u2019", "'").strip(".,;:!?()*_") for w in words)


def _canonical(words: list[str], canon: dict[str, str]) -> list[str]:
    """Every dictionary form replaced by its group's first form (contractions expanded)."""
    out: list[str] = []
    for word in words:
        out.extend(canon.get(word, word).split(" "))
    index, result = 0, []
    while index < len(out):
        pair = " ".join(out[index : index + 2])
        if index + 1 < len(out) and pair in canon:
            result.extend(canon[pair].split(" "))
            index += 2
        else:
            result.append(out[index])
            index += 1
    return result


def _swaps(a: list[str], b: list[str], forms_of: dict[str, set[str]]) -> bool:
    """Whether a changed span is one or more swaps within dictionary groups (composed swaps included)."""
    if a == b:
        return True
    canon = {form: sorted(forms, key=lambda f: (f.count(" ") == 0, f))[0] for form, forms in forms_of.items()}
    if _canonical(a, canon) == _canonical(b, canon):
        return True
    old, new = " ".join(a), " ".join(b)
    if new in forms_of.get(old, set()) or _prefix_merge(old, new, forms_of):
        return True
    return any(
        _swaps(a[:i], b[:j], forms_of) and _swaps(a[i:], b[j:], forms_of)
        for i in range(1, len(a))
        for j in range(1, len(b))
    )


def _prefix_merge(old: str, new: str, forms_of: dict[str, set[str]]) -> bool:
    """A replaced span that covers a context word too (``for example`` / ``for instance``)."""
    a, b = old.split(), new.split()
    if a and b and a[0] == b[0]:
        return _prefix_merge(" ".join(a[1:]), " ".join(b[1:]), forms_of) or (
            " ".join(b[1:]) in forms_of.get(" ".join(a[1:]), set())
        )
    if a and b and a[-1] == b[-1]:
        return " ".join(b[:-1]) in forms_of.get(" ".join(a[:-1]), set())
    return False
