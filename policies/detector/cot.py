"""Chain-of-thought elicitation score: how hard a prompt pushes the model to write out its reasoning.

Weighted phrase patterns in three strengths. Strong: explicit requests for the
model's internal or complete reasoning ("articulate the internal reasoning
behind...", "output your chain of thought in <thinking> tags", "full reasoning
trace"). Medium: demands for every intermediate step ("show all your work",
"explain each step before answering"). Weak: the everyday "step by step" or
"think carefully", which benign users write all the time.

The score of one prompt is the noisy-OR of the weights of the patterns found,
so one strong phrase gives ~0.85, and weak phrases alone stay below 0.5. A
cheap word prefilter skips the regexes for prompts that contain none of the
trigger words (most benign traffic).
"""

from __future__ import annotations

import re

_STRONG = 0.85
_MEDIUM = 0.45
_WEAK = 0.25

_PATTERNS: list[tuple[re.Pattern[str], float]] = [
    (re.compile(p, re.I), w)
    for p, w in [
        (r"chain[- ]of[- ]thought", _STRONG),
        (r"internal (?:reasoning|thought|thinking|monologue|deliberation)", _STRONG),
        (r"inner (?:monologue|reasoning|thoughts?|dialogue)", _STRONG),
        (r"reasoning (?:trace|traces|chain|transcript)", _STRONG),
        (r"<\s*/?\s*(?:thinking|think|reasoning|scratchpad|thought)\s*>", _STRONG),
        (r"(?:articulate|verbali[sz]e|narrate|transcribe|reconstruct|externali[sz]e)\b[^.]{0,60}"
         r"(?:reasoning|thought|thinking|steps|deliberation)", _STRONG),
        (r"(?:full|complete|entire|whole|detailed|exhaustive|transparent|raw|unabridged|hidden)\s+"
         r"(?:and \w+ )?(?:reasoning|thought process|thinking|line of reasoning|deliberation|rationale)",
         _STRONG),
        (r"(?:thought|reasoning|thinking|cognitive) process", _MEDIUM + 0.15),
        (r"(?:every|each|all)(?: of the| the| your)? (?:intermediate|individual|single|logical) "
         r"(?:step|steps|inference|deduction)", _STRONG),
        (r"before (?:giving|stating|writing|providing|you give|you state|the final|your final|answering)",
         _MEDIUM),
        (r"(?:show|write out|spell out|lay out|list|document|walk (?:me )?through)\s+(?:all\s+)?"
         r"(?:of\s+)?(?:your|the|each|every)\s+(?:\w+\s+)?(?:work|reasoning|steps|logic|thinking)",
         _MEDIUM),
        (r"(?:explain|justify|describe)\s+(?:each|every|all)\s+(?:\w+\s+)?steps?", _MEDIUM),
        (r"(?:reasoning|rationale|thinking) (?:behind|for|leading to)", _MEDIUM),
        (r"\breasoning\b[^.]{0,40}\b(?:then|followed by|and then)\b[^.]{0,30}\bfinal answer", _MEDIUM),
        (r"step[- ]by[- ]step", _WEAK),
        (r"think (?:carefully|hard|deeply|through|aloud|out loud)", _WEAK),
        (r"let'?s think", _WEAK),
        (r"final answer", _WEAK),
    ]
]

_TRIGGERS = re.compile(
    r"reason|thought|think|step|chain|monologue|rational|work|logic|deliberat|final answer|scratch",
    re.I,
)


def cot_score(text: str) -> tuple[float, list[str]]:
    """(score in [0, 1], the patterns that matched) for one prompt's text."""
    if not text or _TRIGGERS.search(text) is None:
        return 0.0, []
    miss = 1.0
    matched: list[str] = []
    for pattern, weight in _PATTERNS:
        if pattern.search(text) is not None:
            miss *= 1.0 - weight
            matched.append(pattern.pattern[:40])
    return 1.0 - miss, matched
