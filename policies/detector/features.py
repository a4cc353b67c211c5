"""Per-account features with bounded memory: decayed averages in one array of doubles.

Every per-request signal is an exponentially weighted average over the last
~``window_requests`` requests, kept as a decayed sum; one shared decayed weight
turns the sums into bias-corrected means (so the first requests are plain
averages, not pulled towards zero). The request rate is a count decaying with a
60 s time constant, which reads directly as requests per minute.

An account costs one array of ``SIZE`` doubles plus a few small containers
(see ``AccountState``); no prompt text is kept unless ``store_prompts`` is on.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict, deque
from typing import Any

from gateway.plugins import RiskLevel
from policies.detector.classifier import CATEGORIES, OTHER
from policies.detector.probing import BiasProbes

# Indices into the feature array.
WEIGHT = 0
COT = 1
RUBRIC = 2
LOGPROBS = 3
DUP = 4
SINGLE = 5
MAX_REASONING = 6
NEW_MODEL = 7
GAP = 8
GAP_SQ = 9
OUT_TOKENS = 10
IN_TOKENS = 11
EXTRACTION = 12
RATE = 13
AGENTIC = 14  # agentic elicitation (plans and the reason for each tool call)
TOOLS = 15  # share of requests with tool definitions
LOOP = 16  # share of requests inside an agent loop (tool results since the last person's turn)
FORCED = 17  # share of requests forcing a tool call
DEPTH = 18  # agent-loop depth (tool results since the last person's turn), averaged
PROBE = 19  # bias probing: the same prompt again under another logit_bias (probing.py)
CATEGORY_BASE = 20
SIZE = CATEGORY_BASE + len(CATEGORIES)

AVERAGES = {
    "cot_elicitation": COT,
    "rubric_grading": RUBRIC,
    "logprobs": LOGPROBS,
    "template_reuse": DUP,
    "single_turn": SINGLE,
    "max_reasoning": MAX_REASONING,
    "new_model": NEW_MODEL,
    "extraction": EXTRACTION,
    "agentic_elicitation": AGENTIC,
    "tool_use": TOOLS,
    "agent_loop": LOOP,
    "forced_tool_choice": FORCED,
    "agent_loop_depth": DEPTH,
    "bias_probing": PROBE,
}
_VALUABLE = tuple(range(OTHER))  # every class but "other"
_RATE_TAU = 60.0


class AccountState:
    """What the detector remembers of one account."""

    __slots__ = (
        "account",
        "cluster",
        "first_seen",
        "infra",
        "last_mono",
        "last_score",
        "last_seen",
        "level",
        "level_since",
        "linked",
        "probes",
        "prompts",
        "requests",
        "templates",
        "timeline",
        "values",
    )

    def __init__(self, account: str, now: float) -> None:
        self.account = account
        self.values = array("d", bytes(8 * SIZE))
        self.requests = 0
        self.first_seen = now
        self.last_seen = now
        self.last_mono = 0.0
        self.templates: dict[int, list[float]] = {}  # key -> [uses, extraction sum] (MAX_TEMPLATES)
        self.infra: list[str] = []  # client/network keys (at most MAX_INFRA)
        self.linked = False  # has used a campaign template
        self.level: RiskLevel = "none"  # this replica's vote
        self.level_since = 0.0
        self.last_score = 0.0
        self.cluster: str | None = None
        self.timeline: deque[dict[str, Any]] | None = None
        self.prompts: deque[str] | None = None
        self.probes: BiasProbes | None = None  # only for accounts that send a logit_bias

    # ---- updating -------------------------------------------------------------------------
    def update(
        self,
        *,
        alpha: float,
        mono: float,
        wall: float,
        cot: float,
        rubric: float,
        logprobs: bool,
        dup: bool,
        single: bool,
        max_reasoning: bool,
        new_model: bool,
        category: int,
        extraction: float,
        agentic: float = 0.0,
        tools: bool = False,
        forced: bool = False,
        depth: int = 0,
        probe: float = 0.0,
    ) -> None:
        v = self.values
        keep = 1.0 - alpha
        v[WEIGHT] = v[WEIGHT] * keep + alpha
        v[COT] = v[COT] * keep + alpha * cot
        v[RUBRIC] = v[RUBRIC] * keep + alpha * rubric
        v[LOGPROBS] = v[LOGPROBS] * keep + (alpha if logprobs else 0.0)
        v[DUP] = v[DUP] * keep + (alpha if dup else 0.0)
        v[SINGLE] = v[SINGLE] * keep + (alpha if single else 0.0)
        v[MAX_REASONING] = v[MAX_REASONING] * keep + (alpha if max_reasoning else 0.0)
        v[NEW_MODEL] = v[NEW_MODEL] * keep + (alpha if new_model else 0.0)
        v[EXTRACTION] = v[EXTRACTION] * keep + alpha * extraction
        v[AGENTIC] = v[AGENTIC] * keep + alpha * agentic
        v[TOOLS] = v[TOOLS] * keep + (alpha if tools else 0.0)
        v[LOOP] = v[LOOP] * keep + (alpha if depth else 0.0)
        v[FORCED] = v[FORCED] * keep + (alpha if forced else 0.0)
        v[DEPTH] = v[DEPTH] * keep + alpha * depth
        v[PROBE] = v[PROBE] * keep + alpha * probe
        for index in range(CATEGORY_BASE, SIZE):
            v[index] *= keep
        v[CATEGORY_BASE + category] += alpha
        if self.requests:
            gap = max(0.0, mono - self.last_mono)
            v[GAP] = v[GAP] * keep + alpha * gap
            v[GAP_SQ] = v[GAP_SQ] * keep + alpha * gap * gap
            v[RATE] = v[RATE] * math.exp(-gap / _RATE_TAU) + 1.0
        else:
            v[RATE] = 1.0
        self.requests += 1
        self.last_mono = mono
        self.last_seen = wall

    def add_usage(self, alpha: float, input_tokens: int, output_tokens: int) -> None:
        v = self.values
        keep = 1.0 - alpha
        v[IN_TOKENS] = v[IN_TOKENS] * keep + alpha * input_tokens
        v[OUT_TOKENS] = v[OUT_TOKENS] * keep + alpha * output_tokens

    # ---- reading --------------------------------------------------------------------------
    def mean(self, index: int) -> float:
        weight = self.values[WEIGHT]
        return self.values[index] / weight if weight > 0 else 0.0

    def category_shares(self) -> dict[str, float]:
        return {name: self.mean(CATEGORY_BASE + i) for i, name in enumerate(CATEGORIES)}

    def capability_focus(self) -> tuple[float, str]:
        """Share of the most used capability other than 'other' (narrow capability focus)."""
        best = max(_VALUABLE, key=lambda i: self.values[CATEGORY_BASE + i])
        return self.mean(CATEGORY_BASE + best), CATEGORIES[best]

    def rate_per_minute(self, mono: float) -> float:
        if not self.requests:
            return 0.0
        return self.values[RATE] * math.exp(-max(0.0, mono - self.last_mono) / _RATE_TAU)

    def regularity(self) -> float:
        """1 for clockwork inter-arrival times, 0 for Poisson-like or burstier ones (needs 10 requests)."""
        if self.requests < 10:
            return 0.0
        mean = self.mean(GAP)
        if mean <= 1e-3:
            return 0.0
        variance = max(0.0, self.mean(GAP_SQ) - mean * mean)
        return max(0.0, 1.0 - math.sqrt(variance) / mean)

    def output_ratio(self) -> float:
        tokens_in = self.mean(IN_TOKENS)
        return self.mean(OUT_TOKENS) / tokens_in if tokens_in > 0 else 0.0

    def snapshot(self, mono: float) -> dict[str, float]:
        """The features as plain numbers (for the admin API, the audit log and evidence)."""
        focus, category = self.capability_focus()
        out = {name: round(self.mean(index), 4) for name, index in AVERAGES.items()}
        out.update(
            requests=self.requests,
            requests_per_minute=round(self.rate_per_minute(mono), 3),
            regularity=round(self.regularity(), 4),
            capability_focus=round(focus, 4),
            output_tokens_avg=round(self.mean(OUT_TOKENS), 1),
            input_tokens_avg=round(self.mean(IN_TOKENS), 1),
        )
        out["focus_category"] = category  # type: ignore[assignment]
        out["capabilities"] = {k: round(v, 4) for k, v in self.category_shares().items()}  # type: ignore[assignment]
        return out


MAX_TEMPLATES = 8
MAX_INFRA = 4


def remember_infra(state: AccountState, key: str) -> bool:
    """Add a client/network key; returns True when it is new for this account."""
    if key in state.infra:
        return False
    if len(state.infra) >= MAX_INFRA:
        state.infra.pop(0)
    state.infra.append(key)
    return True


class TrackedAccounts(OrderedDict[str, AccountState]):
    """The accounts the detector remembers, least recently seen first, at most ``limit``.

    A mapping of account id to :class:`AccountState`; :meth:`seen` is the one way in (analysis),
    and it forgets the least recently seen account past the limit (``shared.max_accounts``).
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def seen(self, account: str, now: float) -> AccountState:
        """The account's state, created when new, and marked most recently seen."""
        state = self.get(account)
        if state is None:
            state = AccountState(account, now)
            self[account] = state
            if len(self) > self.limit:
                self.popitem(last=False)
        else:
            self.move_to_end(account)
        return state
