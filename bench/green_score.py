"""Scoring SmolLM2 answers marked with one green-list layout: bench.green_attrib's figures.

The product's detector (:class:`GreenListDetector`) over ``acct-0`` ... ``acct-<N-1>``, once per
``repeat_cap`` asked (1: each distinct token one unweighted hit, the test before; 3: the product's
default, a distinct token's hit weighed by its count, 1 to 3), so the two are compared on the same
answers in one run. Printed per cap: the provider-key TPR at 200 tokens, the right account among N
at 300 (per answer, 2 and 4 answers pooled, cut to 150 and 200 tokens), the worst answer's p-value,
robustness to 10% random token edits (one draw per answer as before, and the mean over ``draws``
draws per answer), and false positives on unmarked answers, human text and answers marked for an
account not among the candidates.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.token_edits import edit
from policies.watermark.detector import candidates
from policies.watermark.green_detect import GreenListDetector
from policies.watermark.keys import MasterKey
from tests.llamacpp.server import SMOLLM2_ENTRY

VOCAB = int(SMOLLM2_ENTRY["vocab_size"])  # type: ignore[call-overload]  # SmolLM2's n_vocab
END_TOKENS = tuple(int(t) for t in SMOLLM2_ENTRY["end_tokens"])  # type: ignore[attr-defined]
ALPHA = 1e-3
MASTER = MasterKey("bench", b"bench-green-list-master-key-0123")

Doc = tuple[np.ndarray, np.ndarray]  # distinct token ids and how often each occurs


def counted(tokens: Sequence[int], end_tokens: Sequence[int] = END_TOKENS) -> Doc:
    """Each token id once (inside the vocabulary, end tokens left out, as the detector scores) and
    its count in ``tokens``."""
    ids, counts = np.unique(np.asarray(tokens, dtype=np.int64), return_counts=True)
    keep = (ids >= 0) & (ids < VOCAB) & ~np.isin(ids, np.asarray(end_tokens, dtype=np.int64))
    return ids[keep], counts[keep]


def pool(docs: Sequence[Doc]) -> Doc:
    """Several answers of one account as one document: ids once, counts summed."""
    ids, where = np.unique(np.concatenate([d[0] for d in docs]), return_inverse=True)
    counts = np.zeros(ids.size, dtype=np.int64)
    np.add.at(counts, where, np.concatenate([d[1] for d in docs]))
    return ids, counts


@dataclass(frozen=True)
class Layout:
    """What the detector needs of a bench point: both lists' fractions and the layout."""

    gamma: float
    account_gamma: float
    nested: bool


class Scorer:
    """The product's detector over ``names`` (``acct-0`` first) with one ``repeat_cap``."""

    def __init__(
        self, layout: Layout, names: list[str], repeat_cap: int, end_tokens: Sequence[int] = END_TOKENS
    ) -> None:
        self.names = names
        settings = {
            "vocab_size": VOCAB,
            "gamma": layout.gamma,
            "account_gamma": layout.account_gamma,
            "nested": layout.nested,
            "tokenize": list,
            "end_tokens": end_tokens,
            "repeat_cap": repeat_cap,
        }
        self.detector = GreenListDetector([MASTER], candidates([MASTER], names), **settings)  # type: ignore[arg-type]
        # the first account alone: its raw p-value without testing the others (random-edit draws)
        self._first = GreenListDetector([MASTER], candidates([MASTER], names[:1]), **settings)  # type: ignore[arg-type]

    def provider_p(self, doc: Doc) -> float:
        return float(self.detector.provider_tests(*doc)[0]["p_value"])

    def accounts(self, doc: Doc) -> tuple[list[float], int]:
        """Every candidate's raw p-value (in ``names`` order) and the tokens scored for the first."""
        rows = {r["account"]: r for r in self.detector.score(*doc)["candidates"]}
        return [rows[n]["p_value"] for n in self.names], int(rows[self.names[0]]["scored"])

    def first_p(self, doc: Doc) -> float:
        """The raw p-value of the first account (``acct-0``) alone."""
        return float(self._first.score(*doc)["candidates"][0]["p_value"])

    def attributed(self, doc: Doc) -> list[str]:
        return [name.split("@")[0] for name in self.detector.score(*doc)["attributed"]]


def log10(p: float) -> float:
    return float(np.log10(max(p, 1e-300)))


