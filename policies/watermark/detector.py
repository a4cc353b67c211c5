"""Detecting our marks in text: per document and over a corpus, with attribution among account keys.

For each candidate (master key, account) the detector counts, over distinct
(group, context) pairs, how many scored units hold the green form. Under the
null hypothesis (the text was not marked with that key) a unit of a k-form group
is green with probability exactly 1/k, so the p-value is the exact tail of the
weighted hit count (:class:`~policies.watermark.stats.WeightedTest`; the plain
binomial tail when every group has two forms). Text can be tested at strength
``exact`` (exact equivalents only), ``near`` (plus the near-synonym groups) or
``auto`` (both, the smaller p-value doubled: Bonferroni over the two tests, so
it stays valid when the strength used is not known). Repeated pairs are
scored once: in a document, and again over the whole corpus, so templated or
repeated text cannot inflate the evidence. With several candidates the p-values
are corrected for multiple testing (Holm by default, or Bonferroni) and a
document or corpus is attributed to a candidate only when its corrected p-value
is at most ``alpha``.

Canary sentences found verbatim and unicode tripwire characters are reported
beside the lexical test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.watermark.canary import canary_for, phrase_words
from policies.watermark.keys import MasterKey
from policies.watermark.lexical import Unit, keyed_choice
from policies.watermark.marker import collect_units
from policies.watermark.stats import BinomialTest, WeightedTest, adjust
from policies.watermark.unicode_mark import ZERO_WIDTH, mark_bit, strip_marks

MAX_CANARY_VARIANTS = 16
DETECT_STRENGTHS = ("exact", "near", "auto")


@dataclass(frozen=True, slots=True)
class Candidate:
    key_id: str
    account: str
    key: bytes

    @property
    def name(self) -> str:
        return f"{self.account}@{self.key_id}"


def candidates(masters: Sequence[MasterKey], accounts: Iterable[str]) -> list[Candidate]:
    accounts = list(dict.fromkeys(accounts))
    return [Candidate(m.id, a, m.account_key(a)) for m in masters for a in accounts]


@dataclass(slots=True)
class Document:
    """One document's scorable evidence (independent of the keys): its units at each strength tested."""

    index: int
    units_by_strength: dict[str, list[Unit]]
    words: int
    tripwire: list[tuple[str, str]] = field(default_factory=list)
    canaries: list[str] = field(default_factory=list)

    @property
    def units(self) -> list[Unit]:
        """The units at the first strength tested (``exact`` unless only ``near`` is)."""
        return next(iter(self.units_by_strength.values()))


def strengths_for(strength: str) -> tuple[str, ...]:
    if strength not in DETECT_STRENGTHS:
        raise ValueError(f"unknown strength {strength!r}; expected one of {', '.join(DETECT_STRENGTHS)}")
    return ("exact", "near") if strength == "auto" else (strength,)


def analyse(
    index: int, text: str, classes: frozenset[str] | None = None, strength: str = "exact"
) -> Document:
    clean, marks = strip_marks(text)
    by_strength = {}
    for level in strengths_for(strength):
        by_strength[level] = [
            u
            for u in collect_units(clean, strength=level)
            if u.scored and (classes is None or u.group.cls in classes or u.group.cls == "near")
        ]
    return Document(index, by_strength, len(clean.split()), marks)


def score(
    units: Iterable[Unit], key: bytes, density: float, seen: set[tuple[str, str]] | None = None
) -> WeightedTest:
    """The test of ``units`` for one key; ``seen`` deduplicates across calls (a corpus)."""
    seen = set() if seen is None else seen
    counts: dict[int, list[int]] = {}
    for unit in units:
        pair = unit.pair
        if pair in seen:
            continue
        seen.add(pair)
        green, gate, _ = keyed_choice(key, unit.group, unit.context.key)
        if gate >= density:
            continue
        row = counts.setdefault(unit.k, [0, 0])
        row[0] += 1
        row[1] += unit.form in green
    return WeightedTest.of(counts)


@dataclass(frozen=True, slots=True)
class CombinedTest:
    """The tests of one candidate at several strengths; the p-value is the smallest, Bonferroni-corrected."""

    tests: dict[str, WeightedTest]

    @property
    def best(self) -> tuple[str, WeightedTest]:
        return min(self.tests.items(), key=lambda item: (item[1].log10_p, -item[1].n))

    @property
    def n(self) -> int:
        return self.best[1].n

    @property
    def log10_p(self) -> float:
        return min(0.0, self.best[1].log10_p + math.log10(len(self.tests)))

    @property
    def p_value(self) -> float:
        return min(1.0, self.best[1].p_value * len(self.tests))

    def as_dict(self) -> dict[str, Any]:
        strength, test = self.best
        row: dict[str, Any] = {**test.as_dict(), "strength": strength}
        if len(self.tests) > 1:
            row["p_value"] = self.p_value
            row["log10_p"] = round(self.log10_p, 3)
            row["tests"] = len(self.tests)
        return row


def score_document(
    doc: Document, key: bytes, density: float, seen: dict[str, set[tuple[str, str]]] | None = None
) -> CombinedTest:
    """A document (or, with ``seen`` shared across calls, a corpus) tested at each of its strengths."""
    return CombinedTest(
        {
            level: score(units, key, density, None if seen is None else seen.setdefault(level, set()))
            for level, units in doc.units_by_strength.items()
        }
    )


