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
proxy pool and client.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from policies.detector.sim import vocab
from policies.detector.sim.paraphrase import cot_instruction, rubric_prompt

NEW_MODEL = "mock-reasoner-2"


@dataclass
class Client:
    """The client software: user agent and extra headers, in the order it sends them."""

    user_agent: str
    headers: list[tuple[str, str]] = field(default_factory=list)


SDK_PYTHON = Client(
    "OpenAI/Python 1.52.0",
    [("x-stainless-lang", "python"), ("x-stainless-package-version", "1.52.0"), ("x-stainless-os", "Linux")],
)
SDK_NODE = Client(
    "OpenAI/JS 4.67.1",
    [("x-stainless-lang", "js"), ("x-stainless-package-version", "4.67.1"), ("x-stainless-os", "MacOS")],
)
BROWSER_APP = Client(
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) ChatWeb/3.2", [("origin", "https://chat.example")]
)
IDE_PLUGIN = Client("CodePilot-VSCode/1.14.2", [("x-codepilot-session", "s"), ("x-editor", "vscode")])
RAG_SERVICE = Client("kb-answers/2.0 (+aiohttp)", [("x-tenant", "kb")])
BATCH_JOB = Client("ticket-summariser/0.9 python-httpx", [("x-job", "nightly")])
HYDRA_CLIENT = Client("python-requests/2.31.0", [("x-proxy-route", "pool")])
HARVEST_CLIENT = Client("python-httpx/0.27.0", [])


@dataclass
class Account:
    """One simulated account and its running state."""

    name: str
    persona: Persona
    key: str = ""
    ip: str = ""
    sent: int = 0
    history: list[dict[str, str]] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Request:
    path: str
    body: dict[str, Any]
    stream: bool = False


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


def _chat(messages: list[dict[str, str]], model: str = "mock-small", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": messages, **extra}


def _conversation(account: Account, opener: str, followup_p: float = 0.6) -> list[dict[str, str]]:
    rng = account.rng
    if account.history and rng.random() < followup_p and len(account.history) < 9:
        account.history.append({"role": "user", "content": rng.choice(vocab.CHAT_FOLLOWUPS)})
    else:
        account.history = [{"role": "user", "content": opener}]
    return list(account.history)


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
        "/v1/chat/completions", _chat(_conversation(account, opener), model, **extra), rng.random() < 0.5
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
    return Request("/v1/chat/completions", _chat(_conversation(account, opener, 0.4)), rng.random() < 0.3)


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
    messages = [{"role": "system", "content": CODEPILOT_SYSTEM}, *_conversation(account, ask, 0.5)]
    extra: dict[str, Any] = {"tools": IDE_TOOLS} if rng.random() < 0.3 else {}
    return Request("/v1/chat/completions", _chat(messages, "mock-reasoner", **extra), True)


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
    return Request("/v1/chat/completions", _chat(messages, "mock-small", max_tokens=300, temperature=0))


def batch_customer(account: Account, progress: float) -> Request:
    rng = account.rng
    prompt = (
        "Summarize the following customer support ticket in 3 bullet points and classify its urgency as "
        f"low, medium or high.\n\nTicket #{rng.randint(100000, 999999)}:\n{vocab.ticket(rng)}"
    )
    return Request(
        "/v1/chat/completions",
        _chat([{"role": "user", "content": prompt}], "mock-small", max_tokens=150, temperature=0),
    )


EVAL_HARNESS = Client("lm-eval-harness/0.4.3 python-httpx/0.27.0", [("x-eval-run", "r")])


def eval_harness(account: Account, progress: float) -> Request:
    """A customer benchmarking the model: templated math ending in the zero-shot CoT suffix, temperature 0."""
    rng = account.rng
    prompt = f"Question: {vocab.math_problem(rng)}\nAnswer: Let's think step by step."
    body = _chat(
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
    messages = [{"role": "system", "content": IDE_LONG_SYSTEM}, *_conversation(account, ask, 0.5)]
    body = _chat(messages, "mock-reasoner", tools=IDE_TOOLS, tool_choice="auto")
    if rng.random() < 0.5:  # an agent step: the plugin hands back the output of a tool it ran
        call = {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
        body["messages"] += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": vocab.code_snippet(rng)},
        ]
    return Request("/v1/chat/completions", body, True)


def _harvest_problem(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        return vocab.math_problem(rng)
    if roll < 0.75:
        return vocab.logic_puzzle(rng)
    return vocab.coding_task(rng)


COT_TEMPLATES = [
    "Imagine and articulate the internal reasoning behind a completed response to the problem below, and "
    "write it out step by step before giving the final answer.\n\nProblem: {problem}",
    "Solve the following problem. Output your full chain of thought inside <thinking> tags, then the final "
    "answer on its own line.\n\n{problem}",
]


def cot_harvester(account: Account, progress: float) -> Request:
    rng = account.rng
    prompt = rng.choice(COT_TEMPLATES).format(problem=_harvest_problem(rng))
    extra: dict[str, Any] = {"max_tokens": 4096}
    if rng.random() < 0.5:
        extra["reasoning_effort"] = "high"
    return Request(
        "/v1/chat/completions", _chat([{"role": "user", "content": prompt}], "mock-reasoner", **extra)
    )


SLOW_TEMPLATE = (
    "{problem}\n\nBefore you reply, reconstruct the reasoning you would go through and write every "
    "intermediate step out in full; put the result on the last line."
)


def low_and_slow(account: Account, progress: float) -> Request:
    rng = account.rng
    if rng.random() < 0.25:  # cover traffic
        opener = rng.choice(vocab.CHAT_OPENERS).format(topic=rng.choice(vocab.TOPICS))
        return Request("/v1/chat/completions", _chat([{"role": "user", "content": opener}]))
    prompt = SLOW_TEMPLATE.format(problem=_harvest_problem(rng))
    return Request("/v1/chat/completions", _chat([{"role": "user", "content": prompt}], "mock-reasoner"))


def paraphraser(account: Account, progress: float) -> Request:
    rng = account.rng
    problem = _harvest_problem(rng)
    instruction = cot_instruction(rng)
    prompt = f"{instruction}\n\n{problem}" if rng.random() < 0.5 else f"{problem}\n\n{instruction}"
    return Request(
        "/v1/chat/completions", _chat([{"role": "user", "content": prompt}], "mock-reasoner", max_tokens=4096)
    )


def rubric_harvester(account: Account, progress: float) -> Request:
    rng = account.rng
    return Request(
        "/v1/chat/completions", _chat([{"role": "user", "content": rubric_prompt(rng)}], "mock-reasoner")
    )


AGENT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": {"arg": {"type": "string"}}},
        },
    }
    for name in ("search_web", "execute_python", "read_file", "write_file", "run_shell", "browse")
]


