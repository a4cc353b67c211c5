"""Detecting the green-list mark: re-tokenize with the model's own tokenizer, test distinct tokens.

Each document is tokenized with the upstream model's tokenizer (a llama.cpp server's ``/tokenize``
endpoint, a ``tokenizer.json`` or the model's GGUF file: :mod:`policies.watermark.model_tokenizers`),
and each *distinct* token id is scored once: repeated tokens and repeated n-grams would otherwise
inflate the statistic (Sander et al. 2024). Under the null hypothesis (text not generated with a
key) each distinct token is green with probability exactly ``gamma``, independently (see
:mod:`policies.watermark.green_list`), so the number of green distinct tokens is Binomial(n, gamma)
and its exact tail is the p-value.

A distinct token's one hit is *weighted* by how often it occurs in the text, ``min(count,
repeat_cap)`` (1, 2 or 3 by default): a token the sampler chose again and again under the bias is
more likely green than one it chose once, and an edit (a replaced or inserted token) mostly adds
tokens that occur once. The weights come from the text, not from the key, so under the null
hypothesis the weighted sum of the independent Bernoulli(gamma) colours has an exact tail
(:class:`~policies.watermark.stats.WeightedBinomialTest`): each distinct token is still one coin,
never counted as several. ``repeat_cap=1`` is the plain binomial test.

With a nested layout (the account list a keyed subset of the provider list) an account is tested on
the distinct tokens that are green in the provider list only, against ``account_gamma``: text marked
through the gateway is rich in provider-green tokens, and conditioning on their colour keeps the null
exact for every account but the one whose subset it was marked with.

The provider-wide key (one test per master key: "was this generated through our gateway, or by a
model trained on such text?") is reported on its own; the account keys are tested together and
corrected for their number (Holm by default), and an account is attributed only when its corrected
p-value is at most ``alpha``. The corpus test scores each token id once over all documents.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from policies.watermark.detector import Candidate
from policies.watermark.green_list import green_mask, provider_key
from policies.watermark.keys import MasterKey
from policies.watermark.stats import WeightedBinomialTest, adjust

# Weights 1, 2, 3 for a token seen once, twice, three times or more: measured on SmolLM2 answers
# (docs/watermark.md), where tokens seen once were 95% provider-green, twice 98%, three times or more
# 99% (null 75%), and after 10% random edits those seen once only 89%.
REPEAT_CAP = 3


class GreenListDetector:
    """Scores documents against the provider-wide keys and every candidate account's green list."""

    def __init__(
        self,
        masters: Sequence[MasterKey],
        candidates: Sequence[Candidate],
        *,
        vocab_size: int,
        gamma: float,
        tokenize: Callable[[str], list[int]],
        alpha: float = 1e-3,
        correction: str = "holm",
        account_gamma: float | None = None,
        nested: bool = False,
        end_tokens: Sequence[int] = (),
        repeat_cap: int = REPEAT_CAP,
    ) -> None:
        """``gamma``: the provider list's fraction; ``account_gamma`` (default ``gamma``) and
        ``nested``: the account list's, as in :class:`policies.watermark.green_list.GreenLayout`.
        ``end_tokens``: the model's, biased at the neutral level whatever the key, so never scored.
        ``repeat_cap``: a distinct token's hit weighs ``min(count, repeat_cap)`` (1: unweighted)."""
        if repeat_cap < 1:
            raise ValueError("repeat_cap must be at least 1")
        self.masters = list(masters)
        self.candidates = list(candidates)
        self.vocab_size = vocab_size
        self.gamma = gamma
        self.account_gamma = gamma if account_gamma is None else account_gamma
        self.nested = nested
        self.end_tokens = np.asarray(sorted(set(end_tokens)), dtype=np.int64)
        self.tokenize = tokenize
        self.alpha = alpha
        self.correction = correction
        self.repeat_cap = repeat_cap
        self._provider = np.stack([green_mask(provider_key(m), vocab_size, gamma) for m in self.masters])
        # each candidate's own split; nested, it is tested on its master's provider-green tokens only
        self._accounts = (
            np.stack([green_mask(c.key, vocab_size, self.account_gamma) for c in self.candidates])
            if self.candidates
            else np.zeros((0, vocab_size), dtype=bool)
        )
        row = {m.id: i for i, m in enumerate(self.masters)}
        self._master_of = np.array([row.get(c.key_id, 0) for c in self.candidates], dtype=np.int64)

    def distinct(self, text: str) -> np.ndarray:
        """The distinct token ids of ``text`` inside the vocabulary (each scored once)."""
        return self.counted(text)[0]

    def counted(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The distinct token ids of ``text`` inside the vocabulary, and how often each occurs."""
        ids, counts = np.unique(np.asarray(self.tokenize(text), dtype=np.int64), return_counts=True)
        keep = (ids >= 0) & (ids < self.vocab_size) & ~np.isin(ids, self.end_tokens)
        return ids[keep], counts[keep]

    def weights(self, counts: np.ndarray | None, size: int) -> np.ndarray:
        """Each distinct token's weight, ``min(count, repeat_cap)``; 1 where no counts are given."""
        if counts is None:
            return np.ones(size, dtype=np.int64)
        return np.clip(np.asarray(counts, dtype=np.int64), 1, self.repeat_cap)

    def score(self, ids: np.ndarray, counts: np.ndarray | None = None) -> dict[str, Any]:
        """The provider tests and the candidates' tests (corrected) for one set of distinct ids.

        ``counts`` (aligned with ``ids``): how often each occurs, for the weights; without them
        every distinct token weighs 1 (the plain binomial test).
        """
        n = int(ids.size)
        by_class = self._classes(counts, n)
        green = self._provider[:, ids]
        provider = self.provider_tests(ids, counts)
        if self.nested and self.candidates:
            # Only the provider-green tokens can carry the account's mark; among them each token is
            # in the account's subset with probability account_gamma under the null, independently
            # of the provider list and of every other account's subset: the test stays exact.
            scored = green[self._master_of]
        else:
            scored = np.ones((len(self.candidates), n), dtype=bool)
        tests = self._tests(by_class, self._accounts[:, ids], scored, self.account_gamma)
        p_values = [t.p_value for t in tests]
        corrected = adjust(p_values, self.correction) if p_values else []
        rows = [
            {
                "account": c.account,
                "key_id": c.key_id,
                **t.as_dict(),
                "p_corrected": pc,
                "attributed": pc <= self.alpha,
            }
            for c, t, pc in zip(self.candidates, tests, corrected, strict=True)
        ]
        rows.sort(key=lambda r: (r["log10_p"], r["account"]))
        return {
            "scored_tokens": n,
            "provider": provider,
            "provider_detected": any(p["p_value"] <= self.alpha for p in provider),
            "attributed": [f"{r['account']}@{r['key_id']}" for r in rows if r["attributed"]],
            "candidates": rows,
        }

    def provider_tests(self, ids: np.ndarray, counts: np.ndarray | None = None) -> list[dict[str, Any]]:
        """The provider-wide test of each master key alone (no candidates): ``score``'s ``provider``."""
        by_class = self._classes(counts, int(ids.size))
        everywhere = np.ones((1, int(ids.size)), dtype=bool)
        return [
            {"key_id": m.id, **self._tests(by_class, row[None, :], everywhere, self.gamma)[0].as_dict()}
            for m, row in zip(self.masters, self._provider[:, ids], strict=True)
        ]

    def _classes(self, counts: np.ndarray | None, size: int) -> np.ndarray:
        """``by_class[i, c]`` is 1 where distinct token i weighs c + 1."""
        weight = self.weights(counts, size)
        return (weight[:, None] == np.arange(1, self.repeat_cap + 1)[None, :]).astype(np.int64)

    @staticmethod
    def _tests(
        by_class: np.ndarray, green: np.ndarray, scored: np.ndarray, p0: float
    ) -> list[WeightedBinomialTest]:
        """One test per row of ``green`` over the tokens ``scored`` in that row, hits by weight class."""
        n_by_class = scored.astype(np.int64) @ by_class
        hits_by_class = (green & scored).astype(np.int64) @ by_class
        weights = range(1, by_class.shape[1] + 1)
        return [
            WeightedBinomialTest(tuple(zip(weights, map(int, n_row), map(int, h_row), strict=True)), p0)
            for n_row, h_row in zip(n_by_class, hits_by_class, strict=True)
        ]

    def detect(self, texts: Sequence[str], per_document: bool = True, top: int = 5) -> dict[str, Any]:
        """The report: the corpus (each token id once over all documents) and, optionally, each document."""
        docs = [self.counted(text) for text in texts]
        # the corpus: each token id once over all documents, weighed by its count over all of them
        every = np.concatenate([ids for ids, _ in docs]) if docs else np.zeros(0, dtype=np.int64)
        union, where = np.unique(every, return_inverse=True)
        totals = np.zeros(union.size, dtype=np.int64)
        if docs:
            np.add.at(totals, where, np.concatenate([counts for _, counts in docs]))
        corpus = self.score(union, totals)
        corpus["candidates"] = corpus["candidates"][:top]
        report: dict[str, Any] = {
            "scheme": "green_list",
            "gamma": self.gamma,
            "account_gamma": self.account_gamma,
            "nested": self.nested,
            "vocab_size": self.vocab_size,
            "repeat_cap": self.repeat_cap,
            "alpha": self.alpha,
            "correction": self.correction,
            "candidates_tested": len(self.candidates),
            "documents_scored": len(texts),
            "corpus": corpus,
        }
        if per_document:
            report["documents"] = []
            for ids, counts in docs:
                result = self.score(ids, counts)
                result["candidates"] = result["candidates"][:top]
                report["documents"].append(result)
        return report


def green_summary(report: dict[str, Any]) -> str:
    """A few lines for a person: the provider test, the best candidates, what is attributed."""
    corpus = report["corpus"]
    lines = [
        f"green list (gamma {report['gamma']}, vocabulary {report['vocab_size']}): "
        f"{report['documents_scored']} document(s), {corpus['scored_tokens']} distinct tokens scored "
        f"(each hit weighted by its count, at most {report['repeat_cap']}), "
        f"{report['candidates_tested']} candidate(s), {report['correction']} at alpha {report['alpha']:g}"
    ]
    for row in corpus["provider"]:
        lines.append(
            f"  provider-wide key {row['key_id']}: {row['hits']}/{row['scored']} green, "
            f"p={row['p_value']:.3g}"
        )
    for row in corpus["candidates"]:
        lines.append(
            f"  {row['account']}@{row['key_id']}: {row['hits']}/{row['scored']} green, "
            f"p={row['p_value']:.3g}, corrected p={row['p_corrected']:.3g}"
        )
    lines.append("attributed: " + (", ".join(corpus["attributed"]) or "none"))
    return "\n".join(lines)
