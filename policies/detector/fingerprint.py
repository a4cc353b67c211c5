"""Template fingerprints: normalise a prompt, then MinHash it into LSH band keys.

Normalisation masks what changes between two uses of one template: fenced
code, double-quoted and typographically quoted payloads (not single quotes,
which collide with apostrophes), URLs and e-mail addresses and mid-sentence
names; numbers vanish because only letters make words; it lowercases and drops
stop words. The remaining words are shingled in
pairs and hashed once each (CRC-32, deterministic across processes, so keys
can be shared through Redis).

The signature is a one-permutation MinHash (Li, Owen & Zhang 2012): one pass
over the shingles instead of one per hash function (about 50 µs for a
1,000-character prompt, most of it the CRC calls). Its 16 bins are cut into 8 bands of 2; two
prompts whose shingle sets have Jaccard similarity J share at least one band
key with probability 1 - (1 - J^2)^8 (0.94 at J = 0.55, 0.01 at J = 0.04).
Bands with an empty bin (short prompts) give no key; such prompts get one more
key for their whole normalised text instead. The densified signature
(Shrivastava & Li 2014) is only used for :func:`similarity`.
"""

from __future__ import annotations

import re
import zlib
from itertools import filterfalse

BINS = 16
ROWS = 2
BANDS = BINS // ROWS
_VALUE_BITS = 28
_EMPTY = (1 << _VALUE_BITS) - 1

_CODE = re.compile(r"```.*?(?:```|$)", re.S)
# Each pattern starts with a literal or a narrow class, so the regex engine skips ahead quickly;
# alternations without a common first character are several times slower on long prompts.
_DOUBLE_QUOTED = re.compile(r"\"[^\"\n]{1,600}\"")
_TYPOGRAPHIC_QUOTED = re.compile(r"“[^”]{1,600}”|«[^»]{1,600}»")
_URL = re.compile(r"(?:https?://|www\.)\S+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_NAME = re.compile(r"[A-Z](?<=[a-z0-9,;:)] [A-Z])[a-z]+(?: [A-Z][a-z]+)*")
_WORD = re.compile(r"[a-z]+")

STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "else",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "into",
        "onto",
        "about",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "doing",
        "have",
        "has",
        "had",
        "having",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "it",
        "its",
        "they",
        "them",
        "their",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "nor",
        "not",
        "only",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "can",
        "will",
        "just",
        "should",
        "would",
        "could",
        "may",
        "might",
        "must",
        "shall",
        "also",
        "please",
        "s",
        "t",
        "d",
        "ll",
        "m",
        "re",
        "ve",
        "y",
        "let",
        "us",
        "up",
        "out",
        "over",
        "under",
        "again",
        "further",
        "once",
    ]
)


def normalise(text: str) -> str:
    """Mask the parts of a prompt that vary between uses of one template; lowercase the rest."""
    # The literal checks skip the regexes for the many prompts without fences, quotes or links.
    if "```" in text:
        text = _CODE.sub(" qcode ", text)
    if '"' in text:
        text = _DOUBLE_QUOTED.sub(" qpayload ", text)
    if "\u201c" in text or "\u00ab" in text:
        text = _TYPOGRAPHIC_QUOTED.sub(" qpayload ", text)
    if "http" in text or "www." in text:
        text = _URL.sub(" qurl ", text)
    if "@" in text:
        text = _mask_emails(text)
    text = _NAME.sub(" qname ", text)
    return text.lower()


# An address lies inside one run of the characters it is made of; the regex alone tries every
# position of a long prompt (70 µs for 1,000 characters), so it runs on the runs that hold an "@".
_EMAIL_RUN = re.compile(r"[\w.+@-]*@[\w.+@-]*")


def _mask_emails(text: str) -> str:
    """``_EMAIL.sub(" qurl ", text)``, run only on the runs of address characters around each "@"."""
    out: list[str] = []
    done = 0
    at = text.find("@")
    while at >= 0:
        # Back to the start of the run that holds this "@"; the run's match takes it to its end.
        start = at
        while start > done and _is_address_char(text[start - 1]):
            start -= 1
        run = _EMAIL_RUN.match(text, start)
        assert run is not None
        out.append(text[done:start])
        out.append(_EMAIL.sub(" qurl ", run.group()))
        done = run.end()
        at = text.find("@", done)
    out.append(text[done:])
    return "".join(out)


def _is_address_char(char: str) -> bool:
    return char.isalnum() or char in "_.+-@"  # \w is str.isalnum() or "_" for the regex engine