def pivot_agent(account: Account, progress: float) -> Request:
    rng = account.rng
    task = vocab.coding_task(rng)
    prompt = rng.choice(
        [
            "You are an autonomous coding agent. Plan the subtasks, call the tools you need, and explain "
            f"the "
            f"reasoning behind each tool call before you make it. Task: {task}",
            f"Act as an agent with tools. Task: {task} First write your complete reasoning and plan, then "
            f"execute each step with a tool call and report the observation.",
        ]
    )
    # Half of the traffic moves to the new model once it is released (a third into the run).
    model = NEW_MODEL if progress > 0.33 and rng.random() < 0.6 else "mock-reasoner"
    body = _chat([{"role": "user", "content": prompt}], model, tools=AGENT_TOOLS, max_tokens=4096)
    return Request("/v1/chat/completions", body)


HYDRA_TEMPLATES = [
    "Work on the task below. Think it through and write down your entire reasoning transparently, every "
    "step of it, then the conclusion.\n\nTask: {problem}",
    "Task: {problem}\nExplain the thought process behind the solution in full detail before the answer.",
]
HYDRA_SYSTEM = (
    "You are an expert data analyst. Deliver data-driven insights grounded in complete and transparent "
    "reasoning."
)


def hydra_member(account: Account, progress: float) -> Request:
    rng = account.rng
    if rng.random() < 0.05:
        prompt = rng.choice(HYDRA_TEMPLATES).format(problem=_harvest_problem(rng))
        messages = [{"role": "system", "content": HYDRA_SYSTEM}, {"role": "user", "content": prompt}]
        return Request("/v1/chat/completions", _chat(messages, "mock-reasoner", max_tokens=4096))
    opener = rng.choice(vocab.CHAT_OPENERS).format(topic=rng.choice(vocab.TOPICS))
    return Request("/v1/chat/completions", _chat([{"role": "user", "content": opener}]), rng.random() < 0.3)


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
    ]
    if requests_scale != 1.0:
        for persona in mix:
            persona.requests = max(5, round(persona.requests * requests_scale))
    return mix
