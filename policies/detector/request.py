"""What the detector keeps of one request: a small, bounded observation.

Taken in on_request (the asks a later policy may edit) and completed by the analysis (the prompt
and the tool use, read from the same request view: see :class:`Observation`). Only bounded slices
of the prompt text are kept (``max_chars``): the last user turn (what templates live in) and the
system prompt; a longer text keeps its first 70% and last 30% of the budget, since an extraction
instruction may come before or after a long payload. Nothing here parses a whole long
conversation: the walk stops when the character budget is spent.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gateway.plugins import Exchange, RequestView

# Headers whose presence and order describe the client software; volatile ones are left out.
_VOLATILE_HEADERS = frozenset(
    {"content-length", "x-request-id", "x-forwarded-for", "x-real-ip", "forwarded", "traceparent", "cookie"}
)


@dataclass(slots=True)
class Observation:
    """One request as the detector sees it (no raw text survives analysis unless store_prompts).

    Taken in two steps. On the request path only what a later policy may edit is read (the sampling,
    logprobs and reasoning asks, the bias; :func:`observe`); the prompt and the tool use, which no
    policy edits (the request view's edits reach parameters and, for sealed reasoning, assistant
    turns: never the user or system text, the turns' roles or the tool definitions), are read from
    the same request view by the analysis (:func:`settle_prompt`), off the request path, and the view
    is then dropped. Behind a backlog both are read at submission (:func:`settle`), so the queue holds
    bounded slices rather than whole request bodies.
    """

    account: str
    tier: str
    at: float  # wall clock
    mono: float
    operation: str
    model: str
    logprobs: bool
    bias: dict[str, Any] | None  # the client's logit_bias (never edited in place: policies replace it)
    max_output: int  # the output-token cap asked for (0: none)
    samples: int  # n
    max_reasoning: bool
    # The client's headers and address as the server read them (neither is edited by any policy): the
    # analysis derives the client key and the network prefix from them (:func:`infra_key_of`), off the
    # request path, and then drops the headers.
    headers: Mapping[str, str] | None
    client_ip: str
    settings: Any  # the DetectorConfig of the instance that saw it
    request: RequestView | None  # the view the prompt is read from, until settle_prompt drops it
    user_text: str = ""
    system_text: str = ""
    turns: int = 1  # user turns in the request (1 = single-turn)
    tools: bool = False
    tool_count: int = 0  # tool definitions
    tool_forced: bool = False  # tool_choice forces a call (some tool, or a named one)
    tool_results: int = 0  # tool-result turns in the conversation
    tool_depth: int = 0  # tool-result turns since the last turn a person wrote (agent-loop depth)
    client: str | None = None  # the client key, once taken (then ``headers`` is None)
    status: int = 0
    response_bytes: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    inline_seconds: float = 0.0
    submitted: float = 0.0  # monotonic clock at submission, on timed observations (the analysis lag)
    timed: bool = True  # its CPU time is measured (a sample of requests: see policies.detector.policy)
    shadow: bool = False  # seen by an instance in shadow mode (its decisions are audited, not applied)
    forwarded: bool = False  # from another replica (routing.py): analysed here, whoever owns it now


_MAX_EFFORTS = frozenset({"high", "xhigh", "max"})


def _max_reasoning(request: RequestView, budget_floor: int) -> bool:
    """Whether the request asks for the most reasoning: a top effort, or a budget at the floor or above."""
    for ask in request.reasoning_efforts():
        if ask.value in _MAX_EFFORTS:
            return True
    budget = request.reasoning_budget
    return budget is not None and budget.tokens is not None and budget.tokens >= budget_floor


def client_key(headers: Any) -> str:
    """A short hash of the user agent and the order of the headers the client sent."""
    names = [name for name in headers if name not in _VOLATILE_HEADERS]
    return _shape_key(headers.get("user-agent", "") + "\n" + ",".join(names))


@lru_cache(maxsize=4096)  # a few client setups send most traffic: hash each shape once
def _shape_key(shape: str) -> str:
    return hashlib.blake2b(shape.encode("utf-8", "replace"), digest_size=8).hexdigest()


@lru_cache(maxsize=8192)
def ip_prefix(address: str, v4_bits: int, v6_bits: int) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of a client address, as text; '' when not an address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = v4_bits if ip.version == 4 else v6_bits
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def settle_client(observation: Observation) -> None:
    """Take the observation's client key now and drop the headers (a few µs)."""
    if observation.client is None:
        observation.client = client_key(observation.headers or {})
    observation.headers = None


def settle_prompt(observation: Observation) -> None:
    """Read the prompt slices and the tool use from the request view, then drop the view."""
    request = observation.request
    if request is None:
        return
    observation.request = None
    user, system, turns = request.conversation(observation.settings.text.max_chars)
    tools = request.tool_use()
    observation.user_text = user
    observation.system_text = system
    observation.turns = max(1, turns)
    observation.tools = tools.tools > 0
    observation.tool_count = tools.tools
    observation.tool_forced = tools.forced
    observation.tool_results = tools.results
    observation.tool_depth = tools.depth


def settle(observation: Observation) -> None:
    """Everything the observation still refers to, read now (for an observation that will wait)."""
    settle_prompt(observation)
    settle_client(observation)


def infra_key_of(observation: Observation) -> str:
    """The observation's client key and network prefix (``key|prefix``), for the infra index; taken in
    the background analysis, which then drops the headers (a first address costs ~60 µs to parse)."""
    settle_client(observation)
    settings = observation.settings
    network = ip_prefix(observation.client_ip, settings.cluster.ipv4_prefix, settings.cluster.ipv6_prefix)
    return f"{observation.client}|{network}"


def observe(exchange: Exchange, settings: Any) -> Observation:
    """Take the observation of ``exchange`` on the request path: only what a later policy may edit.

    The asks (logprobs, samples, the output cap beside a bias, the most reasoning) are read now, as
    the client sent them; the prompt, the tool use, the client key and the network prefix, derived
    from what no policy edits, are read by the analysis (:func:`settle_prompt`,
    :func:`infra_key_of`): the request path's tail is set by how much code it runs.
    """
    request = exchange.request
    bias = request.logit_bias
    account = exchange.account
    # Positional, in the field order (a keyword call costs ~2 µs more on a request path run cold).
    return Observation(
        account.id,  # account
        account.tier,  # tier
        time.time(),  # at
        time.monotonic(),  # mono
        exchange.operation.name,  # operation
        request.model or "",  # model (exchange.model, without going through the exchange again)
        request.logprobs.any,  # logprobs
        bias,  # bias
        (request.max_output_tokens or 0) if bias else 0,  # max_output
        request.samples,  # samples
        _max_reasoning(request, settings.rates.max_reasoning_budget),  # max_reasoning
        exchange.headers,  # headers
        exchange.client_ip,  # client_ip
        settings,  # settings
        request,  # request
    )
