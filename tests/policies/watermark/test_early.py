"""Partial words passed on early: never later than before, byte-identical in the end, first word on time."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.watermark.early import MERGE, Triggers, triggers_for
from policies.watermark.marker import LexicalSettings, TextMarker
from policies.watermark.segmenter import Scanner
from policies.watermark.unicode_mark import UnicodeMarker, UnicodeMode
from tests.policies.watermark.texts import MARKDOWN, PROSE, PROTECTED, WHITESPACE
from tests.support import GatewayHandle, MockHandle, base_config

KEY = b"e" * 32
ALL = LexicalSettings()
DEFAULT = LexicalSettings(classes=frozenset({"connective", "compound"}))  # policies/default.yaml
TIERS = [
    DEFAULT,
    LexicalSettings(density=0.5, enforce=0.5, classes=DEFAULT.classes),
    ALL,
    LexicalSettings(strength="near"),  # the elevated risk level
    LexicalSettings(classes=frozenset({"contraction"})),
    None,  # lexical off (the green list alone, or only the tripwire)
]
TRIPWIRES: list[tuple[UnicodeMode, float] | None] = [
    None,
    ("zero_width", 0.5),
    ("space", 0.5),
    ("space", 1.0),
]
# Forms of the default tier and their look-alikes, at and away from sentence starts.
EARLY = [
    "Therefore, the email was reused. Then there was the e-mail, and therefore nonzero re-use.",
    "In short, we preprocess; in brief, it's pre-trained. Moreover the theme is furthermore.",
    "**Moreover**, (e-mails) [reusing] _nonempty_ and \u201creuse\u201d it\u2019s fine: the end.",
    "First, second; Firstly, Secondly thirdly. Nevertheless, none of it. Likewise, likely.",
    "It's a good idea, I'd recommend it, they're going to re-use the emails anyway.",
    "so i'm sure i'd say i am fine, and i'll see; we're here, we are not done, we've seen it.",
]
BANKS = (PROSE, PROTECTED, MARKDOWN, EARLY, EARLY)


@st.composite
def texts(draw: st.DrawFn) -> str:
    picks = draw(st.lists(st.integers(0, 400), min_size=1, max_size=10))
    out = []
    for number, pick in enumerate(picks):
        bank = BANKS[pick % len(BANKS)]
        out.append(bank[pick % len(bank)])
        out.append(WHITESPACE[(pick + number) % len(WHITESPACE)] if pick % 7 else "\n\n")
    return "".join(out)


# token-like pieces: mostly short, as a model streams them, sometimes one character at a time
chunkings = st.lists(st.integers(1, 12), max_size=120)


Tripwire = tuple[UnicodeMode, float] | None


class HoldingMarker(TextMarker):
    """The marker as it was before: every partial word waits for the whitespace after it."""

    __slots__ = ()

    def _early(self) -> str:
        return ""


def _marker(
    cls: type[TextMarker],
    tier: LexicalSettings | None,
    tripwire: Tripwire,
    think: tuple[tuple[str, ...], bool] = ((), False),
) -> TextMarker:
    unicode_marker = UnicodeMarker(KEY, tripwire[1], tripwire[0]) if tripwire else None
    return cls(KEY, tier, unicode_marker, think_tags=think[0], think_open=think[1])


def _pieces(text: str, sizes: list[int]) -> list[str]:
    pieces, position = [], 0
    for size in sizes:
        pieces.append(text[position : position + size])
        position += size
    pieces.append(text[position:])
    return pieces


def _check(
    text: str,
    sizes: list[int],
    tier: LexicalSettings | None,
    tripwire: Tripwire,
    think: tuple[tuple[str, ...], bool] = ((), False),
) -> None:
    """Fed in ``sizes`` pieces, the early marker is never behind the holding one and ends identical."""
    reference = _marker(HoldingMarker, tier, tripwire, think)
    whole = reference.feed(text) + reference.finish()
    early, held = _marker(TextMarker, tier, tripwire, think), _marker(HoldingMarker, tier, tripwire, think)
    early_out: list[str] = []
    held_out: list[str] = []
    for piece in _pieces(text, sizes):
        early_out.append(early.feed(piece))
        held_out.append(held.feed(piece))
        so_far = "".join(early_out)
        assert whole.startswith(so_far), "text passed on early differs from the marked text"
        assert len(so_far) >= len("".join(held_out)), "passed on later than before"
    assert "".join(early_out) + early.finish() == whole
    held.finish()
    # the same walk of the text: words counted, offsets aligned (annotations), the tracker's context
    assert (early.words, early.sync) == (held.words, held.sync)
    assert early._tracker._history == held._tracker._history


@settings(max_examples=200, deadline=None)
@given(texts(), chunkings, st.sampled_from(TIERS), st.sampled_from(TRIPWIRES))
def test_any_chunking_is_byte_identical_to_holding_every_word(
    text: str, sizes: list[int], tier: LexicalSettings | None, tripwire: Tripwire
) -> None:
    _check(text, sizes, tier, tripwire)


@settings(max_examples=60, deadline=None)
@given(texts(), st.sampled_from(TIERS), st.sampled_from(TRIPWIRES))
def test_one_character_at_a_time(text: str, tier: LexicalSettings | None, tripwire: Tripwire) -> None:
    _check(text, [1] * len(text), tier, tripwire)


THINK = ["<think>Therefore it's re-used.</think>", "<think>\n\nMoreover, the email\n\n</think>\n", "</think>"]


@settings(max_examples=80, deadline=None)
@given(texts(), chunkings, st.sampled_from(TIERS[:4]), st.booleans(), st.integers(0, 2))
def test_think_spans_split_anywhere(
    text: str, sizes: list[int], tier: LexicalSettings | None, think_open: bool, where: int
) -> None:
    cut = len(text) // 2
    text = text[:cut] + THINK[where] + text[cut:] if where < 2 else THINK[where] + text
    _check(text, sizes, tier, ("zero_width", 0.5), (("think",), think_open))


_TOKENS = re.compile(r" ?[A-Za-z]+|\s+|[^\sA-Za-z]+")


@settings(max_examples=200, deadline=None)
@given(
    texts(),
    st.lists(st.integers(0, 6), max_size=200),
    st.sampled_from(TIERS),
    st.sampled_from(TRIPWIRES),
    st.booleans(),
)
def test_model_tokens_are_byte_identical_to_holding_every_word(
    text: str, cuts: list[int], tier: LexicalSettings | None, tripwire: Tripwire, long: bool
) -> None:
    """Pieces cut as a model's tokens are (" word", punctuation, whitespace; some words in two): the
    usual tokens' short paths (``TextMarker._next_word``, ``Scanner.extend``) end where the general
    path ends, also across a chunk too long to be a word (released as it arrives)."""
    if long:
        middle = len(text) // 2
        long_words = (
            " moreover" + "-Supercalifragilistic" * 3 + " the Supercalifragilistic" + "expialidocious" * 3
        )
        text = text[:middle] + long_words + text[middle:]
    sizes: list[int] = []
    for number, token in enumerate(_TOKENS.findall(text)):
        cut = cuts[number % len(cuts)] if cuts else 0
        if 1 < cut < len(token):  # a word split in two tokens ("re" + "use")
            sizes += [cut, len(token) - cut]
        else:
            sizes.append(len(token))
    _check(text, sizes, tier, tripwire)


def test_the_usual_token_skips_the_scanner(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token that completes a plain word, or only extends the word in progress, skips the scanner's
    general path (pieces, a Chunk per word, the tracker's walk) and comes out as before."""
    tokens = ["We", " need", " to", " understand", " the", " choice", " so", " that", " it", " is"]
    tokens += [
        " good",
        ".",
        " The",
        " end",
        " comes",
        " later",
        ",",
        " moreover",
        " the",
        " email",
        " is",
        " sent",
    ]
    reference = HoldingMarker(KEY, DEFAULT)
    whole = reference.feed("".join(tokens)) + reference.finish()
    fed: list[str] = []
    feed = Scanner.feed
    monkeypatch.setattr(Scanner, "feed", lambda self, text: fed.append(text) or feed(self, text))
    marker = TextMarker(KEY, DEFAULT)
    out = _feeds(marker, tokens)
    assert "".join(out) + marker.finish() == whole
    assert out[:8] == tokens[:8]  # each plain word goes out as it arrives
    # the general path: the first two tokens (the start of the text) and the token after a word the
    # tier may act on ("is": a contraction is held with contractions on; "moreover", "email");
    # punctuation only extends the word in progress, and after a plain word the next one goes out as
    # far as it is certain ("Th" of "The" at a sentence start, "e" of "email")
    assert fed == ["We", " need", " good", " the", " is", " sent"]


