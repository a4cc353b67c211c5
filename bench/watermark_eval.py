"""Evaluation of the lexical watermark against the targets of issue 6 (one command, deterministic).

    python -m bench.watermark_eval                   # full run, both strengths (~25 min on 2 cores)
    python -m bench.watermark_eval --strength exact  # one strength (the default tier's)
    python -m bench.watermark_eval --quick           # small run, as the CI test uses
    python -m bench.watermark_eval --sections robustness,attribution   # some sections only

Corpora, all offline: human-written English (docstrings of the Python standard
library), model-like English (the mock model's answers, gateway/mock/text.py,
and the model-written articles in shared/seeds when present). Attacks: random
word deletion and synonym substitution with a synonym list written for this
file, independent of the variant dictionary. Every figure is measured, none is
assumed. Each section runs once per strength (``exact``: exact equivalents only;
``near``: plus the guarded near synonyms): text is marked at that strength and
tested by the detector at that strength (as ``watermark detect --strength``); the
FPR is also measured with ``--strength auto`` (both tests, Bonferroni), which is
what a deployment that mixes strengths uses.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import glob
import random
import sys
import time
from pathlib import Path
from typing import Any

from gateway.mock.prose import long_answer
from gateway.mock.text import answer_text
from policies.watermark.detector import Detector, analyse, candidates, score
from policies.watermark.dictionary import load_dictionary
from policies.watermark.keys import MasterKey
from policies.watermark.marker import LexicalSettings, mark_text
from policies.watermark.stats import WeightedTest

MASTER = MasterKey("eval", b"distillguard-eval-master-key-000")
FPR_ALPHA = 1e-3
# Attack synonyms: common English words and a plain synonym each (not derived from the variant dictionary).
ATTACK_SYNONYMS = {
    "big": "large",
    "large": "big",
    "small": "little",
    "show": "display",
    "shows": "displays",
    "use": "employ",
    "uses": "employs",
    "used": "employed",
    "important": "significant",
    "help": "assist",
    "helps": "assists",
    "make": "create",
    "makes": "creates",
    "start": "begin",
    "starts": "begins",
    "quick": "fast",
    "fast": "quick",
    "simple": "plain",
    "easy": "simple",
    "hard": "difficult",
    "difficult": "hard",
    "good": "fine",
    "clear": "plain",
    "need": "require",
    "needs": "requires",
    "get": "obtain",
    "gets": "obtains",
    "find": "discover",
    "finds": "discovers",
    "check": "verify",
    "checks": "verifies",
    "change": "alter",
    "changes": "alters",
    "idea": "notion",
    "problem": "issue",
    "answer": "reply",
    "method": "approach",
    "way": "manner",
    "result": "outcome",
    "goal": "aim",
    "part": "portion",
    "step": "stage",
    "choice": "option",
    "often": "frequently",
    "also": "additionally",
    "however": "but",
    "therefore": "hence",
    "many": "numerous",
    "most": "the majority of",
    "main": "primary",
    "whole": "entire",
    "each": "every",
    "useful": "helpful",
    "careful": "cautious",
    "strong": "robust",
    "common": "usual",
    "different": "distinct",
    "value": "worth",
    "reason": "cause",
    "task": "job",
    "plan": "scheme",
    "level": "degree",
    "detail": "particular",
    "rule": "principle",
    "returns": "gives back",
    "return": "give back",
    "object": "item",
    "function": "routine",
    "list": "sequence",
    "string": "text",
    "file": "document",
    "data": "information",
    "model": "system",
    "user": "person",
    "system": "setup",
    "first": "initial",
    "new": "fresh",
    "old": "previous",
}


# ----------------------------------------------------------------------------- corpora


def stdlib_docstrings(limit_files: int) -> list[str]:
    root = Path(ast.__file__).parent
    out = []
    for path in sorted(root.glob("*.py"))[:limit_files]:
        try:
            tree = ast.parse(path.read_text("utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc.split()) >= 15:
                    out.append(doc)
    return out


def large_human_corpus(limit_words: int) -> list[str]:
    """Docstrings of the Python modules on this machine (stdlib, installed packages) and pydoc's topics."""
    roots = [Path(ast.__file__).parent] + [Path(p) for p in sys.path if p.endswith("site-packages")]
    docs: list[str] = []
    words = 0
    try:
        from pydoc_data.topics import topics

        docs.extend(t for t in topics.values() if len(t.split()) >= 30)
    except ImportError:
        pass
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            try:
                tree = ast.parse(path.read_text("utf-8"))
            except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                    doc = ast.get_docstring(node)
                    if doc and len(doc.split()) >= 30:
                        docs.append(doc)
                        words += len(doc.split())
            if words >= limit_words:
                return docs
    return docs


def mock_answers(count: int, seed: str = "q", words: int = 400) -> list[str]:
    """Model-like answers from the mock's long-answer generator (gateway/mock/prose.py)."""
    return [long_answer(f"{seed}{i}", words) for i in range(count)]


def short_mock_answers(count: int) -> list[str]:
    """The mock's protocol-test answers (small vocabulary), for the FPR check."""
    return [answer_text(f"neg{i}", sentences=40) for i in range(count)]


def seeds() -> list[str]:
    paths = sorted(glob.glob(str(Path(__file__).resolve().parents[1] / "shared" / "seeds" / "*.txt")))
    paths += sorted(glob.glob("/work/shared/seeds/*.txt"))
    return [Path(p).read_text("utf-8") for p in dict.fromkeys(paths)]


def windows(texts: list[str], words: int, limit: int) -> list[str]:
    """Consecutive windows of ``words`` words (whitespace kept inside a window)."""
    out: list[str] = []
    tokens: list[str] = []
    for text in texts:
        tokens.extend(text.split(" "))
        while len(tokens) >= words:
            out.append(" ".join(tokens[:words]))
            del tokens[:words]
            if len(out) >= limit:
                return out
    return out


# ----------------------------------------------------------------------------- attacks


def attack(text: str, rng: random.Random, delete: float = 0.1, substitute: float = 0.1) -> str:
    """Delete ``delete`` of the words at random, then replace ``substitute`` of the words by a synonym."""
    words = [w for w in text.split() if rng.random() >= delete]
    candidates_at = [i for i, w in enumerate(words) if w.lower().strip(".,;:!?") in ATTACK_SYNONYMS]
    wanted = round(substitute * len(words))
    for i in rng.sample(candidates_at, min(wanted, len(candidates_at))):
        core = words[i].strip(".,;:!?")
        synonym = ATTACK_SYNONYMS[core.lower()]
        if core[:1].isupper():
            synonym = synonym[:1].upper() + synonym[1:]
        words[i] = words[i].replace(core, synonym, 1)
    return " ".join(words)


# ----------------------------------------------------------------------------- measurements


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


SECTIONS = ("detection", "fpr", "calibration", "robustness", "attribution", "corpus", "quality")


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--corpus-only", action="store_true", help="run only the corpus-level measurement")
    parser.add_argument("--strength", choices=["exact", "near", "both"], default="both")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of: {', '.join(SECTIONS)}",
    )
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
