"""Agentic elicitation: how hard a request asks the model to write out its plan and why it calls each tool.

Agentic harvesting collects *trajectories*: a task, tool definitions, and a prompt that makes the
model plan, explain why it calls each tool and report what it observed. An honest agent sends
tools and loops over tool results too, so tools and loops alone are no evidence (they feed
the capability focus and the evidence); what is scored here is the demand for the reasoning behind
the calls, read as co-occurring concepts rather than fixed phrases, so rewording keeps it:

* strong: a *justification* word (explain, justify, why, rationale, reasoning, narrate...) and a
  *tool* word (tool, tool call, function invocation, the actions you take...) tied by
  *each/every/all/before/prior to* in one sentence, in either order ("explain the reasoning
  behind each tool call", "before every function invocation, say why");
* medium: a plan demanded around tools ("plan the subtasks, then call the tools", "write your plan
  before acting"); ReAct scaffolding that asks for a written thought before each action;

A request with tool definitions keeps the score; without any, the same words count 60% (a text-only
"agent" is still asking for its plan). One request costs a few literal tests and, only when they
pass, one or two bounded regex scans.
"""

from __future__ import annotations

import re

_STRONG = 0.85
_MEDIUM = 0.45
_WEAK = 0.25
WITHOUT_TOOLS = 0.6  # the share a demand counts in a request without tool definitions

_JUSTIFY = (
    r"(?:explain\w*|justif\w*|why|rationale|reasoning|reasons?|narrat\w*|motivat\w*|deliberat\w*"
    r"|argue|think(?:ing)? aloud|describe)"
)
_QUANTIFIER = r"(?:each|every|all|any|before|prior to|ahead of)"
# The model's own moves, not things in the user's code: "each function" alone is a coding question.
_TOOLISH = (
    r"(?:tools?|tool[ _]?calls?|(?:function|api) (?:calls?|invocations?)|invocations?|calls?"
    r"|actions? you take|moves? you make)"
)
_SENTENCE = r"[^.!?\n]"

_JUSTIFY_WORDS = (
    "explain",
    "justif",
    "why",
    "rationale",
    "reason",
    "narrat",
    "motivat",
    "deliberat",
    "argue",
    "aloud",
    "describe",
)
_QUANTIFIER_WORDS = ("each", "every", "all", "any", "before", "prior to", "ahead of")
_TOOL_WORDS = ("tool", "call", "invocation", "action", "move")

# (regex, weight, literal groups: the regex runs only when each group has a literal in the text)
_SPECS: list[tuple[re.Pattern[str], float, tuple[tuple[str, ...], ...]]] = [
    (
        re.compile(rf"\b{_JUSTIFY}\b{_SENTENCE}{{0,60}}\b{_QUANTIFIER}\b{_SENTENCE}{{0,40}}\b{_TOOLISH}\b"),
        _STRONG,
        (_JUSTIFY_WORDS, _QUANTIFIER_WORDS, _TOOL_WORDS),
    ),
    (
        re.compile(rf"\b{_QUANTIFIER}\b{_SENTENCE}{{0,40}}\b{_TOOLISH}\b{_SENTENCE}{{0,60}}\b{_JUSTIFY}\b"),
        _STRONG,
        (_JUSTIFY_WORDS, _QUANTIFIER_WORDS, _TOOL_WORDS),
    ),
    (
        re.compile(
            rf"\bplan\w*\b{_SENTENCE}{{0,60}}\b(?:{_TOOLISH}|subtasks?)\b"
            rf"|\b{_TOOLISH}\b{_SENTENCE}{{0,60}}\bplan\w*\b"
        ),
        _MEDIUM,
        (("plan",), (*_TOOL_WORDS, "subtask")),
    ),
    # ReAct scaffolding: a written thought before each action (frameworks use it too: weak alone).
    (re.compile(r"\bthought:.{0,200}\baction:", re.S), _WEAK, (("thought:",), ("action:",))),
]


# The words a tool pattern needs one of (each is \b-bounded in the regexes; "tool_call" splits into two).
_TOOL_WORD_SET = frozenset(
    b"tool tools call calls invocation invocations action actions move moves subtask subtasks".split()
)
_LETTERS_ONLY = bytes(c if 97 <= c <= 122 else 32 for c in range(256))


def agentic_score(text: str, has_tools: bool) -> float:
    """The agentic elicitation score in [0, 1] of a prompt's (lowercased-or-not) text."""
    if not text:
        return 0.0
    lowered = text.lower()
    # No tool word as a word ("transaction", "recall" and "callback" are not): only ReAct can match.
    if (
        lowered.isascii()
        and _TOOL_WORD_SET.isdisjoint(lowered.encode().translate(_LETTERS_ONLY).split())
        and ("thought:" not in lowered or "action:" not in lowered)
    ):
        return 0.0
    miss = 1.0
    for pattern, weight, groups in _SPECS:
        # Plain loops, as in cot.py: a pattern runs only when each of its literal groups occurs.
        for group in groups:
            for literal in group:
                if literal in lowered:
                    break
            else:
                break
        else:
            if pattern.search(lowered) is not None:
                miss *= 1.0 - weight
    score = 1.0 - miss
    return score if has_tools else score * WITHOUT_TOOLS
