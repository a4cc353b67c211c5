"""The measurements of the watermark evaluation: detection rates, false positives, attribution, corpora.

Every figure is measured with the detector's own tests (``analyse`` and
``score``), on text marked by ``mark_text``; none is assumed.
"""

from __future__ import annotations

import random
from typing import Any

from policies.watermark.detector import Detector, analyse, candidates, score
from policies.watermark.keys import MasterKey
from policies.watermark.marker import LexicalSettings, mark_text
from policies.watermark.stats import WeightedTest

MASTER = MasterKey("eval", b"distillguard-eval-master-key-000")
FPR_ALPHA = 1e-3


def p_value(text: str, key: bytes, strength: str = "exact") -> tuple[float, int]:
    """The detector's p-value (and scored positions) for ``text`` and one key at ``strength`` (or auto)."""
    if strength == "auto":
        tests = [score(analyse(0, text, strength=s).units, key, 1.0) for s in ("exact", "near")]
        best = min(tests, key=lambda t: t.log10_p)
        return min(1.0, 2 * best.p_value), best.n
    test = score(analyse(0, text, strength=strength).units, key, 1.0)
    return test.p_value, test.n


def mark(text: str, key: bytes, strength: str) -> str:
    return mark_text(text, key, LexicalSettings(strength=strength))


def rate(texts: list[str], key: bytes, marked: bool, strength: str = "exact") -> dict[str, Any]:
    hits, scored = 0, []
    for text in texts:
        body = mark(text, key, "exact" if strength == "auto" else strength) if marked else text
        p, n = p_value(body, key, strength)
        scored.append(n)
        hits += p <= FPR_ALPHA
    scored.sort()
    return {
        "samples": len(texts),
        "rate": hits / max(1, len(texts)),
        "scored_median": scored[len(scored) // 2] if scored else 0,
    }


def attribution(texts: list[str], accounts: int, alpha: float, strength: str = "exact") -> dict[str, Any]:
    names = [f"account-{i:04d}" for i in range(accounts)]
    detector = Detector(candidates([MASTER], names), alpha=alpha, strength=strength)
    rng = random.Random(7)
    right = false = 0
    for text in texts:
        owner = rng.choice(names)
        report = detector.detect([mark(text, MASTER.account_key(owner), strength)], per_document=False)
        attributed = [r["account"] for r in report["corpus"]["attributed"]]
        right += attributed == [owner]
        false += any(a != owner for a in attributed)
    return {
        "samples": len(texts),
        "keys": accounts,
        "right": right / max(1, len(texts)),
        "false_attributions": false,
    }


def corpus_level(pool: list[str], share: float, budget: int, strength: str = "exact") -> dict[str, Any]:
    """Grow a corpus with ``share`` of it marked until p <= 1e-6 or ``budget`` scored positions."""
    key = MASTER.account_key("harvester")
    rng = random.Random(11)
    seen: set[tuple[str, str]] = set()
    counts: dict[int, list[int]] = {}
    documents = words = marked_docs = 0
    test = WeightedTest(())
    while test.n < budget:
        if documents >= len(pool):
            break
        doc = pool[documents]
        if rng.random() < share:
            doc = mark(doc, key, strength)
            marked_docs += 1
        documents += 1
        words += len(doc.split())
        part = score(analyse(0, doc, strength=strength).units, key, 1.0, seen)
        for k, n, h in part.classes:
            row = counts.setdefault(k, [0, 0])
            row[0] += n
            row[1] += h
        test = WeightedTest.of(counts)
        if part.n and test.log10_p <= -6:
            break
    return {
        "documents": documents,
        "words": words,
        "scored": test.n,
        "hits": test.hits,
        "log10_p": round(test.log10_p, 2),
    }


def fpr_all(texts: list[str], keys: list[bytes]) -> dict[str, Any]:
    """False-positive rates at p <= 1e-3 of unmarked texts, tested at exact, near and auto.

    With several keys: the mean over keys and the largest single-key rate. Template text (the mock's
    short answers) repeats the same (group, context) pairs in every window, so one key's rate over
    such windows is one draw that all windows share: its spread is large, and the p-values' guarantee
    (P(p <= alpha) <= alpha for a key independent of the text) is about the mean over keys.
    """
    units = [{s: analyse(0, t, strength=s).units for s in ("exact", "near")} for t in texts]
    rates: dict[str, list[float]] = {"exact": [], "near": [], "auto": []}
    for key in keys:
        hits = {"exact": 0, "near": 0, "auto": 0}
        for doc in units:
            tests = {s: score(u, key, 1.0) for s, u in doc.items()}
            for s, test in tests.items():
                hits[s] += test.p_value <= FPR_ALPHA
            hits["auto"] += 2 * min(t.p_value for t in tests.values()) <= FPR_ALPHA
        for s, h in hits.items():
            rates[s].append(h / max(1, len(texts)))
    return {s: {"first_key": r[0], "mean": sum(r) / len(r), "max": max(r)} for s, r in rates.items()}
