"""Scheme ``unicode`` (opt-in tripwire): invisible code points after some words.

After a keyed fraction of prose words one of two invisible characters is
inserted (which one is a keyed bit of the word's context, so the marks also
attribute): U+200B ZERO WIDTH SPACE or U+2060 WORD JOINER in ``zero_width``
mode, or the space after the word becomes U+2004 THREE-PER-EM SPACE /
U+2005 FOUR-PER-EM SPACE in ``space`` mode. Natural text almost never contains
them, so a handful in a document is strong evidence of lazy copying.

They are trivially removed: NFKC maps U+2004/U+2005 to U+0020, and any cleaner
that strips format characters (category Cf) removes U+200B and U+2060; most
training pipelines do one or the other. This is a tripwire, not evidence that
survives into a trained model.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

UnicodeMode = Literal["zero_width", "space"]
ZERO_WIDTH = ("\u200b", "\u2060")
SPACES = ("\u2004", "\u2005")
ALL_MARKS = frozenset(ZERO_WIDTH + SPACES)


_NOT_WORD = re.compile(r"[^a-z0-9'\u2019-]")


def mark_bit(key: bytes, token: str) -> tuple[int, float]:
    """(which mark, gate) for the token next to a mark; punctuation and case do not matter."""
    word = _NOT_WORD.sub("", token.lower())
    digest = hashlib.blake2b(word.encode(), key=key, digest_size=8, person=b"dg-unicode").digest()
    return digest[0] & 1, int.from_bytes(digest[1:5], "big") / float(1 << 32)


class UnicodeMarker:
    """Inserts the tripwire after a ``rate`` fraction of words (keyed by the word)."""

    __slots__ = ("_key", "mode", "rate")

    def __init__(self, key: bytes, rate: float, mode: UnicodeMode = "zero_width") -> None:
        self._key = key
        self.rate = rate
        self.mode = mode

    def mark(self, text: str, token: str) -> str:
        """``text`` with a mark after it when ``token`` (the word it ends) is picked."""
        if self.mode != "zero_width" or not text:
            return text
        bit, gate = mark_bit(self._key, token)
        if gate >= self.rate:
            return text
        return text + ZERO_WIDTH[bit] if gate < self.rate else text

    def space_for(self, text: str) -> str | None:
        """In ``space`` mode, the space to put in place of the one U+0020 that starts ``text``, if any."""
        if self.mode != "space" or not text.startswith(" ") or text[1:2].isspace() or not text.strip():
            return None
        bit, gate = mark_bit(self._key, text.split()[0])
        return SPACES[bit] if gate < self.rate else None


def strip_marks(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The text without tripwire characters, and (mark, following word) pairs found."""
    if not any(mark in text for mark in ALL_MARKS):
        return text, []
    found: list[tuple[str, str]] = []
    out: list[str] = []
    for index, char in enumerate(text):
        if char in ALL_MARKS:
            if char in ZERO_WIDTH:
                joined = "".join(out[-80:])  # the word this mark follows
                found.append((char, joined.split()[-1] if joined.strip() else ""))
                continue
            rest = text[index + 1 :].split()
            found.append((char, rest[0] if rest else ""))
            out.append(" ")
            continue
        out.append(char)
    return "".join(out), found
