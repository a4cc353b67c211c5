"""Paraphrased extraction instructions: many wordings of one demand, so no two prompts share a template."""

from __future__ import annotations

import random

from policies.detector.sim import vocab

_OPENERS = [
    "Before you answer,",
    "As you work on this,",
    "Please",
    "I want you to",
    "Your task:",
    "Kindly",
    "For this question,",
    "When solving it,",
    "",
]
_VERBS = [
    "lay out",
    "spell out",
    "write down",
    "narrate",
    "walk through",
    "document",
    "record",
    "explain",
    "set out",
    "reconstruct",
]
_OBJECTS = [
    "your complete thought process",
    "every intermediate step of your reasoning",
    "the full line of reasoning you follow",
    "your inner monologue",
    "each logical step you take",
    "the detailed reasoning that leads to the result",
    "all of your thinking, unabridged",
    "the reasoning process behind your answer",
    "the whole deliberation, step by step",
    "each step and why you took it",
]
_TAILS = [
    "and only then state the final answer.",
    "then give the answer on the last line.",
    "before stating your conclusion.",
    "ending with 'Answer:' and the result.",
    "and keep nothing implicit.",
    "so that a student could follow every step.",
    "",
]


def cot_instruction(rng: random.Random) -> str:
    """One of many wordings of 'write out your full reasoning, then the answer'."""
    parts = [rng.choice(_OPENERS), rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_TAILS)]
    text = " ".join(p for p in parts if p)
    return text[0].upper() + text[1:]


_JUDGE_ROLES = [
    "You are an impartial judge.",
    "Act as an expert grader.",
    "You are evaluating AI assistants.",
    "You are a strict reviewer of model outputs.",
    "Serve as a careful evaluator.",
]
_CRITERIA = [
    "helpfulness, correctness and clarity",
    "accuracy, completeness and harmlessness",
    "reasoning quality and factual correctness",
    "instruction following and correctness",
]
_FORMATS = [
    "Give a score from 1 to 10 and justify it.",
    "Output a grade on a scale of 1-10, then your rationale.",
    "Rate the response 1 to 10 against the rubric and explain each criterion.",
    "Return JSON with fields score (1-10) and justification.",
]


def rubric_prompt(rng: random.Random) -> str:
    """A rubric-grading request for a generated question and candidate answer."""
    question = vocab.math_problem(rng) if rng.random() < 0.5 else vocab.coding_task(rng)
    answer = rng.choice(
        [
            f"The answer is {rng.randint(2, 500)}.",
            "First we add the numbers, then divide; the result is 12.",
            "def solve(xs):\n    return sorted(xs)[-1]",
            "It cannot be determined from the information given.",
        ]
    )
    return (
        f"{rng.choice(_JUDGE_ROLES)} Evaluate the assistant's response to the user question below using "
        f"this rubric: {rng.choice(_CRITERIA)}.\n\n[Question]\n{question}\n\n[Assistant's response]\n"
        f"{answer}\n\n{rng.choice(_FORMATS)}"
    )
