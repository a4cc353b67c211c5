"""Chain-of-thought elicitation score: how hard a prompt pushes the model to write out its reasoning.

Weighted phrase patterns in three strengths. Strong: explicit requests for the
model's internal or complete reasoning ("articulate the internal reasoning
behind...", "output your chain of thought in <thinking> tags", "full reasoning
trace"). Medium: demands for every intermediate step ("show all your work",
"explain each step before answering"). Weak: the everyday "step by step" or
"think carefully", which benign users write all the time.

The score of one prompt is the noisy-OR of the weights of the patterns found,
so one strong phrase gives ~0.85, and weak phrases alone score at most ``WEAK_ONLY_CAP`` (0.15). A
cheap word prefilter skips the regexes for prompts that contain none of the
trigger words (most benign traffic), and each pattern runs only when one of its literal
anchors occurs in the text (a C substring search), so a prompt costs a few regex scans at most.
"""

from __future__ import annotations

import re

_STRONG = 0.85
_MEDIUM = 0.45
_WEAK = 0.25
WEAK_ONLY_CAP = 0.15  # the most that weak phrases alone score

# (regex, weight, literal anchors: the regex runs only when one of them is in the lowercased text)
_SPECS: list[tuple[str, float, tuple[str, ...]]] = [
    (r"chain[- ]of[- ]thought", _STRONG, ("chain",)),
    (r"internal (?:reasoning|thought|thinking|monologue|deliberation)", _STRONG, ("internal",)),
    (r"inner (?:monologue|reasoning|thoughts?|dialogue)", _STRONG, ("inner",)),
    (r"reasoning (?:trace|traces|chain|transcript)", _STRONG, ("reasoning t", "reasoning c")),
    (r"<\s*/?\s*(?:thinking|think|reasoning|scratchpad|thought)\s*>", _STRONG, ("<",)),
    (
        r"(?:articulate|verbali[sz]e|narrate|transcribe|reconstruct|externali[sz]e)\b[^.]{0,60}"
        r"(?:reasoning|thought|thinking|steps|deliberation)",
        _STRONG,
        ("articulat", "verbali", "narrat", "transcrib", "reconstruct", "externali"),
    ),
    (
        r"(?:full|complete|entire|whole|detailed|exhaustive|transparent|raw|unabridged|hidden)\s+"
        r"(?:and \w+ )?(?:reasoning|thought process|thinking|line of reasoning|deliberation|rationale)",
        _STRONG,
        ("reasoning", "thought process", "thinking", "deliberation", "rationale"),
    ),
    (r"(?:thought|reasoning|thinking|cognitive) process", _MEDIUM + 0.15, (" process",)),
    (
        r"(?:every|each|all)(?: of the| the| your)? (?:intermediate|individual|single|logical) "
        r"(?:step|steps|inference|deduction)",
        _STRONG,
        ("intermediate", "individual", "single", "logical"),
    ),
    (
        r"before (?:giving|stating|writing|providing|you give|you state|the final|your final|answering)",
        _MEDIUM,
        ("before ",),
    ),
    (
        r"(?:show|write out|spell out|lay out|list|document|walk (?:me )?through)\s+(?:all\s+)?"
        r"(?:of\s+)?(?:your|the|each|every)\s+(?:\w+\s+)?(?:work|reasoning|steps|logic|thinking)",
        _MEDIUM,
        ("show", "write out", "spell out", "lay out", "list", "document", "through"),
    ),
    (
        r"(?:explain|justify|describe)\s+(?:each|every|all)\s+(?:\w+\s+)?steps?",
        _MEDIUM,
        ("explain", "justify", "describe"),
    ),
    (
        r"(?:reasoning|rationale|thinking) (?:behind|for|leading to)",
        _MEDIUM,
        ("behind", " for", "leading to"),
    ),
    (
        r"\breasoning\b[^.]{0,40}\b(?:then|followed by|and then)\b[^.]{0,30}\bfinal answer",
        _MEDIUM,
        ("final answer",),
    ),
    (r"step[- ]by[- ]step", _WEAK, ("step",)),
    (r"think (?:carefully|hard|deeply|through|aloud|out loud)", _WEAK, ("think ",)),
    (r"let'?s think", _WEAK, ("let",)),
    (r"final answer", _WEAK, ("final answer",)),
]
# More literals a pattern cannot match without (at least one of each group), for the patterns whose
# leading alternation of words makes a scan slow (5-10 µs over a few hundred characters): testing
# them first is exact, and spares most of those scans (a rubric prompt says "rationale", not "full").
# Keyed by how the pattern's source begins.
_ALSO: dict[str, tuple[tuple[str, ...], ...]] = {
    "(?:articulate": (("reasoning", "thought", "thinking", "steps", "deliberation"),),
    "(?:full|": (
        (
            "full",
            "complete",
            "entire",
            "whole",
            "detailed",
            "exhaustive",
            "transparent",
            "raw",
            "unabridged",
            "hidden",
        ),
    ),
    "(?:thought|reasoning": (("thought", "reasoning", "thinking", "cognitive"),),
    "(?:every|each|all)": (("step", "inference", "deduction"), ("every", "each", "all")),
    "(?:show|": (("work", "reasoning", "steps", "logic", "thinking"), ("your", "the", "each", "every")),
    "(?:explain|": (("step",), ("each", "every", "all")),
    "(?:reasoning|rationale|thinking) ": (("reasoning", "rationale", "thinking"),),
    "\\breasoning\\b": (("reasoning",), ("then", "followed by")),
}


def _groups(source: str, anchors: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    for start, also in _ALSO.items():
        if source.startswith(start):
            return (anchors, *also)
    return (anchors,)


_PATTERNS = [(re.compile(p), w, _groups(p, anchors)) for p, w, anchors in _SPECS]
assert sum(len(groups) > 1 for _, _, groups in _PATTERNS) == len(_ALSO)

_TRIGGERS = (
    "reason",
    "thought",
    "think",
    "step",
    "chain",
    "monologue",
    "rational",
    "work",
    "logic",
    "deliberat",
    "final answer",
    "<",
)


def cot_score(text: str) -> tuple[float, list[str]]:
    """(score in [0, 1], the patterns that matched) for one prompt's text."""
    if not text:
        return 0.0, []
    lowered = text.lower()
    # Plain loops rather than any() over generators: no generator objects on this hot path.
    for trigger in _TRIGGERS:
        if trigger in lowered:
            break
    else:
        return 0.0, []
    miss = 1.0
    strongest = 0.0
    matched: list[str] = []
    for pattern, weight, groups in _PATTERNS:
        for group in groups:
            for literal in group:
                if literal in lowered:
                    break
            else:
                break  # none of this group's literals: the pattern cannot match
        else:
            if pattern.search(lowered) is not None:
                miss *= 1.0 - weight
                strongest = max(strongest, weight)
                matched.append(pattern.pattern[:40])
    if strongest <= _WEAK:
        # Only everyday phrases ("let's think step by step", the zero-shot suffix every evaluation
        # harness appends): what honest users and benchmarks write, so never more than a hint.
        return min(1.0 - miss, WEAK_ONLY_CAP), matched
    return 1.0 - miss, matched
