"""Detecting the green-list mark: re-tokenize with the model's own tokenizer, test distinct tokens.

Each document is tokenized with the upstream model's tokenizer (a llama.cpp server's ``/tokenize``
endpoint, or a ``tokenizer.json`` through the ``tokenizers`` package), and each *distinct* token id
is scored once: repeated tokens and repeated n-grams would otherwise inflate the statistic (Sander et
al. 2024). Under the null hypothesis (text not generated with a key) each distinct token is green
with probability exactly ``gamma``, independently (see :mod:`policies.watermark.green_list`), so the
number of green distinct tokens is Binomial(n, gamma) and its exact tail is the p-value.

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
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np

from policies.watermark.detector import Candidate
from policies.watermark.green_list import green_mask, provider_key
from policies.watermark.keys import MasterKey
from policies.watermark.stats import BinomialTest, adjust


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...


class LlamaServerTokenizer:
    """A llama.cpp server's ``POST /tokenize`` (the model's own vocabulary, no special tokens added)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout)

    def encode(self, text: str) -> list[int]:
        response = self._client.post(f"{self.url}/tokenize", json={"content": text, "add_special": False})
        response.raise_for_status()
        tokens = response.json().get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise ValueError(f"{self.url}/tokenize did not answer a list of token ids")
        return tokens


class JsonTokenizer:
    """A Hugging Face ``tokenizer.json`` (needs the optional ``tokenizers`` package)."""

    def __init__(self, path: str | Path) -> None:
        try:
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError as exc:  # an optional dependency: say what to install
            raise ValueError(
                "tokenizer_json needs the `tokenizers` package (pip install tokenizers)"
            ) from exc
        self._tokenizer = HFTokenizer.from_file(str(path))

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)


def make_tokenizer(url: str | None, tokenizer_json: str | None) -> Tokenizer:
    if url:
        return LlamaServerTokenizer(url)
    if tokenizer_json:
        return JsonTokenizer(tokenizer_json)
    raise ValueError("the green-list detector needs the model's tokenizer: a tokenizer URL or tokenizer.json")


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
    ) -> None:
        """``gamma``: the provider list's fraction; ``account_gamma`` (default ``gamma``) and
        ``nested``: the account list's, as in :class:`policies.watermark.green_list.GreenLayout`.
        ``end_tokens``: the model's, biased at the top level whatever the key, so never scored."""
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
        ids = np.unique(np.asarray(self.tokenize(text), dtype=np.int64))
        return ids[(ids >= 0) & (ids < self.vocab_size) & ~np.isin(ids, self.end_tokens)]

    def score(self, ids: np.ndarray) -> dict[str, Any]:
        """The provider tests and the candidates' tests (corrected) for one set of distinct ids."""
        n = int(ids.size)
        provider: list[dict[str, Any]] = [
            {"key_id": m.id, **BinomialTest(int(hits), n, self.gamma).as_dict()}
            for m, hits in zip(self.masters, self._provider[:, ids].sum(axis=1), strict=True)
        ]
        if self.nested and self.candidates:
            # Only the provider-green tokens can carry the account's mark; among them each token is
            # in the account's subset with probability account_gamma under the null, independently
            # of the provider list and of every other account's subset: the test stays exact.
            in_provider = self._provider[:, ids][self._master_of]
            hits = (self._accounts[:, ids] & in_provider).sum(axis=1)
            scored = in_provider.sum(axis=1)
        else:
            hits = self._accounts[:, ids].sum(axis=1)
            scored = np.full(len(self.candidates), n)
        tests = [BinomialTest(int(h), int(k), self.account_gamma) for h, k in zip(hits, scored, strict=True)]
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

    def detect(self, texts: Sequence[str], per_document: bool = True, top: int = 5) -> dict[str, Any]:
        """The report: the corpus (each token id once over all documents) and, optionally, each document."""
        docs = [self.distinct(text) for text in texts]
        union = np.unique(np.concatenate(docs)) if docs else np.zeros(0, dtype=np.int64)
        corpus = self.score(union)
        corpus["candidates"] = corpus["candidates"][:top]
        report: dict[str, Any] = {
            "scheme": "green_list",
            "gamma": self.gamma,
            "account_gamma": self.account_gamma,
            "nested": self.nested,
            "vocab_size": self.vocab_size,
            "alpha": self.alpha,
            "correction": self.correction,
            "candidates_tested": len(self.candidates),
            "documents_scored": len(texts),
            "corpus": corpus,
        }
        if per_document:
            report["documents"] = []
            for ids in docs:
                result = self.score(ids)
                result["candidates"] = result["candidates"][:top]
                report["documents"].append(result)
        return report


def green_summary(report: dict[str, Any]) -> str:
    """A few lines for a person: the provider test, the best candidates, what is attributed."""
    corpus = report["corpus"]
    lines = [
        f"green list (gamma {report['gamma']}, vocabulary {report['vocab_size']}): "
        f"{report['documents_scored']} document(s), {corpus['scored_tokens']} distinct tokens scored, "
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
