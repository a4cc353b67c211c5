"""Template fingerprints: normalisation, MinHash band keys, determinism across processes."""

from __future__ import annotations

import itertools
import subprocess
import sys
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.detector import fingerprint as fp

TEMPLATE = (
    "Imagine and articulate the internal reasoning behind a completed response to the problem below, "
    "and write it out step by step before giving the final answer.\n\nProblem: {problem}"
)
PROBLEMS = [
    "Alice has 12 apples and gives Bruno 5; how many are left for the picnic?",
    "A train leaves at 9 am at 80 km per hour; when does the second one catch up?",
    "Find all integers x such that 3x + 7 is divisible by 5 and x is below 40.",
    "The ratio of cards to boxes is 4 to 1; how many boxes hold 96 cards?",
]


def test_normalise_masks_what_varies_between_uses() -> None:
    text = fp.normalise(
        'Ask Maria about order 12,345 at https://x.example/a and "some quoted payload" today.'
    )
    assert "12" not in fp.tokens(text) and "qnum" not in text  # numbers make no words
    assert "maria" not in text and "qname" in text
    assert "qurl" in text and "x.example" not in text
    assert "qpayload" in text and "quoted" not in text
    assert fp.normalise("```python\nprint(1)\n```").strip() == "qcode"


def test_template_uses_share_band_keys_and_unrelated_prompts_do_not() -> None:
    keys = [set(fp.template_keys(TEMPLATE.format(problem=p))) for p in PROBLEMS]
    for other in keys[1:]:
        assert keys[0] & other, "uses of one template must share at least one band key"
    unrelated = [
        "What are three interesting facts about the history of jazz?",
        "My puppy chews everything, how do I train him to stop?",
        "Write a cover letter for a nursing job in a children's hospital.",
    ]
    for text in unrelated:
        assert not set(fp.template_keys(text)) & keys[0]


def test_numbers_and_names_do_not_change_the_fingerprint() -> None:
    a = fp.template_keys("Summarize ticket 48213 from Alice about the billing page charging twice.")
    b = fp.template_keys("Summarize ticket 99120 from Bruno about the billing page charging twice.")
    assert a == b and a


def test_short_prompts_give_few_keys_and_empty_ones_none() -> None:
    assert fp.template_keys("") == []
    assert fp.template_keys("the and of") == []  # stop words only
    assert len(fp.template_keys("thanks a lot")) == 1  # the whole-text key only


def test_similarity_estimates_jaccard() -> None:
    words_a = [f"w{i}" for i in range(200)]
    words_b = words_a[:150] + [f"x{i}" for i in range(50)]
    sim = fp.similarity(fp.signature(words_a), fp.signature(words_b))
    shingles_a = {f"{x} {y}" for x, y in itertools.pairwise(words_a)}
    shingles_b = {f"{x} {y}" for x, y in itertools.pairwise(words_b)}
    jaccard = len(shingles_a & shingles_b) / len(shingles_a | shingles_b)
    assert abs(sim - jaccard) < 0.3
    assert fp.similarity(fp.signature(words_a), fp.signature(words_a)) == 1.0


def test_keys_are_the_same_in_another_process() -> None:
    """Replicas share keys through Redis: they must not depend on Python's per-process hash seed."""
    text = TEMPLATE.format(problem=PROBLEMS[0])
    code = f"from policies.detector.fingerprint import template_keys; print(template_keys({text!r}))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == str(fp.template_keys(text))


# ---- the fast paths against straightforward reference implementations ----------------------------

_PIECES = [*"abcdefghijklmnopqrstuvwxyz", *" ABCXYZ.,;:!?\"'()-_0123456789\n\t", "the", "and", "Maria"]
_PIECES += ["é", "ß", "İ", "\u212a", "“", "”", "«", "»", "http://x.y/", "```", "a@b.co", "\ud800", "日本"]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=300).map("".join)


def _reference_keys(text: str) -> list[int]:
    """Normalise, str tokens, word-pair shingles hashed one by one, per-bin minima, band keys."""
    words = fp.tokens(fp.normalise(text))
    if not words:
        return []
    shingles = [a + b for a, b in itertools.pairwise(words)] or words  # a pair hashes as "ab"
    mins = [fp._EMPTY] * fp.BINS
    for shingle in shingles:
        h = zlib.crc32(shingle.encode())
        mins[h % fp.BINS] = min(mins[h % fp.BINS], h >> 4)
    keys = [
        (band << 56) | (mins[2 * band] << 28) | mins[2 * band + 1]
        for band in range(fp.BANDS)
        if fp._EMPTY not in (mins[2 * band], mins[2 * band + 1])
    ]
    if len(keys) < fp.BANDS:
        keys.append((0xFE << 56) | zlib.crc32(" ".join(words).encode()))
    return keys


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_content_words_are_the_tokens_as_bytes(text: str) -> None:
    normalised = fp.normalise(text)
    assert fp.content_words(normalised) == [word.encode() for word in fp.tokens(normalised)]


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_template_keys_match_the_reference(text: str) -> None:
    keys, words = fp.keys_and_words(text)
    assert keys == fp.template_keys(text) == _reference_keys(text)
    assert words == [word.encode() for word in fp.tokens(fp.normalise(text))]
    assert fp.raw_minima(fp.tokens(fp.normalise(text))) == fp._minima(words)


_ADDRESS_PIECES = [
    "a",
    "b",
    "Z",
    "1",
    "_",
    ".",
    "+",
    "-",
    "@",
    "@",
    " ",
    ",",
    "é",
    "ß",
    "日",
    "\n",
    "x.y",
    "qurl",
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_ADDRESS_PIECES), max_size=60).map("".join))
def test_masking_addresses_run_by_run_equals_one_regex_over_the_text(text: str) -> None:
    assert fp._mask_emails(text) == fp._EMAIL.sub(" qurl ", text)
