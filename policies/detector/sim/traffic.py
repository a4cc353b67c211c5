"""What the simulator sends with: client software, accounts and their running state, requests.

Shared by the persona modules (``personas.py``: the benign ones and the mix; ``attackers.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policies.detector.sim import vocab

if TYPE_CHECKING:
    from policies.detector.sim.personas import Persona

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
HYDRA_REWORDED_CLIENT = Client("python-requests/2.32.3", [("x-route", "residential")])
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


def chat_body(messages: list[dict[str, str]], model: str = "mock-small", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": messages, **extra}


def conversation(account: Account, opener: str, followup_p: float = 0.6) -> list[dict[str, str]]:
    rng = account.rng
    if account.history and rng.random() < followup_p and len(account.history) < 9:
        account.history.append({"role": "user", "content": rng.choice(vocab.CHAT_FOLLOWUPS)})
    else:
        account.history = [{"role": "user", "content": opener}]
    return list(account.history)
