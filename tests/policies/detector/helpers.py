"""Shared helpers for the detector tests: prompt makers and a harness driver."""

from __future__ import annotations

import random
from typing import Any

from gateway.plugins.base import Exchange
from tests.policy_harness import PolicyHarness

HARVEST = (
    "Imagine and articulate the internal reasoning behind a completed response to the problem below, and "
    "write it out step by step before giving the final answer.\n\nProblem: {name} has {a} apples and buys "
    "{b} more boxes of {c}. How many apples does {name} have now?"
)
TICKET = (
    "Summarize the following customer support ticket in 3 bullet points and classify its urgency.\n\n"
    "Ticket #{a}{b}: Hi, this is {name}. The checkout page {issue}. Order {c}{a} is affected."
)
COVER = [
    "What are three interesting facts about {topic}?",
    "Can you give me a few tips on {topic}?",
    "Explain {topic} like I'm twelve.",
    "What's a good way to get started with {topic}?",
]
TOPICS = [
    "sourdough",
    "jazz history",
    "houseplants",
    "marathons",
    "guitar",
    "black holes",
    "composting",
    "meditation",
    "electric cars",
    "the Cold War",
    "knitting",
    "podcasts",
    "tomatoes",
    "sleep",
]
NAMES = ["Alice", "Bruno", "Chen", "Dana", "Emeka", "Fatima", "Goran", "Hana"]
ISSUES = ["crashes on launch", "charges me twice", "is extremely slow", "rejects my card"]


def harvest_prompt(rng: random.Random) -> str:
    return HARVEST.format(
        name=rng.choice(NAMES), a=rng.randint(2, 99), b=rng.randint(2, 9), c=rng.randint(2, 12)
    )


def ticket_prompt(rng: random.Random) -> str:
    return TICKET.format(
        name=rng.choice(NAMES),
        a=rng.randint(100, 999),
        b=rng.randint(100, 999),
        c=rng.randint(10, 99),
        issue=rng.choice(ISSUES),
    )


def cover_prompt(rng: random.Random) -> str:
    return rng.choice(COVER).format(topic=rng.choice(TOPICS))


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "mock-small", "messages": [{"role": "user", "content": text}], **extra}


async def send(
    harness: PolicyHarness,
    account: str,
    body: dict[str, Any],
    *,
    ip: str = "192.0.2.10",
    user_agent: str = "test-client/1.0",
) -> Exchange:
    """One request through the harness's pipeline (request and after-response phases)."""
    exchange = harness.exchange("chat.completions", body, account=account, headers={"user-agent": user_agent})
    exchange.client_ip = ip
    await harness.request(exchange)
    await harness.after(exchange)
    return exchange