def test_openers_arriving_one_character_at_a_time_still_protect() -> None:
    """Fences, inline code, URLs, quotes and think tags split into single characters stay untouched."""
    for fragment in [*PROTECTED, "<think>Moreover, re-use</think>"]:
        text = f"Therefore, {fragment} therefore the email.\n\n{fragment}\nMoreover, e-mail."
        for tier in (DEFAULT, ALL):
            _check(text, [1] * len(text), tier, ("space", 1.0), (("think",), False))


def _feeds(marker: TextMarker, tokens: list[str]) -> list[str]:
    return [marker.feed(token) for token in tokens]


def test_a_word_no_form_starts_with_goes_out_at_once() -> None:
    marker = TextMarker(KEY, DEFAULT)
    tokens = ["We", " need", " to", " re", "use", " the", " cache", ".", " The", " end", "."]
    out = _feeds(marker, tokens)
    assert out[:3] == ["We", " need", " to"]  # before this change each waited for the next token
    assert out[3:5] == [" re", ""]  # "reuse" may be written "re-use": "re" is certain, "reu" is not
    assert out[5] in ("use the", "-use the")  # " the" inside a sentence: "therefore" cannot come
    assert out[6:8] == [" cache", "."]
    assert out[8:10] == [" Th", "e end"]  # at a sentence start "The" may still be "Therefore,"/"Thus,"
    assert out[10] == "." and marker.finish() == ""


