"""The attack personas: chain-of-thought, low-and-slow, paraphrased and rubric harvesting, a model pivot,
and a hydra member (see ``personas.py`` for the mix)."""

from __future__ import annotations

import random
from typing import Any

from policies.detector.sim import vocab
from policies.detector.sim.paraphrase import cot_instruction, rubric_prompt
from policies.detector.sim.traffic import NEW_MODEL, Account, Request, chat_body


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
        "/v1/chat/completions", chat_body([{"role": "user", "content": prompt}], "mock-reasoner", **extra)
    )


SLOW_TEMPLATE = (
    "{problem}\n\nBefore you reply, reconstruct the reasoning you would go through and write every "
    "intermediate step out in full; put the result on the last line."
)


def low_and_slow(account: Account, progress: float) -> Request:
    rng = account.rng
    if rng.random() < 0.25:  # cover traffic
        opener = rng.choice(vocab.CHAT_OPENERS).format(topic=rng.choice(vocab.TOPICS))
        return Request("/v1/chat/completions", chat_body([{"role": "user", "content": opener}]))
    prompt = SLOW_TEMPLATE.format(problem=_harvest_problem(rng))
    return Request("/v1/chat/completions", chat_body([{"role": "user", "content": prompt}], "mock-reasoner"))


def paraphraser(account: Account, progress: float) -> Request:
    rng = account.rng
    problem = _harvest_problem(rng)
    instruction = cot_instruction(rng)
    prompt = f"{instruction}\n\n{problem}" if rng.random() < 0.5 else f"{problem}\n\n{instruction}"
    return Request(
        "/v1/chat/completions",
        chat_body([{"role": "user", "content": prompt}], "mock-reasoner", max_tokens=4096),
    )


def rubric_harvester(account: Account, progress: float) -> Request:
    rng = account.rng
    return Request(
        "/v1/chat/completions", chat_body([{"role": "user", "content": rubric_prompt(rng)}], "mock-reasoner")
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
    body = chat_body([{"role": "user", "content": prompt}], model, tools=AGENT_TOOLS, max_tokens=4096)
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
        return Request("/v1/chat/completions", chat_body(messages, "mock-reasoner", max_tokens=4096))
    opener = rng.choice(vocab.CHAT_OPENERS).format(topic=rng.choice(vocab.TOPICS))
    return Request(
        "/v1/chat/completions", chat_body([{"role": "user", "content": opener}]), rng.random() < 0.3
    )
