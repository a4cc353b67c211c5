"""Evaluation of the lexical watermark against the targets of issue 6 (one command, deterministic).

The command line of ``python -m bench.watermark_eval``: builds the corpora, runs
the sections asked for at each strength, and prints every figure; with ``--json PATH`` writes them
there, and the TPR-against-words figure beside it (bench/figures.py).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from bench import figures
from bench.watermark_eval.attack import attack
from bench.watermark_eval.corpora import (
    large_human_corpus,
    mock_answers,
    seeds,
    short_mock_answers,
    stdlib_docstrings,
    windows,
)
from bench.watermark_eval.measures import (
    FPR_ALPHA,
    MASTER,
    attribution,
    corpus_level,
    fpr_all,
    mark,
    p_value,
    rate,
)
from bench.watermark_eval.quality import quality

SECTIONS = ("detection", "fpr", "calibration", "robustness", "attribution", "corpus", "quality")


def _corpus_section(quick: bool, big: list[str], results: dict[str, Any], strengths: tuple[str, ...]) -> int:
    print("== corpus level: 5% of documents are ours; stop at p <= 1e-6 or 50,000 scored positions")
    # Repeated (context, group) pairs are scored once, so a corpus needs varied text: the mock's templates
    # saturate (a few thousand distinct pairs however long it runs). Measured on both: mock answers, and
    # every docstring on the machine; each document is marked with probability 5%.
    mock_pool = mock_answers(3000 if quick else 10000, "pool")
    for strength in strengths:
        for name, pool in (("mock", mock_pool), ("all-docstrings", big)):
            result = corpus_level(pool, 0.05, 50_000, strength)
            print(f"  [{strength}] {name:18s} {result}")
            results[f"corpus_{strength}_{name}"] = result
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.watermark_eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--corpus-only", action="store_true", help="run only the corpus-level measurement")
    parser.add_argument("--strength", choices=["exact", "near", "both"], default="both")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of: {', '.join(SECTIONS)}",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here (and a .png beside)")
    args = parser.parse_args(argv)
    sections = set(args.sections.split(","))
    if args.corpus_only:
        sections = {"corpus"}
    quick = args.quick
    strengths: tuple[str, ...] = ("exact", "near") if args.strength == "both" else (args.strength,)
    started = time.perf_counter()
    n = 40 if quick else 400
    key = MASTER.account_key("account-0001")
    human = stdlib_docstrings(60 if quick else 1000)
    big = large_human_corpus(300_000 if quick else 6_000_000)
    random.Random(5).shuffle(big)
    print(f"(human corpus: {len(big)} docstrings and pydoc topics, {sum(len(d.split()) for d in big)} words)")
    mock = mock_answers(30 if quick else 800)
    seed_texts = seeds()
    corpora = (("mock", mock), ("stdlib-docstrings", human), ("seeds", seed_texts))
    results: dict[str, Any] = {}
    panels: dict[str, dict[str, list[list[float]]]] = {}  # the detection figure's curves

    print("== detection: TPR (marked) at p <= 1e-3, one key, detector at the strength used")
    for strength in strengths if "detection" in sections else ():
        for words in (200, 400, 800, 1600):
            for name, corpus in corpora:
                sample = windows(corpus, words, n)
                if not sample:
                    continue
                tpr = rate(sample, key, marked=True, strength=strength)
                print(f"  [{strength}] {words:5d} words  {name:18s} TPR {tpr['rate']:.3f}  "
                      f"(n={tpr['samples']}, median scored positions {tpr['scored_median']})")  # fmt: skip
                results[f"tpr_{strength}_{words}_{name}"] = tpr["rate"]
                curve = panels.setdefault(name, {}).setdefault(f"lexical, {strength}", [])
                curve.append([words, tpr["rate"], tpr["samples"]])
    print("== FPR: unmarked 200-word windows at p <= 1e-3, detector at exact / near / auto")
    print(
        "   (the evaluation key; then the mean and the largest rate over 40 keys, the evaluation key first)"
    )
    fpr_keys = [key] + [MASTER.account_key(f"fpr-{i}") for i in range(39)]
    fpr_corpora = (
        ("mock", lambda: mock_answers(60 if quick else 3000, "neg", 200)),
        ("mock-short", lambda: short_mock_answers(60 if quick else 3000)),
        ("all-docstrings", lambda: big),
        ("seeds", lambda: seed_texts),
    )
    for name, make_corpus in fpr_corpora if "fpr" in sections else ():
        corpus = make_corpus()
        sample = windows(corpus, 200, 100 if quick else 20000)
        fpr = fpr_all(sample, fpr_keys[: 4 if quick else (10 if name == "all-docstrings" else 40)])
        print(f"  FPR {name:18s} n={len(sample)}  " + "  ".join(
            f"{s} {r['first_key']:.5f} (mean {r['mean']:.5f}, max {r['max']:.5f})" for s, r in fpr.items()
        ))  # fmt: skip
        results[f"fpr_{name}"] = fpr

    print("== calibration: unmarked 1,000-word windows, fraction of p-values at or below each level")
    for strength in strengths if "calibration" in sections else ():
        for name, corpus in (
            ("all-docstrings", big),
            ("mock", mock_answers(40 if quick else 1000, "cal", 1000)),
        ):
            p_values = [p_value(t, key, strength)[0] for t in windows(corpus, 1000, 100 if quick else 3000)]
            shares = {
                level: sum(p <= level for p in p_values) / max(1, len(p_values))
                for level in (0.05, 0.01, 1e-3)
            }
            print(f"  [{strength}] {name:18s} n={len(p_values)}  "
                  + "  ".join(f"<= {k:g}: {v:.4f}" for k, v in shares.items()))  # fmt: skip
            results[f"calibration_{strength}_{name}"] = shares

    print("== robustness: 10% deletion + 10% synonym substitution, p <= 1e-3 ([marked at/detected at])")
    # near-marked text is also tested with --strength auto: its exact positions are marked too
    runs = [(s, d) for s in strengths for d in ((s,) if s == "exact" else (s, "auto"))]
    for strength, detect in runs if "robustness" in sections else ():
        rng = random.Random(3)
        label = strength if strength == detect else f"{strength}/{detect}"
        for name, corpus in corpora:
            sample = windows(corpus, 400, n // 2)
            hits = sum(
                p_value(attack(mark(t, key, strength), rng), key, detect)[0] <= FPR_ALPHA for t in sample
            )
            share = hits / max(1, len(sample))
            print(f"  [{label}] 400 words {name:18s} TPR {share:.3f} (n={len(sample)})")
            results[f"robust_{label}_400_{name}"] = share
        for words in (800, 1600):
            sample = windows(mock, words, n // 4)
            hits = sum(
                p_value(attack(mark(t, key, strength), rng), key, detect)[0] <= FPR_ALPHA for t in sample
            )
            share = hits / max(1, len(sample))
            print(f"  [{label}] mock at {words} words  TPR {share:.3f} (n={len(sample)})")
            results[f"robust_{label}_{words}_mock"] = share

    print("== attribution: samples among 1,000 account keys (Holm, alpha 1e-3)")
    for strength in strengths if "attribution" in sections else ():
        for name, corpus, sizes in (
            ("mock", mock, (500, 1000, 1500)),
            ("stdlib-docstrings", human, (500,)),
            ("seeds", seed_texts, (500,)),
        ):
            for words in sizes:
                sample = windows(corpus, words, 20 if quick else 200)
                result = attribution(sample, 100 if quick else 1000, 1e-3, strength)
                print(f"  [{strength}] {name:18s} {words} words: right account {result['right']:.3f}, "
                      f"false attributions {result['false_attributions']} "
                      f"(n={result['samples']}, keys={result['keys']})")  # fmt: skip
                results[f"attribution_{strength}_{name}_{words}"] = result

    if "corpus" in sections:
        _corpus_section(quick, big, results, strengths)

    print("== quality: substitutions per 100 words; changes outside the dictionary")
    for strength in strengths if "quality" in sections else ():
        for name, corpus in (("mock", mock[:50]), ("stdlib-docstrings", human[:400]), ("seeds", seed_texts)):
            q = quality(corpus, key, strength, examples=8 if strength == "near" else 0)
            print(
                f"  [{strength}] {name:18s} {q['per_100_words']:.2f} per 100 words, "
                f"non-dictionary changes {q['non_dictionary']} ({q['words']} words)"
            )
            for example in q["examples"]:
                print(f"      {example}")
            results[f"quality_{strength}_{name}"] = q
    print(f"(done in {time.perf_counter() - started:.0f} s)")
    if args.json:
        detection = {
            "title": "Lexical watermark: one account key, marked text by corpus",
            "unit": "words",
            "alpha": FPR_ALPHA,
            "target": None,  # the 0.95-at-200-tokens target is the green list's (issue 17)
            "panels": panels,
        }
        args.json.write_text(json.dumps({"results": results, "detection": detection}, indent=2))
        if panels:
            figures.draw_beside(args.json, figures.detection_figure, detection)
    return 0
