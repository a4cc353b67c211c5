"""The inline think-span splitter: rules, and independence from where the text is cut."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.reasoning.think import Piece, ThinkSplitter
from tests.policies.reasoning.support import GREEK, answer_text, cut, reasoning_text


def run(
    text_pieces: list[str], tags: tuple[str, ...] = ("think",), open_at_start: bool = False
) -> list[Piece]:
    splitter = ThinkSplitter(tags, open_at_start=open_at_start)
    pieces = splitter.start_pieces()
    for piece in text_pieces:
        pieces.extend(splitter.feed(piece))
    pieces.extend(splitter.close())
    return pieces


def render(pieces: list[Piece]) -> tuple[str, list[str]]:
    """(visible text, one string per think span with its tags as they appeared)."""
    visible, spans, current = [], [], None
    for piece in pieces:
        if piece.kind == "text":
            visible.append(piece.text)
        elif piece.kind == "open":
            current = [piece.text]
        elif piece.kind == "reasoning":
            assert current is not None
            current.append(piece.text)
        else:
            assert current is not None
            current.append(piece.text)
            spans.append("".join(current))
            current = None
    assert current is None
    return "".join(visible), spans


def test_a_span_is_removed_and_kept_whole() -> None:
    visible, spans = render(run(["Hi <think>plan</think> there"]))
    assert visible == "Hi  there"
    assert spans == ["<think>plan</think>"]


def test_tag_split_at_every_position() -> None:
    text = "a<think>xyz</think>b"
    for at in range(1, len(text)):
        assert render(run([text[:at], text[at:]])) == ("ab", ["<think>xyz</think>"]), at


def test_unterminated_span_is_reasoning() -> None:
    assert render(run(["ok <think>still thinking"])) == ("ok ", ["<think>still thinking"])


def test_open_at_start_ends_at_first_closing_tag() -> None:
    assert render(run(["plan</think>\n\nanswer"], open_at_start=True)) == ("\n\nanswer", ["plan</think>"])
    # A template that pre-fills <think> and a model that writes it again: the tag is reasoning text.
    assert render(run(["<think>plan</think>ok"], open_at_start=True)) == ("ok", ["<think>plan</think>"])


def test_closing_tag_before_visible_text_closes_an_implicit_span() -> None:
    assert render(run(["\n ", "</think>answer"])) == ("answer", ["\n </think>"])
    splitter = ThinkSplitter(("think",))
    render(splitter.feed("visible</think>more") + splitter.close())
    assert splitter.stray_closes == 1


def test_stray_closing_tag_after_visible_text_stays_visible() -> None:
    assert render(run(["plan, then </think>answer"])) == ("plan, then </think>answer", [])


def test_several_tag_names() -> None:
    pieces = run(["<reasoning>r</reasoning>x<think>t</think>y"], tags=("think", "reasoning"))
    assert render(pieces) == ("xy", ["<reasoning>r</reasoning>", "<think>t</think>"])
    # Inside a span only its own closing tag ends it.
    assert render(run(["<think>a</reasoning>b</think>c"], tags=("think", "reasoning"))) == (
        "c",
        ["<think>a</reasoning>b</think>"],
    )


def test_hold_back_is_bounded() -> None:
    splitter = ThinkSplitter(("think",))
    out = splitter.feed("visible text <thi")
    assert "".join(p.text for p in out) == "visible text "
    out = splitter.feed("s is not a tag")
    assert "".join(p.text for p in out) == "<this is not a tag"


def test_leading_whitespace_waits_for_visible_text() -> None:
    splitter = ThinkSplitter(("think",))
    assert splitter.feed("\n\n") == []
    assert "".join(p.text for p in splitter.feed("x")) == "\n\nx"


def test_offsets_point_into_the_input() -> None:
    text = "ab<think>cd</think>ef"
    for piece in run(cut(text, [3, 7, 12, 15])):
        if piece.kind in ("text", "reasoning"):
            assert text[piece.start : piece.start + len(piece.text)] == piece.text


segments = st.lists(
    st.one_of(st.tuples(st.just("text"), answer_text), st.tuples(st.just("think"), reasoning_text)),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(
    segments=segments,
    lead=st.sampled_from(["", " ", "\n\n"]),
    open_at_start=st.booleans(),
    points=st.lists(st.integers(0, 400), max_size=30),
)
def test_any_cutting_gives_the_same_split(
    segments: list[tuple[str, str]], lead: str, open_at_start: bool, points: list[int]
) -> None:
    text = lead
    if open_at_start:
        text += "ζήτα</think>"
    for kind, value in segments:
        text += f"<think>{value}</think>" if kind == "think" else value
    whole = render(run([text], open_at_start=open_at_start))
    assert render(run(cut(text, points), open_at_start=open_at_start)) == whole
    assert render(run(list(text), open_at_start=open_at_start)) == whole
    visible, spans = whole
    assert not any(ch in GREEK for ch in visible)
    assert "".join(spans).count("</think>") <= len(spans)


def test_splitters_of_the_same_tags_share_their_tables() -> None:
    # One splitter per streamed choice: the tag tables (about 1.3 KB) are built once, not per stream.
    first, second = ThinkSplitter(["think", "reasoning"]), ThinkSplitter(["think", "reasoning"])
    assert first._opens is second._opens and first._prefixes is second._prefixes
    other = ThinkSplitter(["thought"])
    assert other._opens == {"<thought>": "thought"} and "</though" in other._prefixes
    assert render(run(["a<thought>b</thought>c"], tags=("thought",))) == ("ac", ["<thought>b</thought>"])
