"""Green-list detection: distinct tokens scored once, exact binomial, Holm over accounts, provider apart.

The text here is token ids written as words (``t123``) behind a ``/tokenize`` server on a real
socket, so that which tokens are green is known exactly; tests/llamacpp/test_green_list.py runs the
same detector on a real model's answers and tokenizer.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from policies.watermark.detector import candidates
from policies.watermark.green_detect import GreenListDetector
from policies.watermark.green_list import green_mask, provider_key
from policies.watermark.keys import MasterKey
from policies.watermark.model_tokenizers import LlamaServerTokenizer
from policies.watermark.stats import BinomialTest
from tests.support import ROOT

VOCAB = 4096
GAMMA = 0.25
SECRET = "test-master-key-0123456789"
MASTER = MasterKey("2026-01", SECRET.encode())
ACCOUNTS = [f"acct-{i}" for i in range(1000)]


def marked_text(account: str, tokens: int, seed: int, green_share: float = 0.8) -> str:
    """Ids drawn as a biased sampler would: from the union of both green lists with ``green_share``."""
    rng = random.Random(seed)
    union = green_mask(provider_key(MASTER), VOCAB, GAMMA) | green_mask(
        MASTER.account_key(account), VOCAB, GAMMA
    )
    green, red = np.flatnonzero(union), np.flatnonzero(~union)
    ids = [int(rng.choice(green if rng.random() < green_share else red)) for _ in range(tokens)]
    return " ".join(f"t{i}" for i in ids)


def detector(url: str, accounts: list[str] = ACCOUNTS) -> GreenListDetector:
    return GreenListDetector(
        [MASTER],
        candidates([MASTER], accounts),
        vocab_size=VOCAB,
        gamma=GAMMA,
        tokenize=LlamaServerTokenizer(url).encode,
    )


def test_the_binomial_tail_is_exact() -> None:
    for hits, n in ((0, 10), (4, 10), (9, 30), (30, 30), (120, 200)):
        exact = sum(math.comb(n, k) * GAMMA**k * (1 - GAMMA) ** (n - k) for k in range(hits, n + 1))
        assert BinomialTest(hits, n, GAMMA).p_value == pytest.approx(exact, rel=1e-9)


def test_a_marked_answer_is_attributed_among_1000_accounts(tokenize_url: str) -> None:
    report = detector(tokenize_url).detect([marked_text("acct-417", 400, seed=1)])
    corpus = report["corpus"]
    assert corpus["attributed"] == ["acct-417@2026-01"]
    assert corpus["provider_detected"] and corpus["provider"][0]["p_value"] < 1e-6
    best, second = corpus["candidates"][:2]
    assert best["p_corrected"] <= 1e-3 < second["p_corrected"]
    assert best["p_corrected"] >= best["p_value"]  # Holm over 1,000 candidates


def test_unmarked_text_and_other_accounts_text_are_not_attributed(tokenize_url: str) -> None:
    rng = random.Random(5)
    unmarked = [" ".join(f"t{rng.randrange(VOCAB)}" for _ in range(300)) for _ in range(20)]
    report = detector(tokenize_url, [a for a in ACCOUNTS if a != "acct-417"]).detect(
        [*unmarked, marked_text("acct-417", 300, seed=2)]
    )
    for doc in report["documents"][:-1]:
        assert doc["attributed"] == [] and not doc["provider_detected"]
    # acct-417's answer carries the provider mark but names none of the other 999 accounts
    assert report["documents"][-1]["attributed"] == [] and report["documents"][-1]["provider_detected"]


def test_repeated_tokens_are_scored_once(tokenize_url: str) -> None:
    green = int(np.flatnonzero(green_mask(MASTER.account_key("acct-1"), VOCAB, GAMMA))[0])
    report = detector(tokenize_url, ["acct-1"]).detect([" ".join([f"t{green}"] * 500)])
    row = report["corpus"]["candidates"][0]
    assert (row["hits"], row["scored"]) == (1, 1) and row["p_value"] == pytest.approx(GAMMA)
    # the corpus test scores each id once over all documents too
    twice = detector(tokenize_url, ["acct-1"]).detect([marked_text("acct-1", 100, 3)] * 2)
    assert twice["corpus"]["scored_tokens"] == twice["documents"][0]["scored_tokens"]


def test_ids_outside_the_vocabulary_are_not_scored(tokenize_url: str) -> None:
    report = detector(tokenize_url, ["acct-1"]).detect([f"t{VOCAB} t{VOCAB + 7} t3"])
    assert report["corpus"]["scored_tokens"] == 1


def test_the_cli_detects_with_the_scheme(tokenize_url: str, tmp_path: object) -> None:
    corpus = os.path.join(str(tmp_path), "corpus.jsonl")
    with open(corpus, "w") as handle:
        handle.write(json.dumps({"text": marked_text("acct-9", 250, seed=4)}) + "\n")
    accounts = os.path.join(str(tmp_path), "ids.txt")
    with open(accounts, "w") as handle:
        handle.write("\n".join(ACCOUNTS[:50]))
    env = {**os.environ, "WM_KEY": SECRET, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "gateway.cli", "watermark", "detect", corpus, "--keys", "2026-01=WM_KEY"]
    args = [*base, "--accounts-file", accounts, "--scheme", "green_list", "--vocab-size", str(VOCAB)]
    found = subprocess.run([*args, "--tokenizer-url", tokenize_url, "--json"], env=env, capture_output=True)
    assert found.returncode == 0, found.stderr
    report = json.loads(found.stdout)
    assert report["scheme"] == "green_list" and report["corpus"]["attributed"] == ["acct-9@2026-01"]
    no_tokenizer = subprocess.run(args, env=env, capture_output=True, text=True)
    assert no_tokenizer.returncode == 2 and "tokenizer" in no_tokenizer.stderr
