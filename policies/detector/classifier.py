"""A light capability classifier: which capability a prompt asks for, from weighted keywords.

Seven classes: coding, math, reasoning, agentic (tool use), safety, rubric
(grading other answers) and other. Each vocabulary word present votes once for
its class with a weight; a few patterns add votes (code syntax, arithmetic, tool definitions in
the request). The class with the largest total wins when it reaches
``MIN_VOTES``; otherwise the prompt is ``other``. About 5-15 µs for a
2,000-character prompt: one regex scan for words, one dict lookup per word.

It is a coarse instrument on purpose: the detector looks at the *mix* over
many requests (concentration), never at one prompt's class alone.
"""

from __future__ import annotations

import re
from typing import Final

CATEGORIES: Final = ("coding", "math", "reasoning", "agentic", "safety", "rubric", "other")
CATEGORY_INDEX: Final = {name: index for index, name in enumerate(CATEGORIES)}
OTHER: Final = CATEGORY_INDEX["other"]
RUBRIC: Final = CATEGORY_INDEX["rubric"]
_CODING, _MATH, _AGENTIC = CATEGORY_INDEX["coding"], CATEGORY_INDEX["math"], CATEGORY_INDEX["agentic"]
MIN_VOTES: Final = 1.5

_VOCABULARY: dict[str, tuple[int, float]] = {}  # word -> (class index, weight)


def _add(category: str, weight: float, words: str) -> None:
    for word in words.split():
        _VOCABULARY[word] = (CATEGORY_INDEX[category], weight)


_add("coding", 1.0, "function python javascript typescript java golang rust sql regex api compile compiler")
_add("coding", 1.0, "bug debug refactor implement implementation class method variable stacktrace")
_add("coding", 1.0, "exception traceback runtime repository repo unittest pytest leetcode algorithm")
_add("coding", 0.7, "code script array string integer loop recursion database query endpoint json")
_add("coding", 1.0, "qcode")  # a fenced code block, as the fingerprint's normaliser masks it
_add("coding", 0.7, "deploy docker kubernetes git commit merge library package module syntax")
_add("math", 1.0, "equation integral derivative theorem proof prove lemma polynomial matrix eigenvalue")
_add("math", 1.0, "probability arithmetic algebra geometry calculus solve simplify factor gsm8k")
_add("math", 0.7, "sum product fraction percent percentage ratio triangle circle radius square cube")
_add("math", 0.7, "compute calculate number numbers digits divisible prime modulo")
_add("reasoning", 1.0, "puzzle riddle logic logical deduce deduction infer inference syllogism")
_add("reasoning", 0.8, "reasoning reason argument premise conclusion hypothesis analyze analyse analysis")
_add("reasoning", 0.6, "why evaluate compare tradeoffs implications justify consider")
_add("agentic", 1.0, "tool tools agent agentic orchestrate orchestration workflow browse browser")
_add("agentic", 1.0, "invoke function_call tool_call tool_calls plan planner subtask subtasks")
_add("agentic", 0.7, "execute action actions observation environment terminal shell click navigate")
_add("safety", 1.0, "jailbreak harmful unsafe refuse refusal censorship censored sensitive dangerous")
_add("safety", 1.0, "weapon weapons explosive malware exploit extremist propaganda illegal")
_add("safety", 0.7, "controversial political politically policy ethical ethics guidelines")
_add("rubric", 1.2, "rubric grade grading grader score scoring judge judging criteria criterion")
_add("rubric", 0.6, "rate rating")
_add("rubric", 1.0, "assess assessment evaluator correctness helpfulness harmlessness")
_add("rubric", 0.4, "candidate reference response responses answer answers")

_BYTE_VOCABULARY: dict[bytes, tuple[int, float]] = {word.encode(): hit for word, hit in _VOCABULARY.items()}

