"""The attack of the watermark evaluation: random word deletion, then synonym substitution.

The synonym list was written for this evaluation, independent of the variant
dictionary, so the attack does not know which words the watermark swaps.
"""

from __future__ import annotations

import random

# Attack synonyms: common English words and a plain synonym each (not derived from the variant dictionary).
ATTACK_SYNONYMS = {
    "big": "large",
    "large": "big",
    "small": "little",
    "show": "display",
    "shows": "displays",
    "use": "employ",
    "uses": "employs",
    "used": "employed",
    "important": "significant",
    "help": "assist",
    "helps": "assists",
    "make": "create",
    "makes": "creates",
    "start": "begin",
    "starts": "begins",
    "quick": "fast",
    "fast": "quick",
    "simple": "plain",
    "easy": "simple",
    "hard": "difficult",
    "difficult": "hard",
    "good": "fine",
    "clear": "plain",
    "need": "require",
    "needs": "requires",
    "get": "obtain",
    "gets": "obtains",
    "find": "discover",
    "finds": "discovers",
    "check": "verify",
    "checks": "verifies",
    "change": "alter",
    "changes": "alters",
    "idea": "notion",
    "problem": "issue",
    "answer": "reply",
    "method": "approach",
    "way": "manner",
    "result": "outcome",
    "goal": "aim",
    "part": "portion",
    "step": "stage",
    "choice": "option",
    "often": "frequently",
    "also": "additionally",
    "however": "but",
    "therefore": "hence",
    "many": "numerous",
    "most": "the majority of",
    "main": "primary",
    "whole": "entire",
    "each": "every",
    "useful": "helpful",
    "careful": "cautious",
    "strong": "robust",
    "common": "usual",
    "different": "distinct",
    "value": "worth",
    "reason": "cause",
    "task": "job",
    "plan": "scheme",
    "level": "degree",
    "detail": "particular",
    "rule": "principle",
    "returns": "gives back",
    "return": "give back",
    "object": "item",
    "function": "routine",
    "list": "sequence",
    "string": "text",
    "file": "document",
    "data": "information",
    "model": "system",
    "user": "person",
    "system": "setup",
    "first": "initial",
    "new": "fresh",
    "old": "previous",
}


def attack(text: str, rng: random.Random, delete: float = 0.1, substitute: float = 0.1) -> str:
    """Delete ``delete`` of the words at random, then replace ``substitute`` of the words by a synonym."""
    words = [w for w in text.split() if rng.random() >= delete]
    candidates_at = [i for i, w in enumerate(words) if w.lower().strip(".,;:!?") in ATTACK_SYNONYMS]
    wanted = round(substitute * len(words))
    for i in rng.sample(candidates_at, min(wanted, len(candidates_at))):
        core = words[i].strip(".,;:!?")
        synonym = ATTACK_SYNONYMS[core.lower()]
        if core[:1].isupper():
            synonym = synonym[:1].upper() + synonym[1:]
        words[i] = words[i].replace(core, synonym, 1)
    return " ".join(words)
