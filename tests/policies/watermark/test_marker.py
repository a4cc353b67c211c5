"""The marker: stream == whole for any chunking, hold-back of at most one word, protected text untouched."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.watermark.marker import LexicalSettings, TextMarker, collect_units, mark_text
from policies.watermark.segmenter import Scanner
from policies.watermark.unicode_mark import UnicodeMarker
from tests.policies.watermark.texts import PROSE, PROTECTED, sample_text

KEY = b"k" * 32
texts = st.lists(st.integers(0, 200), min_size=1, max_size=14).map(sample_text)
chunkings = st.lists(st.integers(1, 64), max_size=60)


def _stream(
    text: str,
    sizes: list[int],
    key: bytes = KEY,
    unicode_marker: UnicodeMarker | None = None,
    settings: LexicalSettings | None = None,
    think: tuple[tuple[str, ...], bool] = ((), False),
) -> str:
    marker = TextMarker(
        key, settings or LexicalSettings(), unicode_marker, think_tags=think[0], think_open=think[1]
    )
    out, position = [], 0
    for size in sizes:
        out.append(marker.feed(text[position : position + size]))
        position += size
    out.append(marker.feed(text[position:]))
    out.append(marker.finish())
    return "".join(out)


@settings(max_examples=150, deadline=None)
@given(texts, chunkings)
def test_stream_equals_whole(text: str, sizes: list[int]) -> None:
    assert _stream(text, sizes) == mark_text(text, KEY)


@settings(max_examples=80, deadline=None)
@given(texts, chunkings)
def test_stream_equals_whole_at_near_strength(text: str, sizes: list[int]) -> None:
    near = LexicalSettings(strength="near")
    assert _stream(text, sizes, settings=near) == mark_text(text, KEY, near)


THINK = ["<think>It is not organized toward it.</think>", "<think>\n\nwe do not\n\n</think>\n", "</think>"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 200), min_size=1, max_size=10), chunkings, st.booleans())
def test_stream_equals_whole_with_think_spans(picks: list[int], sizes: list[int], think_open: bool) -> None:
    text = "".join(THINK[p % 3] + sample_text([p]) if p % 2 else sample_text([p]) for p in picks)
    think = (("think",), think_open)
    assert _stream(text, sizes, think=think) == _stream(text, [], think=think)


def test_think_spans_are_never_marked() -> None:
    inner = "It is not organized toward the behavior, and we do not analyze it."
    for key in (bytes([i]) * 32 for i in range(12)):
        marked = _stream(f"<think>{inner}</think>\n\n{inner}", [], key, think=(("think",), False))
        assert marked.startswith(f"<think>{inner}</think>")
        # an implicit span (the template pre-filled <think>): what comes before the closing tag is reasoning
        marked = _stream(f"{inner}\n</think>\n\n{inner}", [], key, think=(("think",), True))
        assert marked.startswith(f"{inner}\n</think>")
    changed = {
        _stream(f"<think>x</think> {inner}", [], bytes([i]) * 32, think=(("think",), False))
        for i in range(12)
    }
    assert len(changed) > 1  # the answer after the span is marked


def test_a_held_contraction_waits_for_the_next_word_only() -> None:
    for key in (bytes([i]) * 32 for i in range(8)):
        marker = TextMarker(key, LexicalSettings())
        assert marker.feed("So it's ") == "So it"  # the clitic waits for the next word
        # "a" settles it: "'s a" or " is a"; no form starts with "good", so the partial word goes too
        first = marker.feed("a good")
        assert first in ("'s a good", " is a good")
        assert marker.feed(" idea.") + marker.finish() == " idea."


@settings(max_examples=60, deadline=None)
@given(texts, chunkings)
def test_stream_equals_whole_with_unicode_marks(text: str, sizes: list[int]) -> None:
    whole = _stream(text, [], unicode_marker=UnicodeMarker(KEY, 0.5))
    assert _stream(text, sizes, unicode_marker=UnicodeMarker(KEY, 0.5)) == whole


@settings(max_examples=100, deadline=None)
@given(texts, chunkings)
def test_holds_back_at_most_the_trailing_word(text: str, sizes: list[int]) -> None:
    scanner = Scanner()
    consumed = position = 0
    for size in [*sizes, len(text)]:
        piece = text[position : position + size]
        position += len(piece)
        for out in scanner.feed(piece):
            consumed += len(out) if isinstance(out, str) else len(out.ws) + len(out.text) * (not out.released)
        held = text[consumed:position]
        assert len(held.split()) <= 1, f"held back more than one word: {held!r}"


@settings(max_examples=100, deadline=None)
@given(texts)
def test_protected_spans_and_markdown_are_byte_identical(text: str) -> None:
    marked = mark_text(text, KEY)
    for fragment in PROTECTED:
        assert text.count(fragment) <= marked.count(fragment), fragment
    # whitespace runs other than the single spaces a contraction adds or removes are kept exactly
    assert [w for w in re.findall(r"\s+", text) if w != " "] == [
        w for w in re.findall(r"\s+", marked) if w != " "
    ]

    def markup(line: str) -> str:
        return re.match(r"[\s#>*|`~\d.-]*", line).group()  # type: ignore[union-attr]

    assert [markup(line) for line in text.split("\n")] == [markup(line) for line in marked.split("\n")]


def test_marks_change_words_only_within_their_group() -> None:
    text = " ".join(PROSE)
    marked = mark_text(text, KEY)
    assert marked != text
    before = {u.group.id for u in collect_units(text)}
    after = {u.group.id for u in collect_units(marked)}
    assert after <= before | {"it is", "do not", "is not", "does not", "will not"}
    # undoing every substitution through the dictionary gives the original text back
    assert len(marked.split()) - len(text.split()) in range(-8, 9)


def test_keys_differ_and_marks_are_scored_hits() -> None:
    from policies.watermark.lexical import keyed_choice

    text = " ".join(PROSE * 2)
    a, b = mark_text(text, b"a" * 32), mark_text(text, b"b" * 32)
    assert a != b
    scored = [u for u in collect_units(a) if u.scored]
    assert scored
    assert all(u.form in keyed_choice(b"a" * 32, u.group, u.context.key)[0] for u in scored)


def test_case_and_apostrophe_style_are_kept() -> None:
    marked = mark_text("DO NOT ORGANIZE. It\u2019s here and we do not go toward it.", b"c" * 32)
    first = marked.split(".")[0]
    assert first.isupper() and first != "DO NOT ORGANIZE"  # key c rewrites it, in capitals
    assert "'" not in marked


def test_protected_material_is_never_marked() -> None:
    for fragment in PROTECTED:
        text = f"We organize it.\n{fragment}\nWe organize it."
        assert fragment in mark_text(text, KEY)