# Literal signs of code (substring tests are far cheaper than a regex with \w+ backtracking).
_CODE_SIGNS = ("```", "def ", "return ", ";\n", "{\n", "=>", "import ", "();", "()", "</", "#include")
# One scan for all of them: a regex alternation of literals beats a loop of substring searches here.
_CODE_SIGN = re.compile("|".join(map(re.escape, _CODE_SIGNS)))
_ARITHMETIC = re.compile(r"\d\s*[-+*/^=]\s*\d")
_ARITHMETIC_ASCII = re.compile(r"[0-9]\s*[-+*/^=]\s*[0-9]")  # the same on ASCII text, and faster
_MATH_SIGNS = ("\\frac", "\\sum", "\\int", "x =", "y =", "x^", "√")
_MATH_SIGN = re.compile("|".join(map(re.escape, _MATH_SIGNS)))
_WORDS = re.compile(r"[a-z_0-9]+")
_ANY_SIGN = re.compile("|".join(map(re.escape, _CODE_SIGNS + _MATH_SIGNS)))
_IS_CODE_SIGN = frozenset(_CODE_SIGNS).__contains__


def _signs(text: str) -> tuple[bool, bool]:
    """(a literal sign of code, a sign of math or arithmetic) in ``text``.

    One scan for both kinds of literal sign; the other kind is looked for only after the first
    sign found (nothing of either kind can start before it).
    """
    first = _ANY_SIGN.search(text)
    if first is None:
        code = math = False
    elif _IS_CODE_SIGN(first.group()):
        code = True
        math = _MATH_SIGN.search(text, first.start()) is not None
    else:
        code = _CODE_SIGN.search(text, first.start()) is not None
        math = True
    if not math:
        math = (_ARITHMETIC_ASCII if text.isascii() else _ARITHMETIC).search(text) is not None
    return code, math


def classify(
    text: str, has_tools: bool = False, words: list[bytes] | None = None, agent_loop: bool = False
) -> tuple[int, list[float]]:
    """(winning class index, votes per class) of a prompt's text (already bounded in length).

    ``words`` may pass the lowercase words already extracted, as UTF-8 bytes (the fingerprint's
    content words); without them the text's words are found here. ``has_tools``: the request
    defines tools; ``agent_loop``: it carries tool results or forces a tool call (a step of an
    agent loop, whatever its text says).
    """
    votes = [0.0] * len(CATEGORIES)
    # Each vocabulary word votes once per prompt: a set intersection in C finds them.
    hits = (
        [_VOCABULARY[w] for w in _VOCABULARY.keys() & set(_WORDS.findall(text.lower()))]
        if words is None
        else [_BYTE_VOCABULARY[w] for w in _BYTE_VOCABULARY.keys() & set(words)]
    )
    for category, weight in hits:
        votes[category] += weight
    code, math = _signs(text)
    if code:
        votes[_CODING] += 1.5
    if math:
        votes[_MATH] += 1.5
    if has_tools:
        votes[_AGENTIC] += 3.0
    if agent_loop:
        votes[_AGENTIC] += 1.5
    top = max(votes[:OTHER])
    if top < MIN_VOTES:
        return OTHER, votes
    return votes.index(top), votes  # the first of equals


def rubric_score(votes: list[float], text: str) -> float:
    """How strongly one prompt asks for grading against a rubric, in [0, 1]."""
    # Words like "answer" or "response" alone are everyday English: the first vote point is free.
    value = votes[RUBRIC] - 1.0
    if value <= 0:
        return 0.0
    bonus = 0.25 if asks_for_scale(text) else 0.0
    return min(1.0, value / 4.0 + bonus)


# A grading scale: "score from 1 to 5", "1-10", "7/10". One regex with the three alternatives costs
# ~15 µs on a rubric prompt (IGNORECASE and a leading \b\d+ leave the engine no literal to skip to);
# each alternative alone, run only when a literal it needs is in the text, costs a third of that.
_SCALE_WORDS = re.compile(r"\b(?:scale|score) (?:of|from) \d+\s*(?:-|to)\s*\d+", re.I)
_SCALE_TO_TEN = re.compile(r"\b\d+\s*(?:-|to)\s*10\b", re.I)
_SCALE_OUT_OF_TEN = re.compile(r"/10\b")


def asks_for_scale(text: str) -> bool:
    """Whether ``text`` names a grading scale (the alternatives of one regex, each behind a literal test)."""
    if "/10" in text and _SCALE_OUT_OF_TEN.search(text) is not None:
        return True
    if "10" in text and _SCALE_TO_TEN.search(text) is not None:
        return True
    # IGNORECASE also matches the long s (U+017F) for "s": the literal test must let it through.
    lowered = text.lower()
    return ("sc" in lowered or "\u017f" in text) and _SCALE_WORDS.search(text) is not None
