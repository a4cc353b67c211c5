"""Text material for the watermark tests: prose dense in dictionary forms, and protected fragments."""

from __future__ import annotations

PROSE = [
    "It is not clear why we don't organize the behavior toward users.",
    "For example, the result is based on the data, and you are going to see it.",
    "Moreover, they are careful: it will not break, and I am sure it's fine.",
    "We should not analyze everyone's color choices among the options.",
    "Don't you think the optimization is useful?",
    "That is why the modeling of labeled data does not change, although it could not hurt.",
    "Similarly, you will find the center of the organization is realized afterward.",
    "There is a reason: the judgment of someone who is not skeptical can't be wrong.",
    "First, we must not minimize the defense; second, we have not traveled far.",
    "It's a good idea, and I'd recommend it; that's why it's been useful.",
    "We usually make sure the result is correct, but it often fails too.",
]
PROTECTED = [
    "```python\nif color == 'gray':\n    do_not_organize(behavior)  # toward\n```",
    "`do not organize`",
    "https://example.com/toward/behavior?color=1",
    '{"behavior": "do not", "it is": [1, 2]}',
    '"I do not organize toward it"',
    "\u201cit is not the behavior\u201d",
    "> it is not the color among them",
    "$x = do not$",
    "3.14159",
    "organize_behavior()",
]
WHITESPACE = [" ", "  ", "\n", "\n\n", " \n", "\t"]
MARKDOWN = [
    "## Toward a plan",
    "- it is the color",
    "1. we do not organize",
    "**toward** the center",
    "| it is | color |",
]


def sample_text(picks: list[int]) -> str:
    """Deterministic text built from indices: prose, protected fragments, markdown and odd whitespace."""
    out = []
    for number, pick in enumerate(picks):
        bank = (PROSE, PROTECTED, MARKDOWN, PROSE)[pick % 4]
        out.append(bank[pick % len(bank)])
        out.append(WHITESPACE[(pick + number) % len(WHITESPACE)] if pick % 5 else "\n\n")
    return "".join(out)
