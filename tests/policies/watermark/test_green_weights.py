"""The green-list test weighs each distinct token's one hit by how often it occurs (1, 2, 3+).

A marked answer's repeated tokens are its surest green ones, and random edits add tokens that occur
once: the weighted test keeps an edited answer detectable where the unweighted one loses it, while
its null stays exact (the weights come from the text, never from the key). The text is token ids
written as words (``t123``) behind a ``/tokenize`` server on a real socket, as in test_green_detect.
"""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from bench.token_edits import edit
from policies.watermark.green_detect import GreenListDetector
from policies.watermark.green_list import green_mask, provider_key
from policies.watermark.keys import MasterKey
from policies.watermark.model_tokenizers import LlamaServerTokenizer
from policies.watermark.stats import WeightedBinomialTest

VOCAB = 49152
GAMMA = 0.75  # the preset's provider list
MASTER = MasterKey("2026-01", b"test-master-key-0123456789")


def detector(url: str, master: MasterKey = MASTER, **kw: int) -> GreenListDetector:
    return GreenListDetector(
        [master], [], vocab_size=VOCAB, gamma=GAMMA, tokenize=LlamaServerTokenizer(url).encode, **kw
    )


def looping_answer(seed: int) -> list[int]:
    """What a small model's marked 300-token answer looks like at its weakest (SmolLM2: 41-45
    distinct tokens): 42 provider-green ids, 12 used once, 12 three times, 18 fourteen times."""
    rng = random.Random(seed)
    green = [int(t) for t in np.flatnonzero(green_mask(provider_key(MASTER), VOCAB, GAMMA))]
    ids = rng.sample(green, 42)
    tokens = [t for i, t in enumerate(ids) for _ in range(1 if i < 12 else 3 if i < 24 else 14)]
    rng.shuffle(tokens)
    return tokens


def text(tokens: list[int]) -> str:
    return " ".join(f"t{t}" for t in tokens)


def test_the_weighted_tail_is_exact() -> None:
    """Against every colouring of nine tokens of weights 1, 2 and 3, enumerated."""
    weights = [1, 1, 1, 1, 2, 2, 2, 3, 3]
    outcomes = [
        (sum(w for w, g in zip(weights, colours, strict=True) if g), colours)
        for colours in itertools.product((0, 1), repeat=len(weights))
    ]
    for score, colours in outcomes:
        exact = sum(GAMMA ** sum(c) * (1 - GAMMA) ** (len(c) - sum(c)) for s, c in outcomes if s >= score)
        classes = tuple(
            (w, weights.count(w), sum(g for v, g in zip(weights, colours, strict=True) if v == w))
            for w in (1, 2, 3)
        )
        test = WeightedBinomialTest(classes, GAMMA)
        assert test.score == score
        assert test.p_value == pytest.approx(exact, rel=1e-9)
    flat = WeightedBinomialTest(((1, 30, 27),), GAMMA)  # all weights 1: the binomial tail
    binomial = sum(math.comb(30, k) * GAMMA**k * (1 - GAMMA) ** (30 - k) for k in range(27, 31))
    assert flat.p_value == pytest.approx(binomial, rel=1e-9)


def test_an_edited_marked_answer_stays_detected(tokenize_url: str) -> None:
    """10% of the tokens deleted or replaced at random, 40 times: the weighted test finds the
    provider key in at least 90% (the target), the unweighted one of before does not."""
    answer = looping_answer(1)
    found = {1: 0, 3: 0}
    for seed in range(40):
        attacked = text(edit(answer, 0.1, random.Random(seed), VOCAB))
        for cap in found:
            report = detector(tokenize_url, repeat_cap=cap).detect([attacked], per_document=False)
            found[cap] += report["corpus"]["provider_detected"]
    assert found[3] >= 36, found
    assert found[1] < 36, found
    default = detector(tokenize_url).detect([text(answer)], per_document=False)
    assert default["repeat_cap"] == 3 and default["corpus"]["provider_detected"]


def test_weights_keep_the_null_exact_on_repetitive_unmarked_text(tokenize_url: str) -> None:
    """Text no key marked, as repetitive as a looping answer, against 400 keys: p <= alpha for at
    most about alpha of them (each key colours the distinct tokens independently of their counts)."""
    rng = random.Random(3)
    tokens = [t for i, t in enumerate(rng.sample(range(VOCAB), 60)) for _ in range(1 + i % 9)]
    unmarked = text(tokens)
    tokenizer = LlamaServerTokenizer(tokenize_url)
    counted = detector(tokenize_url).counted(unmarked)
    assert counted[1].max() == 9  # the counts reach the detector
    low = {0.05: 0, 0.01: 0}
    for k in range(400):
        master = MasterKey(f"k{k}", f"null-key-{k}-0123456789abcdef".encode())
        det = GreenListDetector([master], [], vocab_size=VOCAB, gamma=GAMMA, tokenize=tokenizer.encode)
        p = det.provider_tests(*counted)[0]["p_value"]
        for alpha in low:
            low[alpha] += p <= alpha
    # binomial(400, alpha) upper bounds at about 3 standard deviations
    assert low[0.05] <= 20 + 13 and low[0.01] <= 4 + 6, low


def test_a_token_counts_once_however_often_it_repeats(tokenize_url: str) -> None:
    """One green token 500 times is one hit of weight 3: p = gamma, as for one occurrence."""
    green = int(np.flatnonzero(green_mask(provider_key(MASTER), VOCAB, GAMMA))[0])
    row = detector(tokenize_url).detect([text([green] * 500)])["corpus"]["provider"][0]
    assert (row["hits"], row["scored"], row["score"]) == (1, 1, 3)
    assert row["p_value"] == pytest.approx(GAMMA)


def test_the_corpus_weighs_a_token_by_its_count_over_all_documents(tokenize_url: str) -> None:
    mask = green_mask(provider_key(MASTER), VOCAB, GAMMA)
    green, red = int(np.flatnonzero(mask)[0]), int(np.flatnonzero(~mask)[0])
    report = detector(tokenize_url).detect([text([green, red]), text([green, red, red])])
    first, second = (d["provider"][0] for d in report["documents"])
    assert (first["score"], second["score"]) == (1, 1)
    corpus = report["corpus"]["provider"][0]
    assert (corpus["hits"], corpus["scored"], corpus["score"]) == (1, 2, 2)
    # the null of the corpus row: S = 2 (green) + 0 (red) is reached unless both are red
    assert corpus["p_value"] == pytest.approx(1 - (1 - GAMMA) ** 2, rel=1e-9)
