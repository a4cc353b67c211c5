"""Detecting our marks in text: per document and over a corpus, with attribution among account keys.

For each candidate (master key, account) the detector counts, over distinct
(group, context) pairs, how many scored units hold a green form. Under the null
hypothesis (the text was not marked with that key) each is green with
probability 1/2, so the p-value is the exact binomial tail. Repeated pairs are
scored once: in a document, and again over the whole corpus, so templated or
repeated text cannot inflate the evidence. With several candidates the p-values
are corrected for multiple testing (Holm by default, or Bonferroni) and a
document or corpus is attributed to a candidate only when its corrected p-value
is at most ``alpha``.

Canary sentences found verbatim and unicode tripwire characters are reported
beside the lexical test.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.watermark.canary import canary_for, phrase_words
from policies.watermark.keys import MasterKey
from policies.watermark.lexical import Unit, keyed_choice
from policies.watermark.marker import collect_units
from policies.watermark.stats import BinomialTest, adjust
from policies.watermark.unicode_mark import ZERO_WIDTH, mark_bit, strip_marks

MAX_CANARY_VARIANTS = 16


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
    """One document's scorable evidence (independent of the keys)."""

    index: int
    units: list[Unit]
    words: int
    tripwire: list[tuple[str, str]] = field(default_factory=list)
    canaries: list[str] = field(default_factory=list)


def analyse(index: int, text: str, classes: frozenset[str] | None = None) -> Document:
    clean, marks = strip_marks(text)
    units = [u for u in collect_units(clean) if u.scored and (classes is None or u.group.cls in classes)]
    return Document(index, units, len(clean.split()), marks)


def score(
    units: Iterable[Unit], key: bytes, density: float, seen: set[tuple[str, str]] | None = None
) -> BinomialTest:
    """The binomial test of ``units`` for one key; ``seen`` deduplicates across calls (a corpus)."""
    seen = set() if seen is None else seen
    hits = n = 0
    for unit in units:
        pair = unit.pair
        if pair in seen:
            continue
        seen.add(pair)
        green, gate, _ = keyed_choice(key, unit.group, unit.context.key)
        if gate >= density:
            continue
        n += 1
        hits += unit.form in green
    return BinomialTest(hits, n)


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
    ) -> None:
        if not candidates:
            raise ValueError("the detector needs at least one (key, account) to test")
        self.candidates = list(candidates)
        self.density = density
        self.alpha = alpha
        self.correction = correction
        self.classes = frozenset(classes) if classes else None
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
            doc = analyse(index, text, self.classes)
            words = phrase_words(text)
            for start in range(max(0, len(words) - 3)):
                found = self._phrases.get(tuple(words[start : start + 4]))
                if found is not None:
                    doc.canaries.append(f"{found[0].name}#{found[1]}")
            docs.append(doc)
        return docs

    def _ranked(self, tests: list[BinomialTest]) -> list[dict[str, Any]]:
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
        }
        if per_document:
            rows = []
            for doc in docs:
                ranked = self._ranked([score(doc.units, c.key, self.density) for c in self.candidates])
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
            seen: set[tuple[str, str]] = set()
            units = (u for d in docs for u in d.units)
            corpus_tests.append(score(units, candidate.key, self.density, seen))
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
