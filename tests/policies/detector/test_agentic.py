"""Agentic harvesting: tool definitions with demands for the plan and the reason behind each call."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from policies.detector.agentic import agentic_score
from policies.detector.core import core_for
from tests.policies.detector.helpers import send
from tests.policy_harness import PolicyHarness

TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}
    for name in ("search", "open_page", "run_code", "write_file", "shell")
]
TASKS = [
    "migrate the billing service from cron jobs to a queue",
    "find why the nightly export drops rows with a null region",
    "add pagination to the orders endpoint",
    "write a scraper for the city's open data portal",
    "benchmark three JSON parsers and report the fastest",
    "upgrade the project to the latest LTS runtime",
]
# The wording, and rewordings of it: the words differ, the demand is the same.
PLANNING = [
    "{task}. Plan every tool call and explain why.",
    "Task: {task}. Before each tool call, write down the reasoning that makes it the right next move.",
    "{task}. Prior to every function invocation, state what you expect it to return and why you chose it.",
    "Goal: {task}. Justify all the actions you take, one by one, then give the result.",
]
HONEST = [
    "Please {task}.",
    "Can you {task}? The repo is checked out in /src.",
    "{task} - keep the diff small.",
]


@pytest.mark.parametrize("template", PLANNING)
def test_demands_for_the_reason_behind_each_call_score_high_with_tools(template: str) -> None:
    text = template.format(task=TASKS[0])
    assert agentic_score(text, True) >= 0.8
    assert 0.4 <= agentic_score(text, False) < 0.8  # no tools: a text-only "agent", 60%


@pytest.mark.parametrize(
    "text",
    [
        "Can you explain what each function in this file does?",
        "Explain why this API call fails with a 401.",
        "Help me plan a trip to Lisbon: what are the steps?",
        "Write unit tests for this function and run them with the tools you have.",
        "Why does this throw KeyError when the list is empty?",
    ],
)
def test_ordinary_coding_and_agent_requests_score_zero(text: str) -> None:
    assert agentic_score(text, True) == 0.0


def _agent_body(rng: random.Random, text: str, loop: bool) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": text}]
    if loop:  # an agent loop: the model called a tool, the client hands back its output
        for step in range(rng.randint(1, 4)):
            call = {"id": f"c{step}", "type": "function", "function": {"name": "search", "arguments": "{}"}}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            messages.append({"role": "tool", "tool_call_id": f"c{step}", "content": f"result {rng.random()}"})
    return {"model": "mock-small", "messages": messages, "tools": TOOLS, "tool_choice": "required"}


async def test_agentic_harvester_reaches_high_and_an_honest_agent_stays_untouched(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    harness = PolicyHarness([("detector", {"shared": {"audit_log": str(audit)}}, "enforce")])  # type: ignore[list-item]
    await harness.start()
    rng = random.Random(5)
    for _ in range(60):
        task = rng.choice(TASKS)
        harvest = rng.choice(PLANNING).format(task=task)
        await send(harness, "harvester", _agent_body(rng, harvest, loop=rng.random() < 0.5))
        honest = rng.choice(HONEST).format(task=rng.choice(TASKS))
        await send(
            harness, "honest-agent", _agent_body(rng, honest, loop=rng.random() < 0.8), ip="198.51.100.7"
        )
    core = core_for(harness.services)
    await core.drain()
    risk = harness.services.risk
    assert risk.level("harvester") == "high"
    assert risk.level("honest-agent") == "none"
    entries = [orjson.loads(line) for line in audit.read_bytes().splitlines()]
    raised = [entry for entry in entries if entry["account"] == "harvester"]
    evidence = raised[-1]["evidence"]
    assert evidence["features"]["agentic_elicitation"] > 0.8
    assert evidence["features"]["tool_use"] == 1.0 and evidence["features"]["forced_tool_choice"] == 1.0
    assert 0.2 < evidence["features"]["agent_loop"] < 0.8
    assert evidence["features"]["focus_category"] == "agentic"
    assert "agentic_elicitation" in evidence["score"]["top_reasons"]
    assert evidence["score"]["signals"]["agentic_elicitation"]["contribution"] > 0.3
    assert not any(entry["account"] == "honest-agent" for entry in entries)
    honest = core.views.status("honest-agent")
    assert honest["features"]["agent_loop"] > 0.5 and honest["features"]["agentic_elicitation"] == 0.0
    assert honest["features"]["focus_category"] == "agentic" and honest["score"]["score"] < 0.4
