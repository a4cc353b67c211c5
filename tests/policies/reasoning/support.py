"""Helpers for the reasoning policy's tests: upstream streams cut anywhere, what a client accumulates,
and the leak check.

Reasoning text in these tests is drawn from the Greek alphabet, answers from Latin letters and tag
characters, summaries from Armenian, so that any 12-character window of the reasoning found in
what the client received can only be leaked reasoning.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from hypothesis import strategies as st

from gateway.sse import StreamEvent
from policies.reasoning.config import SealKeyConfig
from policies.reasoning.seal import SealKeyRing, is_blob

SEAL_SECRET = "test-seal-secret-0123456789abcdef"
os.environ.setdefault("DISTILLGUARD_SEAL_KEY", SEAL_SECRET)
KEYS = SealKeyRing.from_env([SealKeyConfig(id="k1", env="DISTILLGUARD_SEAL_KEY")], required=True)
assert KEYS is not None
MODES = ("drop", "redact", "summary", "seal", "allow")
ACCOUNT = "acct-1"

GREEK = "αβγδεζηθικλμνξοπρστυφχψω"
ARMENIAN = "աբգդեզէըթժիլխծկհձղճմյնշոչպջռսվտրցւփքօֆ"
reasoning_text = st.text(alphabet=GREEK + " ,.", min_size=12, max_size=160).filter(lambda t: t.strip())
summary_text = st.text(alphabet=ARMENIAN + " ", min_size=1, max_size=60)
answer_text = st.text(alphabet="abcdefghiknt <>/\n.", min_size=0, max_size=80).filter(
    lambda t: "<think>" not in t and "</think>" not in t
)
chunk_sizes = st.lists(st.integers(1, 64), max_size=40)


def cut(text: str, points: Iterable[int]) -> list[str]:
    """``text`` cut at the given character positions (any position, tags included)."""
    marks = sorted({p for p in points if 0 < p < len(text)})
    pieces, last = [], 0
    for mark in marks:
        pieces.append(text[last:mark])
        last = mark
    pieces.append(text[last:])
    return [p for p in pieces if p]


def leaks(reasoning: str, received: Sequence[StreamEvent] | dict[str, Any], window: int = 12) -> list[str]:
    """Every ``window``-character run of ``reasoning`` found in what the client received."""
    strings: list[str] = []
    if isinstance(received, dict):
        _strings(received, strings)
    else:
        for event in received:
            if event.json is not None:
                _strings(event.json, strings)
            else:
                strings.append(event.data)
    haystack = "\x00".join(strings) + "\x01" + "".join(strings)
    raw = b"".join(e.encode() for e in received) if not isinstance(received, dict) else orjson.dumps(received)
    found = []
    for start in range(0, max(1, len(reasoning) - window + 1)):
        piece = reasoning[start : start + window]
        if len(piece) == window and (piece in haystack or piece.encode() in raw):
            found.append(piece)
    return found


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out)


def unseal_all(value: Any, account: str = ACCOUNT) -> Any:
    """``value`` with every sealed blob replaced by ``{"sealed": payload}`` (blobs differ by nonce)."""
    if isinstance(value, str):
        if is_blob(value):
            return {"sealed": KEYS.unseal(value, value.split(".")[2], account)}  # type: ignore[arg-type]
        if "dgs1." in value:
            return re.sub(
                r"dgs1\.[A-Za-z0-9_.-]+",
                lambda m: orjson.dumps(unseal_all(m.group(0), account)).decode(),
                value,
            )
        return value
    if isinstance(value, dict):
        return {key: unseal_all(item, account) for key, item in value.items()}
    if isinstance(value, list):
        return [unseal_all(item, account) for item in value]
    return value
