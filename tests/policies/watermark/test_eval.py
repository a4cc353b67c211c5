"""Small versions of bench/watermark_eval with real assertions (the full run is the benchmark)."""

from __future__ import annotations

import random

from bench.watermark_eval import (
    MASTER,
    attack,
    attribution,
    mock_answers,
    p_value,
    quality,
    stdlib_docstrings,
    windows,
)
from policies.watermark.marker import mark_text

KEY = MASTER.account_key("account-0001")


def test_long_marked_answers_are_detected_and_unmarked_ones_are_not() -> None:
    marked = windows(mock_answers(12, "ci", 1000), 1600, 6)
    assert sum(p_value(mark_text(t, KEY), KEY)[0] <= 1e-3 for t in marked) == len(marked)
    unmarked = windows(mock_answers(40, "ci-neg", 300), 200, 60) + windows(stdlib_docstrings(30), 200, 60)
    assert sum(p_value(t, KEY)[0] <= 1e-3 for t in unmarked) == 0


def test_attack_keeps_long_texts_detectable() -> None:
    rng = random.Random(1)
    sample = windows(mock_answers(12, "ci-attack", 1000), 1600, 5)
    attacked = [attack(mark_text(t, KEY), rng) for t in sample]
    assert all(a != mark_text(t, KEY) for a, t in zip(attacked, sample, strict=True))
    assert sum(p_value(a, KEY)[0] <= 1e-3 for a in attacked) >= 4


def test_attribution_names_the_right_account_and_no_other() -> None:
    result = attribution(windows(mock_answers(8, "ci-attr", 1000), 1500, 4), 50, 1e-3)
    assert result["right"] == 1.0 and result["false_attributions"] == 0


def test_every_substitution_is_a_dictionary_swap() -> None:
    result = quality(mock_answers(10, "ci-q", 400) + stdlib_docstrings(10)[:50], KEY)
    assert result["non_dictionary"] == 0 and 0.2 < result["per_100_words"] < 5


def test_near_strength_attributes_shorter_samples() -> None:
    sample = windows(mock_answers(8, "ci-near", 600), 500, 6)
    near = attribution(sample, 50, 1e-3, "near")
    assert near["false_attributions"] == 0 and near["right"] >= 5 / 6
    result = quality(mock_answers(6, "ci-q-near", 400), KEY, "near", examples=3)
    assert result["non_dictionary"] == 0 and result["examples"]