def test_what_of_a_partial_word_is_certain() -> None:
    dictionary = TextMarker(KEY, DEFAULT)._tracker.dictionary
    triggers = Triggers.build(dictionary, DEFAULT)
    assert triggers.certain("We", sentence=True, previous="") == 2  # website / web site
    assert triggers.certain("Web", sentence=True, previous="") == 3
    assert triggers.certain("Webs", sentence=True, previous="") == 3
    assert triggers.certain("The", sentence=True, previous="") == 2  # therefore / thus
    assert triggers.certain("More", sentence=True, previous="") == 0  # moreover / furthermore
    assert triggers.certain("The", sentence=False, previous="") == 3
    assert triggers.certain("Moreover,", sentence=True, previous="") == 0
    assert triggers.certain("Moreover,", sentence=False, previous="") == 9  # a connective starts a sentence
    assert triggers.certain("(e-m", sentence=False, previous="") == 2  # "(e" of email / e-mail
    assert triggers.certain("**", sentence=False, previous="") == 2  # lead punctuation is kept
    assert triggers.certain("EMAIL", sentence=False, previous="") == 1
    assert triggers.certain("emailed", sentence=False, previous="") == 7
    assert triggers.certain("`email", sentence=False, previous="") == 6  # never a word
    assert triggers.certain("short", sentence=False, previous="in") == 0  # guarded: "In short," / "In brief,"
    assert triggers.certain("ba", sentence=False, previous="code") == MERGE  # code base -> codebase
    assert triggers.certain("base", sentence=False, previous="data") == 4
    everything = Triggers.build(dictionary, ALL)
    assert everything.certain("it", sentence=False, previous="") == 2  # it's / it is
    assert everything.certain("it'", sentence=False, previous="") == 2  # the apostrophe may change
    assert everything.certain("i", sentence=False, previous="") == 0  # "i'm" is written "I am"
    assert everything.certain("colou", sentence=False, previous="") == 4  # colour / color
    off = Triggers.build(dictionary, None)
    assert off.certain("Moreover", sentence=True, previous="") == 8 and off.certain("ba", False, "code") == 2