def report(
    layout: Layout,
    names: list[str],
    repeat_cap: int,
    marked: list[list[int]],
    unmarked: list[list[int]],
    human: list[list[int]],
    *,
    tokens: int = 300,
    draws: int = 20,
    offset: int = 0,
    end_tokens: Sequence[int] = END_TOKENS,
) -> dict[str, float]:
    """Print one cap's figures for ``marked`` (answers for ``acct-0``, token ids) and return the main ones."""
    accounts = len(names) - 1
    target = Scorer(layout, names[:accounts], repeat_cap, end_tokens)
    others = Scorer(layout, names[1:], repeat_cap, end_tokens)
    n = len(marked)
    label = "weighted by count, cap" if repeat_cap > 1 else "unweighted (one hit per distinct token), cap"
    print(f"  -- detector {label} {repeat_cap}")
    p200 = [target.provider_p(counted(i[:200], end_tokens)) for i in marked]
    d300 = [counted(i[:tokens], end_tokens) for i in marked]
    single = [target.attributed(d) for d in d300]
    pooled = {k: [target.attributed(pool(d300[j : j + k])) for j in range(0, n - k + 1, k)] for k in (2, 4)}
    acct_p = [target.accounts(d) for d in d300]
    own = [log10(p[0][0]) for p in acct_p]
    right = sum("acct-0" in s for s in single)
    wrong = sum(len(set(s) - {"acct-0"}) for s in single + pooled[2] + pooled[4])
    print(
        f"    provider TPR at 200 tokens {sum(p <= ALPHA for p in p200) / n:.3f} (median log10 p "
        f"{statistics.median(log10(p) for p in p200):.1f}); right account among {accounts} at {tokens}: "
        f"{right}/{n} ({right / n:.3f}), "
        + ", ".join(f"{k} pooled {sum('acct-0' in s for s in g)}/{len(g)}" for k, g in pooled.items())
        + f"; wrong named {wrong}"
    )
    bar = np.log10(ALPHA / accounts)
    print(
        f"    median distinct {statistics.median(d[0].size for d in d300):.0f} (min "
        f"{min(d[0].size for d in d300)}), scored for the account "
        f"{statistics.median(p[1] for p in acct_p):.0f}; "
        f"account log10 p median {statistics.median(own):.1f}, worst {max(own):.1f} (Holm's bar for the "
        f"best of {accounts}: {bar:.1f}); answers within 1 order of the bar {sum(x > bar - 1 for x in own)}"
    )
    cuts = {
        c: sum("acct-0" in target.attributed(counted(i[:c], end_tokens)) for i in marked) for c in (150, 200)
    }
    print(
        "    right account, answers cut shorter: " + ", ".join(f"{c} tokens {k}/{n}" for c, k in cuts.items())
    )
    rng = random.Random(7)  # the single draw of the figures measured before
    edited = [counted(edit(i[:tokens], 0.1, rng, VOCAB), end_tokens) for i in marked]
    once_p = sum(target.provider_p(d) <= ALPHA for d in edited) / n
    once_a = sum("acct-0" in target.attributed(d) for d in edited) / n
    rates_p, rates_a = [], []
    for j, ids in enumerate(marked):
        hit_p = hit_a = 0
        for r in range(draws):
            rng_r = random.Random(10_000 * (offset + j) + r)
            doc = counted(edit(ids[:tokens], 0.1, rng_r, VOCAB), end_tokens)
            hit_p += target.provider_p(doc) <= ALPHA
            # the target's own test, Bonferroni over the candidates (Holm names it then too)
            hit_a += target.first_p(doc) * accounts <= ALPHA
        rates_p.append(hit_p / draws)
        rates_a.append(hit_a / draws)
    print(
        f"    after 10% of tokens deleted or replaced at random, {tokens} tokens: one draw (seed 7) provider "
        f"{once_p:.3f}, account {once_a:.3f}; mean of {draws} draws per answer provider "
        f"{np.mean(rates_p):.3f}, account {np.mean(rates_a):.3f}; answers under 0.9 of their draws: "
        f"provider {sum(r < 0.9 for r in rates_p)}, account {sum(r < 0.9 for r in rates_a)}"
    )
    misses = [
        f"#{offset + j} ({d300[j][0].size} distinct, 10^{own[j]:.1f})"
        for j, s in enumerate(single)
        if "acct-0" not in s
    ]
    print(f"    not attributed: {', '.join(misses) or 'none'}")
    false_docs = [counted(i[:tokens], end_tokens) for i in unmarked + human]
    raw = tests = 0
    for d in false_docs:
        p, _ = target.accounts(d)
        raw += sum(x <= ALPHA for x in p) + (target.provider_p(d) <= ALPHA)
        tests += len(p) + 1
    named = sum(bool(target.attributed(d)) for d in false_docs)
    wrong_others = sum(bool(others.attributed(d)) for d in d300)
    print(
        f"    false positives: {raw} of {tests:,} (document, key) tests at raw p <= 1e-3 on {len(unmarked)} "
        f"unmarked + {len(human)} human; attributed: unmarked/human {named}, marked against {accounts} "
        f"others {wrong_others} of {n}"
    )
    return {
        "provider_tpr_200": sum(p <= ALPHA for p in p200) / n,
        "right": right,
        "wrong": wrong,
        "worst_log10_p": max(own),
        "edited_provider_mean": float(np.mean(rates_p)),
        "edited_account_mean": float(np.mean(rates_a)),
        "false_positive_tests": raw,
    }
