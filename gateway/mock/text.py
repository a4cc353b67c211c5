"""Deterministic English answers and reasoning traces for the mock model, and its word tokenizer.

Answers are assembled from a bank of sentence templates filled with words
picked by a hash of the prompt, so the same prompt gets the same answer and
different prompts get different ones. Tokens are words with their leading
space, and punctuation, the way BPE tokenizers split English.
"""

from __future__ import annotations

import hashlib
import random
import re

SUBJECTS = [
    "the system",
    "this approach",
    "the main idea",
    "a careful design",
    "the first step",
    "the result",
    "the model",
    "the team",
    "this method",
    "the process",
    "a simple test",
    "the final answer",
    "the data",
    "the network",
    "the algorithm",
    "the user",
    "the service",
    "the report",
]
VERBS = [
    "shows",
    "suggests",
    "means",
    "helps",
    "makes",
    "gives",
    "keeps",
    "needs",
    "uses",
    "starts",
    "builds",
    "checks",
    "finds",
    "explains",
    "improves",
    "changes",
    "supports",
    "requires",
]
ADJECTIVES = [
    "large",
    "small",
    "quick",
    "simple",
    "important",
    "clear",
    "difficult",
    "easy",
    "different",
    "good",
    "careful",
    "useful",
    "strong",
    "common",
    "main",
    "big",
    "fast",
    "whole",
]
NOUNS = [
    "problem",
    "answer",
    "question",
    "result",
    "method",
    "example",
    "change",
    "part",
    "value",
    "reason",
    "idea",
    "step",
    "choice",
    "goal",
    "task",
    "plan",
    "way",
    "level",
    "detail",
    "rule",
]
CONNECTORS = [
    "However,",
    "Also,",
    "In addition,",
    "For example,",
    "As a result,",
    "In practice,",
    "Therefore,",
    "At first,",
    "Overall,",
    "In short,",
    "Still,",
    "Moreover,",
    "Of course,",
    "Often,",
]
TEMPLATES = [
    "{S} {V} a {A} {N}.",
    "{C} {s} {V} the {A} {N} in a {A2} way.",
    "It is {A} to start with the {N} and then look at each {N2}.",
    "{C} we can use a {A} {N} to get a {A2} {N2}.",
    "This {N} is {A}, but the {N2} is usually more {A2}.",
    "{S} {V} that the {N} should be {A} and {A2}.",
    "You should check the {N} before you begin the next {N2}.",
    "{C} it helps to think about the {A} {N} first.",
    "A {A} {N} often leads to a {A2} {N2}.",
    "{C} most people choose the {A} {N} because it is {A2}.",
    "We need to understand the {N} so that the {N2} stays {A}.",
    "{S} {V} how the {N} and the {N2} fit together.",
]
REASONING_TEMPLATES = [
    "First, I need to understand what the {N} is asking.",
    "The key {N} here is the {A} {N2}, so I will check it step by step.",
    "Let me consider whether the {N} is {A} or {A2}.",
    "If the {N} holds, then the {N2} follows directly.",
    "I should double check the {A} {N} before I answer.",
    "So the answer depends on the {N} and on the {A} {N2}.",
    "Wait, I should verify the {N2} once more.",
    "Putting it together, the {A} {N} gives the final answer.",
]

_TOKEN = re.compile(r"\s*[A-Za-z0-9']+|\s*[^\sA-Za-z0-9']")


def _rng(*parts: str) -> random.Random:
    seed = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(seed[:8], "big"))


def _fill(template: str, rng: random.Random) -> str:
    subject = rng.choice(SUBJECTS)
    text = template.format(
        S=subject[0].upper() + subject[1:],
        s=subject,
        V=rng.choice(VERBS),
        A=rng.choice(ADJECTIVES),
        A2=rng.choice(ADJECTIVES),
        N=rng.choice(NOUNS),
        N2=rng.choice(NOUNS),
        C=rng.choice(CONNECTORS),
    )
    return text[0].upper() + text[1:]


def answer_text(prompt: str, *, sentences: int | None = None, salt: str = "") -> str:
    """A multi-sentence English answer determined by ``prompt`` (and ``salt``, e.g. a choice index)."""
    rng = _rng("answer", prompt, salt)
    count = sentences or rng.randint(4, 8)
    return " ".join(_fill(rng.choice(TEMPLATES), rng) for _ in range(count))


def reasoning_text(prompt: str, *, sentences: int | None = None) -> str:
    """A chain-of-thought style trace for ``prompt``."""
    rng = _rng("reasoning", prompt)
    count = sentences or rng.randint(3, 6)
    return " ".join(_fill(rng.choice(REASONING_TEMPLATES), rng) for _ in range(count))


def summary_text(prompt: str) -> str:
    rng = _rng("summary", prompt)
    return f"**Considering the {rng.choice(NOUNS)}**\n\nI weighed the {rng.choice(ADJECTIVES)} options."


def tokenize(text: str) -> list[str]:
    """Split into word tokens that keep their leading whitespace; ''.join(tokenize(t)) == t."""
    tokens = _TOKEN.findall(text)
    joined = "".join(tokens)
    if joined != text:  # trailing whitespace is its own token
        tokens.append(text[len(joined) :])
    return tokens


def count_tokens(text: str) -> int:
    return max(1, len(tokenize(text))) if text else 0


def vocabulary() -> list[str]:
    """Every token the answer and reasoning generators can produce, plus filler, in a fixed order."""
    words: set[str] = set()
    for bank in (SUBJECTS, VERBS, ADJECTIVES, NOUNS, CONNECTORS, TEMPLATES, REASONING_TEMPLATES):
        for item in bank:
            plain = re.sub(r"\{[A-Za-z0-9]+\}", " ", item)
            for token in tokenize(plain):
                token = token.strip()
                if token:
                    words.add(token)
                    words.add(token.lower())
                    words.add(token[0].upper() + token[1:])
    tokens = set()
    for word in words:
        tokens.add(word)
        tokens.add(" " + word)
    return sorted(tokens)