@settings(max_examples=150, deadline=None)
@given(texts(), st.integers(0, 10_000), st.integers(1, 14), st.sampled_from(TIERS), st.booleans())
def test_the_quick_test_agrees_with_the_tables(
    text: str, at: int, size: int, tier: LexicalSettings | None, sentence: bool
) -> None:
    words = text.split()
    triggers = triggers_for(TextMarker(KEY, tier)._tracker.dictionary, tier)
    chunk = words[at % len(words)][:size]
    if triggers.settled(chunk):
        for previous in ("", "code", "any", "web", "data", "in", "user", "do"):
            assert triggers.certain(chunk, sentence, previous) == len(chunk)


def test_a_held_clitic_is_never_overtaken() -> None:
    """With contractions on, ``it's`` waits for the next word, and that word waits with it."""
    for key in (bytes([i]) * 32 for i in range(8)):
        marker = TextMarker(key, ALL)
        # "it" is certain (it's / it is), "'s" is not; " a" waits for the clitic, which waits for " a"
        out = _feeds(marker, ["So", " it", "'s", " a", " good"])
        assert out[:4] == ["So", " it", "", ""] and out[4] in ("'s a good", " is a good")
        assert marker.feed(" idea") + marker.finish() == " idea"
        # with contractions off the clitic is written as it came: nothing waits for it
        marker = TextMarker(key, DEFAULT)
        assert "".join(_feeds(marker, ["So", " it", "'s"])) == "So it's"
        assert marker.feed(" a") == "" and marker.feed(" good") == " a good"


def test_space_tripwire_holds_the_space_before_a_word() -> None:
    marker = _marker(TextMarker, DEFAULT, ("space", 1.0))
    first, second, third = _feeds(marker, ["We", " need", " it"])
    assert (first, second) == ("We", "")  # the space before "need" becomes U+2004 or U+2005
    assert third[0] in "\u2004\u2005" and third[1:] == "need"
    assert marker.finish()[1:] == "it"


MASTER = "early-master-key-0123456789abcdef"
DELAY_MS = 1000


def _first_content_seconds(url: str, key: str) -> float:
    """Seconds until the first streamed event that carries answer text (the stream is closed then)."""
    headers = {"authorization": f"Bearer {key}", "x-mock-reasoning": "none", "x-mock-delay-ms": str(DELAY_MS)}
    body = {"model": "mock-small", "max_tokens": 4, "stream": True,
            "messages": [{"role": "user", "content": "Explain caching."}]}  # fmt: skip
    started = time.perf_counter()
    with httpx.stream(
        "POST", f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        buffer = b""
        for data in response.iter_raw():
            buffer += data
            for line in buffer.split(b"\n"):
                if line.startswith(b"data: {"):
                    for choice in orjson.loads(line[6:]).get("choices") or []:
                        if (choice.get("delta") or {}).get("content"):
                            return time.perf_counter() - started
    raise AssertionError("the stream carried no text")


def test_the_first_word_leaves_the_gateway_before_the_next_token_arrives(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mock sends one token per second; the answer's first word ("We") must not wait for the second."""
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", MASTER)
    config = base_config(mock_upstream.url)
    config["tiers"]["free"]["policies"] = [
        {"name": "watermark", "config": {"lexical": {"classes": ["connective", "compound"]}}}
    ]
    gw = start_gateway(config)
    warm = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "mock-small", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {gw.key('free')}"},
        timeout=30,
    )
    assert warm.status_code == 200
    direct = _first_content_seconds(mock_upstream.url, "unused")
    through = _first_content_seconds(gw.url, gw.key("free"))
    # the mock sends the first word one interval after the role event, the second one interval later
    assert direct >= DELAY_MS / 1000 * 0.9
    assert through < direct + DELAY_MS / 1000 / 2, f"the first word waited: {through:.3f} s vs {direct:.3f} s"
