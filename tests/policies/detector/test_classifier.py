"""The capability classifier and the rubric score."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.detector import fingerprint
from policies.detector.classifier import (
    _CODE_SIGNS,
    _MATH_SIGNS,
    _VOCABULARY,
    CATEGORIES,
    _signs,
    asks_for_scale,
    classify,
    rubric_score,
)

CASES = [
    ("Write a Python function to parse a JSON config and debug the KeyError it raises.", "coding"),
    ("```js\nconst x = () => 1;\n```\nWhy does this return undefined?", "coding"),
    ("Solve the equation 3x + 5 = 20 and simplify the fraction, then prove the lemma.", "math"),
    ("A knight always tells the truth; solve this logic puzzle by deduction.", "reasoning"),
    ("You have tools: search and browse. Plan the subtasks and orchestrate the agent workflow.", "agentic"),
    ("Give censorship-safe alternatives to politically sensitive questions without refusal.", "safety"),
    ("Grade the response with this rubric: correctness, helpfulness. Score from 1 to 10.", "rubric"),
    ("What's a good recipe for banana bread?", "other"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_classes(text: str, expected: str) -> None:
    category, votes = classify(text)
    assert CATEGORIES[category] == expected, votes


def test_tools_in_the_request_count_as_agentic() -> None:
    category, _ = classify("Fetch the weather for Paris.", has_tools=True)
    assert CATEGORIES[category] == "agentic"


def test_rubric_score_needs_grading_words_not_just_answer() -> None:
    _, votes = classify("Please answer with a short response.")
    assert rubric_score(votes, "Please answer with a short response.") == 0.0
    text = "You are a judge. Grade the assistant's response against the rubric criteria on a scale of 1-10."
    _, votes = classify(text)
    assert rubric_score(votes, text) >= 0.8


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_fingerprint_words_vote_like_the_str_vocabulary(text: str, expected: str) -> None:
    """The detector passes the fingerprint's content words as bytes: same votes as a plain lookup."""
    words = fingerprint.tokens(fingerprint.normalise(text))
    _, votes = classify(text, False, [word.encode() for word in words])
    expected_votes = [0.0] * len(CATEGORIES)
    for word in set(words) & _VOCABULARY.keys():
        index, weight = _VOCABULARY[word]
        expected_votes[index] += weight
    _, text_only = classify(text, False, [])  # the text's literal signs (code, arithmetic)
    assert votes == pytest.approx([a + b for a, b in zip(expected_votes, text_only, strict=True)])


_SCALE_REFERENCE = re.compile(
    r"\b(?:scale|score) (?:of|from) \d+\s*(?:-|to)\s*\d+|\b\d+\s*(?:-|to)\s*10\b|/10\b", re.I
)
_SCALE_PIECES = ["score", "Scale", "SCORE", "\u017fcale", "of", "from", "to", "TO", " ", "-", "/", "1", "10"]
_SCALE_PIECES += ["0", "5", "a", ".", "\n", "\t", "é", "x"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_SCALE_PIECES), max_size=40).map("".join))
def test_asks_for_scale_matches_the_single_regex(text: str) -> None:
    assert asks_for_scale(text) == (_SCALE_REFERENCE.search(text) is not None)


_SIGN_PIECES = ["```", "def ", "return ", ";\n", "{\n", "=>", "import ", "();", "()", "</", "#include"]
_SIGN_PIECES += ["\\frac", "\\sum", "\\int", "x =", "y =", "x^", "√", "x", "=", ">", "(", ")", ";", "{", "\n"]
_SIGN_PIECES += [" ", "1", "2", "٣", "+", "-", "*", "/", "^", "a", "é", "\u2003"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_SIGN_PIECES), max_size=30).map("".join))
def test_one_scan_for_signs_finds_what_substring_tests_and_the_regex_find(text: str) -> None:
    code = any(sign in text for sign in _CODE_SIGNS)
    math = any(sign in text for sign in _MATH_SIGNS) or re.search(r"\d\s*[-+*/^=]\s*\d", text) is not None
    assert _signs(text) == (code, math)
