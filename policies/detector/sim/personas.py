"""The simulated personas: who sends what, from which client and network, how often.

Benign: chat users (multi-turn, varied topics), students (math homework that
asks for steps), a coding assistant (IDE system prompt, code, tools), an IDE plugin with a long
fixed system prompt and agent steps, a RAG app (templated long-context
questions), a batch customer (templated ticket summaries at high volume: the
hard benign case), an evaluation harness (templated math ending in "Let's
think step by step", temperature 0), and a company team behind one NAT with one SDK.

Attacks: single-account chain-of-thought harvesting, low-and-slow harvesting
with cover traffic, paraphrased templates, rubric-grading harvesting, an
agentic tool-use harvester that pivots to a new model, and a hydra of many
accounts that mixes 5% extraction into benign-looking traffic through a shared
proxy pool and client. And the harder ones of ``harder.py``, written outside the detector's
vocabularies: reworded (50+ templates, synonym swaps), multilingual, agentic, and a hydra at 3%.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from policies.detector.sim import harder, vocab
from policies.detector.sim.attackers import (
    cot_harvester,
    hydra_member,
    low_and_slow,
    paraphraser,
    pivot_agent,
    rubric_harvester,
)
from policies.detector.sim.traffic import (
    BATCH_JOB,
    BROWSER_APP,
    HARVEST_CLIENT,
    HYDRA_CLIENT,
    HYDRA_REWORDED_CLIENT,
    IDE_PLUGIN,
    NEW_MODEL,
    RAG_SERVICE,
    SDK_NODE,
    SDK_PYTHON,
    Account,
    Client,
    Request,
    chat_body,
    conversation,
)

__all__ = ["NEW_MODEL", "Account", "Client", "Persona", "Request", "personas"]


@dataclass
class Persona:
    name: str
    kind: Literal["benign", "attack"]
    accounts: int
    requests: int  # per account
    client: Client
    networks: int | list[str]  # how many random /24s, or fixed prefixes
    style: str
    cluster: bool = False  # a hydra: detection is measured in cluster requests
    spread: float = 1.0  # share of the run the account's requests spread over
    multi_turn: bool = False
    parallel: int = 1  # requests in flight at once (services and batch jobs)

    def next_request(self, account: Account, progress: float) -> Request:
        return STYLES[self.style](account, progress)


def chat_user(account: Account, progress: float) -> Request:
    rng = account.rng
    opener = rng.choice(vocab.CHAT_OPENERS).format(topic=rng.choice(vocab.TOPICS))
    model = (
        NEW_MODEL if rng.random() < 0.15 and progress > 0.3 else rng.choice(["mock-small", "mock-reasoner"])
    )
    extra: dict[str, Any] = {}
    if rng.random() < 0.3:
        extra["temperature"] = round(rng.uniform(0.2, 1.2), 2)
    if rng.random() < 0.1:
        opener += " Please explain it step by step."
    return Request(
        "/v1/chat/completions", chat_body(conversation(account, opener), model, **extra), rng.random() < 0.5
    )


def student(account: Account, progress: float) -> Request:
    rng = account.rng
    problem = vocab.math_problem(rng) if rng.random() < 0.7 else vocab.logic_puzzle(rng)
    ask = rng.choice(
        [
            "Can you show your work step by step? I have a test tomorrow.",
            "I got a different answer from my teacher, can you explain each step?",
            "How do I even start this one?",
            "Just check my answer please, I think it's 42.",
            "Can you walk me through the reasoning? I'm lost.",
            "",
        ]
    )
    opener = f"{problem} {ask}".strip()
    return Request("/v1/chat/completions", chat_body(conversation(account, opener, 0.4)), rng.random() < 0.3)


CODEPILOT_SYSTEM = (
    "You are CodePilot, an AI pair programmer inside the user's editor. Answer concisely, prefer small "
    "diffs, and never invent APIs. The user's workspace language is set in the editor settings."
)
IDE_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {"name": "run_tests", "parameters": {"type": "object", "properties": {}}},
    },
]


def coding_assistant(account: Account, progress: float) -> Request:
    rng = account.rng
    snippet = vocab.code_snippet(rng)
    ask = rng.choice(
        [
            f"Why does this throw {rng.choice(vocab.ERRORS)} when the list is empty?\n{snippet}",
            f"Refactor this to be more readable:\n{snippet}",
            f"Write unit tests for this function:\n{snippet}",
            f"Can you add type hints and a docstring?\n{snippet}",
            f"{vocab.coding_task(rng)}",
            f"What's the time complexity of this?\n{snippet}",
        ]
    )
    messages = [{"role": "system", "content": CODEPILOT_SYSTEM}, *conversation(account, ask, 0.5)]
    extra: dict[str, Any] = {"tools": IDE_TOOLS} if rng.random() < 0.3 else {}
    return Request("/v1/chat/completions", chat_body(messages, "mock-reasoner", **extra), True)


RAG_SYSTEM = (
    "Answer the employee's question using only the context below. If the answer is not in the context, "
    "say you don't know. Cite the section numbers you used."
)


def rag_app(account: Account, progress: float) -> Request:
    rng = account.rng
    subject = rng.choice(vocab.DOC_SUBJECTS)
    context = "\n\n".join(vocab.paragraph(rng, subject) for _ in range(3))
    question = rng.choice(
        [
            f"What does {subject} say about deadlines?",
            f"Who approves exceptions to {subject}?",
            f"How long are records kept under {subject}?",
            f"Is there a maximum amount in {subject}?",
        ]
    )
    messages = [
        {"role": "system", "content": RAG_SYSTEM},
        {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}"},
    ]
    return Request("/v1/chat/completions", chat_body(messages, "mock-small", max_tokens=300, temperature=0))


def batch_customer(account: Account, progress: float) -> Request:
    rng = account.rng
    prompt = (
        "Summarize the following customer support ticket in 3 bullet points and classify its urgency as "
        f"low, medium or high.\n\nTicket #{rng.randint(100000, 999999)}:\n{vocab.ticket(rng)}"
    )
    return Request(
        "/v1/chat/completions",
        chat_body([{"role": "user", "content": prompt}], "mock-small", max_tokens=150, temperature=0),
    )


EVAL_HARNESS = Client("lm-eval-harness/0.4.3 python-httpx/0.27.0", [("x-eval-run", "r")])


def eval_harness(account: Account, progress: float) -> Request:
    """A customer benchmarking the model: templated math ending in the zero-shot CoT suffix, temperature 0."""
    rng = account.rng
    prompt = f"Question: {vocab.math_problem(rng)}\nAnswer: Let's think step by step."
    body = chat_body(
        [{"role": "user", "content": prompt}], "mock-reasoner", max_tokens=512, temperature=0, seed=1234
    )
    return Request("/v1/chat/completions", body)


# A long, fixed system prompt (as IDE plugins ship): rules, tone, tool etiquette, even a "think step by step".
IDE_LONG_SYSTEM = " ".join(
    [
        "You are DevMate, a coding assistant embedded in the user's IDE.",
        "You have access to the user's open files, the project tree and a terminal through tools.",
        "Follow the project's existing style, formatting and naming; match the indentation of the file.",
        "Prefer minimal, reviewable diffs and never rewrite a file wholesale unless asked.",
        "When you are unsure about an API, read the relevant file with a tool instead of guessing.",
        "Do not run destructive shell commands (rm -rf, force pushes, dropping databases).",
        "Keep answers short: code first, then at most three sentences of explanation.",
        "For larger changes, think step by step and keep the user informed of which files you touch.",
        "Never reveal secrets from environment files; redact tokens that appear in logs.",
        "If tests exist, run them after an edit and report failures verbatim.",
        "Respect the user's editor settings: language, line length, and formatter.",
    ]
    * 3
)


def ide_long_system(account: Account, progress: float) -> Request:
    rng = account.rng
    ask = rng.choice(
        [
            f"Add input validation to this:\n{vocab.code_snippet(rng)}",
            f"Rename the variables here to something clearer:\n{vocab.code_snippet(rng)}",
            f"{vocab.coding_task(rng)}",
            f"Why is this slow?\n{vocab.code_snippet(rng)}",
        ]
    )
    messages = [{"role": "system", "content": IDE_LONG_SYSTEM}, *conversation(account, ask, 0.5)]
    body = chat_body(messages, "mock-reasoner", tools=IDE_TOOLS, tool_choice="auto")
    if rng.random() < 0.5:  # an agent step: the plugin hands back the output of a tool it ran
        call = {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
        body["messages"] += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": vocab.code_snippet(rng)},
        ]
    return Request("/v1/chat/completions", body, True)


STYLES = {
    "chat": chat_user,
    "student": student,
    "coding": coding_assistant,
    "rag": rag_app,
    "batch": batch_customer,
    "eval": eval_harness,
    "ide_long": ide_long_system,
    "cot": cot_harvester,
    "slow": low_and_slow,
    "paraphrase": paraphraser,
    "rubric": rubric_harvester,
    "pivot": pivot_agent,
    "hydra": hydra_member,
    **harder.STYLES,
}


def personas(scale: float = 1.0, requests_scale: float = 1.0) -> list[Persona]:
    """The persona mix; ``scale`` multiplies account counts (at least one account each) and
    ``requests_scale`` the requests per account (for quick runs)."""

    def n(count: int) -> int:
        return max(1, round(count * scale))

    mix = [
        Persona("chat_users", "benign", n(300), 12, SDK_PYTHON, 10_000, "chat", multi_turn=True),
        Persona("chat_web", "benign", n(60), 12, BROWSER_APP, 10_000, "chat", multi_turn=True),
        Persona("students", "benign", n(40), 15, SDK_NODE, 10_000, "student", multi_turn=True),
        Persona("coding_assistant", "benign", n(40), 25, IDE_PLUGIN, 10_000, "coding", multi_turn=True),
        Persona(
            "company_team", "benign", n(30), 15, SDK_PYTHON, ["198.51.100.0/24"], "chat", multi_turn=True
        ),
        Persona("rag_app", "benign", max(2, n(4)), 250, RAG_SERVICE, 2, "rag", parallel=4),
        Persona("batch_customer", "benign", max(1, n(2)), 1500, BATCH_JOB, 1, "batch", parallel=8),
        Persona("eval_harness", "benign", max(1, n(2)), 400, EVAL_HARNESS, 1, "eval", parallel=4),
        Persona("ide_long_prompt", "benign", n(20), 25, IDE_PLUGIN, 10_000, "ide_long", multi_turn=True),
        Persona("cot_harvester", "attack", max(2, n(4)), 250, HARVEST_CLIENT, 4, "cot", parallel=4),
        Persona("low_and_slow", "attack", max(2, n(4)), 220, SDK_PYTHON, 4, "slow"),
        Persona("paraphraser", "attack", max(2, n(4)), 250, SDK_PYTHON, 4, "paraphrase"),
        Persona("rubric_harvester", "attack", max(2, n(4)), 250, HARVEST_CLIENT, 4, "rubric"),
        Persona("model_pivot", "attack", max(2, n(4)), 250, SDK_NODE, 4, "pivot"),
        Persona(
            "hydra",
            "attack",
            n(500),
            14,
            HYDRA_CLIENT,
            [f"203.0.{i}.0/24" for i in range(8)],
            "hydra",
            cluster=True,
        ),
        # Written from material outside the detector's vocabularies (harder.py).
        Persona("reworded", "attack", max(2, n(4)), 250, SDK_PYTHON, 4, "reworded"),
        Persona("polyglot", "attack", max(2, n(4)), 250, SDK_NODE, 4, "polyglot"),
        Persona("agentic_reworded", "attack", max(2, n(4)), 250, HARVEST_CLIENT, 4, "agentic_reworded"),
        Persona(
            "hydra_reworded",
            "attack",
            n(300),
            34,
            HYDRA_REWORDED_CLIENT,
            [f"203.0.{i}.0/24" for i in range(100, 108)],
            "hydra_reworded",
            cluster=True,
        ),
    ]
    if requests_scale != 1.0:
        for persona in mix:
            persona.requests = max(5, round(persona.requests * requests_scale))
    return mix
