"""A whole answer with nothing markable skips the marker: output, offsets and counts are the marker's own."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.watermark.marker import LexicalSettings, TextMarker
from policies.watermark.text_stream import TextStream, mark_whole
from policies.watermark.unicode_mark import UnicodeMarker
from tests.policies.watermark.texts import PROSE, sample_text

KEY = b"k" * 32
PRESET = LexicalSettings(classes=frozenset({"connective", "compound"}))  # the default tier's classes
VARIANTS = [LexicalSettings(), PRESET, LexicalSettings(strength="near"), None]
PLAIN = "The mock answers with a few plain sentences. Nothing here is rewritten by the tier.\n\nSee you."


def _streams(settings: LexicalSettings | None, prefix: int = 0) -> tuple[TextStream, TextStream]:
    return tuple(TextStream(TextMarker(KEY, settings), None, prefix) for _ in range(2))  # type: ignore[return-value]


def _check_same(text: str, settings: LexicalSettings | None, prefix: int = 0) -> bool:
    """mark_whole agrees with feeding the marker; returns whether it took the unchanged path."""
    whole, fed = _streams(settings, prefix)
    took = whole.marker.passes_unchanged(text[prefix:])
    assert mark_whole(whole, text) == fed.feed(text) + fed.finish()
    assert whole.text == fed.text and whole.done and fed.done
    assert whole.marker.substitutions == fed.marker.substitutions
    for index in range(len(text) + 2):
        assert whole.output_index(index) == fed.output_index(index), index
        assert whole.output_index(index, end=True) == fed.output_index(index, end=True), index
    return took


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 200), min_size=1, max_size=10), st.integers(0, 3), st.integers(0, 30))
def test_whole_equals_fed_for_any_text(picks: list[int], variant: int, prefix: int) -> None:
    _check_same(sample_text(picks), VARIANTS[variant], prefix)


def test_plain_answer_skips_the_marker_and_is_unchanged() -> None:
    for lexical in (PRESET, None):  # the full dictionary's function words ("with", "here") are markable
        assert _check_same(PLAIN, lexical)
        whole, _ = _streams(lexical)
        assert mark_whole(whole, PLAIN) == PLAIN


def test_markable_words_in_any_disguise_take_the_marker() -> None:
    # An answer that hides a markable word in case, punctuation, curly apostrophes or markup
    # must still reach the marker (and come out marked exactly as it would).
    for word in ("Moreover,", "MOREOVER,", "(e-mail)", "**Furthermore**,", "e\u2011mail e-mail."):
        text = f"{word} the plan works.\n\n{word} it still does."
        assert not TextMarker(KEY, PRESET).passes_unchanged(text), word
        _check_same(text, PRESET)
    _check_same("email\u2019s plan, E-MAIL, (Moreover) e-mails.", PRESET)  # read as the tracker reads them
    # and the marker runs: the keyed choice rewrites the answer for some keys
    text = "Moreover, the e-mail arrived. Furthermore, the plan works. " * 3
    outputs = set()
    for index in range(8):
        marker = TextMarker(bytes([index]) * 32, PRESET)
        assert not marker.passes_unchanged(text)
        outputs.add(mark_whole(TextStream(marker, None), text))
    assert len(outputs) > 1
    # the full dictionary: any prose sentence holds a markable word
    for sentence in PROSE:
        assert not TextMarker(KEY, LexicalSettings()).passes_unchanged(sentence), sentence


def test_tripwire_canary_and_fed_streams_never_skip() -> None:
    tripwire = TextMarker(KEY, PRESET, UnicodeMarker(KEY, 1.0, "space"))
    assert not tripwire.passes_unchanged(PLAIN)
    fed = TextMarker(KEY, PRESET)
    fed.feed("Plain ")
    assert not fed.passes_unchanged(PLAIN)
    canary = TextStream(TextMarker(KEY, PRESET), "A canary sentence.")
    assert mark_whole(canary, PLAIN).endswith("A canary sentence.")
