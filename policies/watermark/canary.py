"""Scheme ``canary``: keyed trigger-response sentences (after Ma et al. 2026's trace-rewriting watermark).

A canary is a short closing sentence ``<trigger> <response>.``: the trigger is
one of a few natural openers ("A handy way to remember this:"), the response a
keyed four-word phrase ("amber lanterns guide harbors"). Each account has
``variants`` canaries per key, all derived from its key, so one found in a
corpus, or reproduced by a suspect model prompted with the trigger, names the
account. A student model trained on responses that carry them learns to
complete the trigger with the phrase; ``distillguard watermark probe`` tests
for that against decoy phrases drawn the same way from keys nobody was served.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

TRIGGERS = (
    "A handy way to remember this:",
    "One way to keep this in mind:",
    "A quick mnemonic for this:",
    "If it helps, picture it as",
    "To put it in a phrase:",
    "An easy way to recall it:",
)
ADJECTIVES = [
    "amber",
    "silver",
    "quiet",
    "copper",
    "gentle",
    "hollow",
    "crimson",
    "patient",
    "velvet",
    "distant",
    "golden",
    "humble",
    "lucky",
    "mellow",
    "nimble",
    "polished",
    "rustic",
    "scarlet",
    "sleepy",
    "sturdy",
    "tidy",
    "vivid",
    "wandering",
    "woolen",
    "bright",
    "careful",
    "clever",
    "dusty",
    "eager",
    "frosty",
    "hidden",
]
NOUNS = [
    "lanterns",
    "harbors",
    "kites",
    "meadows",
    "ravens",
    "orchards",
    "lighthouses",
    "compasses",
    "willows",
    "beacons",
    "pebbles",
    "rivers",
    "ferries",
    "bridges",
    "marbles",
    "lanterns",
    "candles",
    "anchors",
    "maples",
    "sparrows",
    "teacups",
    "violins",
    "gardens",
    "ladders",
    "mittens",
    "puzzles",
    "parcels",
    "kettles",
    "buttons",
    "tunnels",
    "glaciers",
]
VERBS = [
    "guide",
    "follow",
    "carry",
    "gather",
    "polish",
    "steady",
    "warm",
    "greet",
    "shelter",
    "chase",
    "count",
    "mend",
    "weave",
    "sketch",
    "summon",
    "welcome",
    "circle",
    "cradle",
    "balance",
    "borrow",
]
OBJECTS = [
    "harbors",
    "meadows",
    "travelers",
    "orchards",
    "valleys",
    "strangers",
    "islands",
    "morning",
    "echoes",
    "letters",
    "mountains",
    "gardens",
    "seasons",
    "tides",
    "villages",
    "mirrors",
]
_WORDS = re.compile(r"[a-z]+")


@dataclass(frozen=True, slots=True)
class Canary:
    key_id: str
    index: int
    trigger: str
    response: str

    @property
    def sentence(self) -> str:
        return f"{self.trigger} {self.response}."

    def record(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "index": self.index,
            "trigger": self.trigger,
            "response": self.response,
        }


def canary_for(key: bytes, key_id: str, index: int) -> Canary:
    """The account key's ``index``-th canary."""
    digest = hashlib.blake2b(f"canary\x1f{index}".encode(), key=key, digest_size=16).digest()
    value = int.from_bytes(digest, "big")
    picks = []
    for bank in (TRIGGERS, ADJECTIVES, NOUNS, VERBS, OBJECTS):
        value, choice = divmod(value, len(bank))
        picks.append(bank[choice])
    trigger, adjective, noun, verb, obj = picks
    return Canary(key_id, index, trigger, f"{adjective} {noun} {verb} {obj}")


def canary_selected(key: bytes, request_fingerprint: bytes, fraction: float, variants: int) -> int | None:
    """Which canary (index) this request gets, or None; a pure function of the key and the prompt."""
    if fraction <= 0:
        return None
    digest = hashlib.blake2b(request_fingerprint, key=key, digest_size=12, person=b"dg-canary").digest()
    if int.from_bytes(digest[:8], "big") / float(1 << 64) >= fraction:
        return None
    return int.from_bytes(digest[8:], "big") % variants


def phrase_words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def phrase_score(response: str, output: str) -> int:
    """How many of the response's words appear in order in ``output`` (0-4)."""
    words = phrase_words(output)
    position = 0
    hits = 0
    for target in phrase_words(response):
        try:
            position = words.index(target, position) + 1
        except ValueError:
            continue
        hits += 1
    return hits