class Detector:
    """Scores documents and corpora against every candidate key."""

    def __init__(
        self,
        candidates: Sequence[Candidate],
        *,
        density: float = 1.0,
        alpha: float = 1e-3,
        correction: str = "holm",
        classes: Iterable[str] | None = None,
        strength: str = "auto",
    ) -> None:
        if not candidates:
            raise ValueError("the detector needs at least one (key, account) to test")
        self.candidates = list(candidates)
        self.density = density
        self.alpha = alpha
        self.correction = correction
        self.classes = frozenset(classes) if classes else None
        strengths_for(strength)
        self.strength = strength
        self._phrases = self._canary_phrases()

    def _canary_phrases(self) -> dict[tuple[str, ...], tuple[Candidate, int]]:
        phrases: dict[tuple[str, ...], tuple[Candidate, int]] = {}
        for candidate in self.candidates:
            for index in range(MAX_CANARY_VARIANTS):
                canary = canary_for(candidate.key, candidate.key_id, index)
                phrases[tuple(phrase_words(canary.response))] = (candidate, index)
        return phrases

    def analyse(self, texts: Sequence[str]) -> list[Document]:
        docs = []
        for index, text in enumerate(texts):
            doc = analyse(index, text, self.classes, self.strength)
            words = phrase_words(text)
            for start in range(max(0, len(words) - 3)):
                found = self._phrases.get(tuple(words[start : start + 4]))
                if found is not None:
                    doc.canaries.append(f"{found[0].name}#{found[1]}")
            docs.append(doc)
        return docs

    def _ranked(self, tests: Sequence[BinomialTest | CombinedTest]) -> list[dict[str, Any]]:
        adjusted = adjust([t.p_value for t in tests], self.correction)
        rows = []
        for candidate, test, corrected in zip(self.candidates, tests, adjusted, strict=True):
            row: dict[str, Any] = {"account": candidate.account, "key_id": candidate.key_id, **test.as_dict()}
            row["p_corrected"] = corrected
            row["attributed"] = corrected <= self.alpha and test.n > 0
            rows.append(row)
        rows.sort(key=lambda r: (r["log10_p"], -r["scored"]))
        return rows

    def detect(self, texts: Sequence[str], per_document: bool = True, top: int = 5) -> dict[str, Any]:
        """The full report: per document (optional) and for the corpus."""
        docs = self.analyse(texts)
        report: dict[str, Any] = {
            "documents": len(docs),
            "words": sum(d.words for d in docs),
            "candidates": len(self.candidates),
            "correction": self.correction,
            "alpha": self.alpha,
            "density": self.density,
            "strength": self.strength,
        }
        if per_document:
            rows = []
            for doc in docs:
                ranked = self._ranked([score_document(doc, c.key, self.density) for c in self.candidates])
                rows.append(
                    {
                        "document": doc.index,
                        "words": doc.words,
                        "best": ranked[0],
                        "attributed": [f"{r['account']}@{r['key_id']}" for r in ranked if r["attributed"]],
                        "canaries": doc.canaries,
                        "tripwire_marks": len(doc.tripwire),
                    }
                )
            report["per_document"] = rows
        corpus_tests = []
        for candidate in self.candidates:
            corpus_tests.append(
                CombinedTest(
                    {
                        level: score(
                            (u for d in docs for u in d.units_by_strength[level]), candidate.key, self.density
                        )
                        for level in strengths_for(self.strength)
                    }
                )
            )
        ranked = self._ranked(corpus_tests)
        report["corpus"] = {
            "top": ranked[:top],
            "attributed": [r for r in ranked if r["attributed"]],
            "canaries": sorted({c for d in docs for c in d.canaries}),
            "tripwire": self._tripwire(docs),
        }
        return report

    def _tripwire(self, docs: list[Document]) -> dict[str, Any]:
        marks = [m for d in docs for m in d.tripwire]
        result: dict[str, Any] = {"marks": len(marks)}
        if not marks:
            return result
        tests = []
        for candidate in self.candidates:
            hits = 0
            for char, word in marks:
                bit, _ = mark_bit(candidate.key, word.strip(".,;:!?)]*_\"'"))
                expected = ZERO_WIDTH[bit] if char in ZERO_WIDTH else ("\u2004", "\u2005")[bit]
                hits += char == expected
            tests.append(BinomialTest(hits, len(marks)))
        best = self._ranked(tests)[0]
        result["best"] = best
        return result


def summary(report: dict[str, Any]) -> str:
    """A few lines for people."""
    lines = [
        f"{report['documents']} document(s), {report['words']} words, "
        f"{report['candidates']} candidate key(s), "
        f"{report['correction']} correction at alpha={report['alpha']:g}"
    ]
    corpus = report["corpus"]
    attributed = corpus["attributed"]
    if attributed:
        for row in attributed:
            lines.append(
                f"ATTRIBUTED to account {row['account']} (key {row['key_id']}): "
                f"{row['hits']}/{row['scored']} "
                f"hits, z={row['z']:.2f}, p={row['p_value']:.3g} (log10 {row['log10_p']:.1f}), "
                f"corrected p={row['p_corrected']:.3g}"
            )
    else:
        best = corpus["top"][0]
        lines.append(
            f"no attribution: best candidate {best['account']}@{best['key_id']} "
            f"{best['hits']}/{best['scored']} "
            f"hits, z={best['z']:.2f}, corrected p={best['p_corrected']:.3g}"
        )
    if corpus["canaries"]:
        lines.append(f"canaries found verbatim: {', '.join(corpus['canaries'])}")
    if corpus["tripwire"]["marks"]:
        lines.append(f"unicode tripwire characters: {corpus['tripwire']['marks']}")
    if "per_document" in report:
        flagged = sum(1 for row in report["per_document"] if row["attributed"])
        lines.append(f"documents attributed individually: {flagged}/{report['documents']}")
    return "\n".join(lines)
