"""Template fingerprints: normalise a prompt, then MinHash it into LSH band keys.

Normalisation masks what changes between two uses of one template: fenced
code, quoted payloads, URLs and e-mail addresses, numbers and mid-sentence
names; it lowercases and drops stop words. The remaining words are shingled in
pairs and hashed once each (CRC-32, deterministic across processes, so keys
can be shared through Redis).

The signature is a one-permutation MinHash (Li, Owen & Zhang 2012) with
densification for empty bins (Shrivastava & Li 2014): one pass over the
shingles instead of one per hash function, which keeps the cost near 10 µs for
a 2,000-character prompt. Its 16 values are cut into 8 bands of 2; two prompts
whose shingle sets have Jaccard similarity J share at least one band key with
probability 1 - (1 - J^2)^8 (0.94 at J = 0.55, 0.01 at J = 0.04).
"""

from __future__ import annotations

import re
import zlib

BINS = 16
ROWS = 2
BANDS = BINS // ROWS
_VALUE_BITS = 28
_EMPTY = (1 << _VALUE_BITS) - 1

_CODE = re.compile(r"```.*?(?:```|$)", re.S)
_QUOTED = re.compile(r"\"[^\"\n]{1,600}\"|“[^”]{1,600}”|«[^»]{1,600}»|(?<![\w])'[^'\n]{3,600}'(?![\w])")
_URL = re.compile(r"https?://\S+|www\.\S+|\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_NAME = re.compile(r"(?<=[a-z0-9,;:)] )[A-Z][a-z]+(?: [A-Z][a-z]+)*")
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
_WORD = re.compile(r"[a-z]+")

STOP_WORDS = frozenset(
    """a an the and or but if then else of to in on at by for with from into onto about as is are was were
    be been being am do does did doing have has had having i me my we our you your he she it its they them
    their this that these those there here what which who whom whose when where why how all any each few
    more most other some such no nor not only own same so than too very can will just should would could
    may might must shall also please s t d ll m re ve y let us up out over under again further once""".split()
)


def normalise(text: str) -> str:
    """Mask the parts of a prompt that vary between uses of one template; lowercase the rest."""
    text = _CODE.sub(" qcode ", text)
    text = _QUOTED.sub(" qpayload ", text)
    text = _URL.sub(" qurl ", text)
    text = _NAME.sub(" qname ", text)
    text = _NUMBER.sub(" qnum ", text)
    return text.lower()


def tokens(normalised: str) -> list[str]:
    """Content words of normalised text (stop words dropped)."""
    return [word for word in _WORD.findall(normalised) if word not in STOP_WORDS]


def signature(words: list[str]) -> list[int]:
    """The densified one-permutation MinHash of the word-pair shingles of ``words`` ([] when empty)."""
    if not words:
        return []
    if len(words) == 1:
        shingles = words
    else:
        shingles = [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    mins = [_EMPTY] * BINS
    crc = zlib.crc32
    for shingle in shingles:
        h = crc(shingle.encode())
        slot = h & 15
        value = h >> 4
        if value < mins[slot]:
            mins[slot] = value
    return _densify(mins)


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


def band_keys(sig: list[int]) -> list[int]:
    """The LSH band keys of a signature: one integer per band, the band index in the top bits."""
    if not sig:
        return []
    return [
        (band << 56) | (sig[band * ROWS] << _VALUE_BITS) | sig[band * ROWS + 1] for band in range(BANDS)
    ]


def template_keys(text: str) -> list[int]:
    """Band keys of a prompt's user text (normalise, shingle, MinHash, band)."""
    return band_keys(signature(tokens(normalise(text))))


def exact_key(text: str) -> int | None:
    """A key for a whole (normalised) text, used for system prompts; None when empty."""
    words = tokens(normalise(text))
    if not words:
        return None
    return (0xFF << 56) | zlib.crc32(" ".join(words).encode())


def key_hex(key: int) -> str:
    """How a template key is shown in evidence and the admin API."""
    return f"{key:016x}"


def similarity(a: list[int], b: list[int]) -> float:
    """Estimated Jaccard similarity of two signatures (share of equal bins)."""
    if not a or not b:
        return 0.0
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / BINS
