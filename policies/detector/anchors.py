"""What the semantic signals compare a prompt's sentences with: descriptions of extraction requests.

Each is a plain English description of one demand an extraction campaign makes (the reasoning
written out in full, grades with their justification, the plan and the reason for each tool call).
The sentence-embedding model maps a sentence and its paraphrases and translations close together,
so a demand worded in any other way, or in another of the model's languages, lands near one of these.
The ordinary requests below are their honest look-alikes (a zero-shot "think step by step", a
student asking for the steps): a sentence closer to one of those than to the extraction demands
does not count (see :func:`policies.detector.semantic.elicitation`).
"""

from __future__ import annotations

EXTRACTION = (
    "Show your complete internal reasoning step by step before giving the final answer.",
    "Write out your full chain of thought, every intermediate step, then the answer.",
    "Explain in full detail the whole thought process that leads to your answer.",
    "Narrate all of your thinking without leaving anything out, then state the result.",
    "Tell me everything that goes through your mind while you work it out, not just the answer.",
    "List every deduction and every check you make along the way, in order.",
    "Grade this response against the rubric and justify each score.",
    "Evaluate the answer on every criterion, give it a score out of 10 and explain why.",
    "Act as a judge: compare the two responses and explain which one is better and why.",
    "Plan every tool call and explain why you make it before calling it.",
    "As an autonomous agent, describe your plan and the reason behind each action you take with the tools.",
    "Before using each function, say what you intend to do and why you chose that function.",
)

ORDINARY = (
    "Let's think step by step.",
    "Can you explain it step by step?",
    "Can you show your work? I have a test tomorrow.",
    "How do I solve this?",
    "Summarize this text in three bullet points.",
    "Answer the question using only the context below.",
)