def tokens(normalised: str) -> list[str]:
    """Content words of normalised text (stop words dropped)."""
    return [word for word in _WORD.findall(normalised) if word not in STOP_WORDS]


# Bytes other than a-z become spaces: in UTF-8 every byte of a non-ASCII character is >= 0x80, so
# splitting the translated bytes gives exactly the words of ``_WORD`` (as bytes), in one C pass.
_LETTERS_ONLY = bytes(c if 97 <= c <= 122 else 32 for c in range(256))
_STOP_BYTES = frozenset(word.encode() for word in STOP_WORDS)
_is_stop = _STOP_BYTES.__contains__


def content_words(normalised: str) -> list[bytes]:
    """:func:`tokens` as UTF-8 bytes, several times faster (what the hashes need anyway)."""
    letters = normalised.encode("utf-8", "surrogatepass").translate(_LETTERS_ONLY)
    return list(filterfalse(_is_stop, letters.split()))


def raw_minima(words: list[str]) -> list[int]:
    """Per-bin minima of the word-pair shingle hashes of ``words`` (``EMPTY`` for empty bins)."""
    return _minima(" ".join(words).encode().split())


def _minima(encoded: list[bytes]) -> list[int]:
    """Per-bin minima of the word-pair shingle hashes of already encoded words.

    A pair's hash is CRC-32 chained over its two words (``crc32(b, crc32(a))`` equals the CRC of
    the concatenation), so each word is hashed once and the pairs cost one C call each.
    """
    crc = zlib.crc32
    hashes = list(map(crc, encoded))
    if len(encoded) > 1:
        hashes = list(map(crc, encoded[1:], hashes[:-1]))
    mins = [_EMPTY] * BINS
    for h in hashes:
        slot = h & 15
        if h >> 4 < mins[slot]:
            mins[slot] = h >> 4
    return mins


def signature(words: list[str]) -> list[int]:
    """The densified one-permutation MinHash of the word-pair shingles of ``words`` ([] when empty)."""
    return _densify(raw_minima(words)) if words else []


def _densify(mins: list[int]) -> list[int]:
    if _EMPTY not in mins:
        return mins
    out = list(mins)
    for index in range(BINS):
        if mins[index] != _EMPTY:
            continue
        step = 1
        while mins[(index + step) % BINS] == _EMPTY:
            step += 1
        # Borrowed values are offset by the distance, so two sets that both borrow agree only
        # when they borrowed from the same bin (as densification requires).
        out[index] = (mins[(index + step) % BINS] + step * 0x9E3779B) & _EMPTY
    return out


def band_keys(mins: list[int]) -> list[int]:
    """The LSH band keys of per-bin minima: one integer per band, the band index in the top bits.

    Bands with an empty bin are left out rather than densified: in a short prompt one shared
    shingle would otherwise fill several bins and make unrelated short prompts collide.
    """
    keys = []
    for top, index in _BAND_STARTS:
        first, second = mins[index], mins[index + 1]
        if first != _EMPTY and second != _EMPTY:
            keys.append(top | (first << _VALUE_BITS) | second)
    return keys


_BAND_STARTS = [(band << 56, band * ROWS) for band in range(BANDS)]  # (key's top bits, first bin)


def _keys(words: list[bytes]) -> list[int]:
    if not words:
        return []
    keys = band_keys(_minima(words))
    if len(keys) < BANDS:
        # A short prompt fills few bins: add a key for its whole normalised text, so exact
        # uses of a short template still meet in the index.
        keys.append((0xFE << 56) | zlib.crc32(b" ".join(words)))
    return keys


def template_keys(text: str) -> list[int]:
    """Template keys of a prompt's user text (normalise, shingle, MinHash, band)."""
    return _keys(content_words(normalise(text)))


def keys_and_words(text: str) -> tuple[list[int], list[bytes]]:
    """Template keys and the content words as bytes (reused by the classifier) of a prompt."""
    words = content_words(normalise(text))
    return _keys(words), words


def exact_key(text: str) -> int | None:
    """A key for a whole (normalised) text, used for system prompts; None when empty."""
    words = content_words(normalise(text))
    if not words:
        return None
    return (0xFF << 56) | zlib.crc32(b" ".join(words))


def key_hex(key: int) -> str:
    """How a template key is shown in evidence and the admin API."""
    return f"{key:016x}"


def similarity(a: list[int], b: list[int]) -> float:
    """Estimated Jaccard similarity of two signatures (share of equal bins)."""
    if not a or not b:
        return 0.0
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / BINS
