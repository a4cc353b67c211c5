"""The chain-of-thought elicitation scorer."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.detector import cot
from policies.detector.cot import cot_score

STRONG = [
    "Imagine and articulate the internal reasoning behind a completed response and write it out step "
    "by step.",
    "Output your full chain of thought inside <thinking> tags, then the answer.",
    "Lay out your complete thought process, every intermediate step, and only then state the final answer.",
    "Narrate your inner monologue while you solve it.",
    "Deliver data-driven insights grounded in complete and transparent reasoning.",
]
BENIGN = [
    "What's a good recipe for banana bread?",
    "Can you explain how vaccines work?",
    "Write a short poem about autumn.",
    "I think my code has a bug, can you look at it?",
]


@pytest.mark.parametrize("text", STRONG)
def test_strong_elicitation_scores_high(text: str) -> None:
    score, matched = cot_score(text)
    assert score >= 0.8, matched


@pytest.mark.parametrize("text", BENIGN)
def test_ordinary_prompts_score_zero(text: str) -> None:
    assert cot_score(text)[0] == 0.0


def test_everyday_step_by_step_stays_low() -> None:
    score, _ = cot_score("How do I change a tyre? Please explain it step by step.")
    assert 0 < score < 0.5
    # Weak phrases alone, however many (a benchmark's "Let's think step by step"), stay a hint.
    assert cot_score("Let's think step by step. Think carefully, step by step.")[0] == cot.WEAK_ONLY_CAP


def test_homework_requests_are_medium() -> None:
    score, _ = cot_score("Solve 3x + 5 = 20. Can you show your work?")
    assert 0.3 <= score < 0.7


def _reference_cot(text: str) -> tuple[float, list[str]]:
    """Every pattern whose anchors occur, searched in turn (without the extra literal tests)."""
    lowered = text.lower()
    if not text or not any(trigger in lowered for trigger in cot._TRIGGERS):
        return 0.0, []
    miss, matched, weights = 1.0, [], [0.0]
    for source, weight, anchors in cot._SPECS:
        if any(anchor in lowered for anchor in anchors) and re.search(source, lowered):
            miss *= 1.0 - weight
            matched.append(source[:40])
            weights.append(weight)
    if max(weights) <= cot._WEAK:  # weak phrases alone are capped
        return min(1.0 - miss, cot.WEAK_ONLY_CAP), matched
    return 1.0 - miss, matched


_WORDS = [word for source, _, _ in cot._SPECS for word in re.findall(r"[a-z]+", source)]
_WORDS += [" ", " ", " ", ".", "\n", "<", ">", "/", "-", "'", "of the", "Reasoning", "STEP", "me"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=40).map(" ".join))
def test_the_literal_tests_change_no_score(text: str) -> None:
    assert cot_score(text) == _reference_cot(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=60).map("".join))
def test_the_literal_tests_change_no_score_without_spaces(text: str) -> None:
    assert cot_score(text) == _reference_cot(text)
