"""The account score, its explanation, and the level it maps to (with hysteresis).

Three parts, each in [0, 1]::

    content    C = 1 - (1 - w_cot·cot)(1 - w_rubric·rubric)(1 - w_agentic·agentic)
                     · (1 - w_logprobs·logprobs)(1 - w_probing·bias_probing)
                     · (1 - w_semantic·semantic_elicitation)
    behaviour  B = weighted mean of template reuse, single-turn share, capability focus,
                   volume, regularity, max reasoning effort and new-model share
    own        O = 1 - (1 - C·(0.55 + 0.45·B)) · (1 - floor·B)       (0 before min_requests)
    score      S = 1 - (1 - O) · (1 - w_cluster·cluster)

Content is what an extraction campaign needs (reasoning written out, grades,
plans and the reasons for each tool call, logprobs, logit-bias searches); behaviour (dataset-like
traffic) only amplifies it, and alone can reach at most ``behaviour_floor``
(0.3 by default, below ``elevated``): a batch customer with templated
single-turn prompts at high volume is not a distiller by that alone.
``cluster`` is the best score of the groups the account belongs to (shared
campaign templates or client infrastructure); a template the account used
only once counts half.

Levels: the highest level whose threshold the score reaches; ``critical`` also
needs ``critical_min_requests`` of the account's own traffic. Raising is
immediate; lowering goes one level at a time, only after ``min_hold_seconds``
at the current level and with the score below that level's threshold minus
``margin``. ``critical`` is never lowered automatically (a blocked account
sends no traffic to re-evaluate): an operator decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.plugins import RISK_LEVELS, RiskLevel
from policies.detector import features as F
from policies.detector.classifier import OTHER
from policies.detector.config import BEHAVIOUR
from policies.detector.features import AccountState

RANK = {level: rank for rank, level in enumerate(RISK_LEVELS)}


@dataclass(slots=True)
class Score:
    value: float
    own: float
    content: float
    behaviour: float
    cluster: float
    cluster_id: str | None
    counted: bool = True
    weights: Any = None
    raw: dict[str, float] = field(default_factory=dict)

    def signals(self) -> dict[str, dict[str, float]]:
        """Each signal's value, weight and (approximate, additive) contribution to the score."""
        w = self.weights
        amplified = self.content * (0.55 + 0.45 * self.behaviour)
        out: dict[str, dict[str, float]] = {}
        for name in CONTENT:
            weight = getattr(w, name)
            share = weight * self.raw[name] / self.content if self.content > 0 else 0.0
            out[name] = _signal(self.raw[name], weight, share * amplified if self.counted else 0.0)
        total = sum(getattr(w, name) for name in BEHAVIOUR) or 1.0
        for name in BEHAVIOUR:
            weight = getattr(w, name) / total
            part = (
                weight * self.raw[name] * (w.behaviour_floor + 0.45 * self.content) if self.counted else 0.0
            )
            out[name] = _signal(self.raw[name], weight, part)
        out["cluster"] = _signal(self.cluster, w.cluster, w.cluster * self.cluster)
        return out

    def explain(self) -> dict[str, Any]:
        """The score and how each signal contributed (for the audit log and the admin API)."""
        top = sorted(self.signals().items(), key=lambda kv: kv[1]["contribution"], reverse=True)
        shift = self.raw.get("distribution_shift")
        return {
            "score": round(self.value, 4),
            "own": round(self.own, 4),
            "content": round(self.content, 4),
            "behaviour": round(self.behaviour, 4),
            "cluster": round(self.cluster, 4),
            "cluster_id": self.cluster_id,
            "own_counted": self.counted,
            "signals": dict(top),
            "top_reasons": [name for name, item in top if item["contribution"] >= 0.05][:4],
            **({} if shift is None else {"distribution_shift": round(shift, 4)}),
        }


CONTENT = (
    "cot_elicitation",
    "rubric_grading",
    "agentic_elicitation",
    "logprobs",
    "bias_probing",
    "semantic_elicitation",
)


def score_account(
    state: AccountState,
    settings: Any,
    mono: float,
    cluster: float = 0.0,
    cluster_id: str | None = None,
    semantic: float = 0.0,
    shift: float | None = None,
) -> Score:
    """The account's score; ``semantic`` and ``shift`` come from the semantic signals (semantic.py)."""
    w = settings.weights
    v = state.values
    weight = v[F.WEIGHT]
    if weight > 0:  # the means of state.mean(), read from the array directly (same divisions)
        cot, rubric, logprobs = v[F.COT] / weight, v[F.RUBRIC] / weight, v[F.LOGPROBS] / weight
        agentic, probing = v[F.AGENTIC] / weight, v[F.PROBE] / weight
        dup, single = v[F.DUP] / weight, v[F.SINGLE] / weight
        max_reasoning, new_model = v[F.MAX_REASONING] / weight, v[F.NEW_MODEL] / weight
        focus = max(v[F.CATEGORY_BASE : F.CATEGORY_BASE + OTHER]) / weight  # capability_focus()
    else:
        cot = rubric = logprobs = agentic = probing = dup = single = max_reasoning = new_model = focus = 0.0
    volume = min(1.0, state.rate_per_minute(mono) / settings.rates.volume_rpm)
    regularity = state.regularity()
    content = 1.0 - (1.0 - w.cot_elicitation * cot) * (1.0 - w.rubric_grading * rubric) * (
        1.0 - w.agentic_elicitation * agentic
    ) * (1.0 - w.logprobs * logprobs) * (1.0 - w.bias_probing * probing)
    if semantic > 0:
        content = 1.0 - (1.0 - content) * (1.0 - w.semantic_elicitation * semantic)
    weights, total = w.behaviour
    # The same sum, in the same order, as over BEHAVIOUR.
    mixed = 0.0
    for part, value in zip(
        weights, (dup, single, focus, volume, regularity, max_reasoning, new_model), strict=True
    ):
        mixed += part * value
    behaviour = mixed / total if total else 0.0
    amplified = content * (0.55 + 0.45 * behaviour)
    own = 1.0 - (1.0 - amplified) * (1.0 - w.behaviour_floor * behaviour)
    counted = state.requests >= settings.hysteresis.min_requests
    if not counted:
        own = 0.0
    value = 1.0 - (1.0 - own) * (1.0 - w.cluster * cluster)
    raw = {
        "cot_elicitation": cot,
        "rubric_grading": rubric,
        "agentic_elicitation": agentic,
        "logprobs": logprobs,
        "bias_probing": probing,
        "semantic_elicitation": semantic,
        "template_reuse": dup,
        "single_turn": single,
        "capability_focus": focus,
        "volume": volume,
        "regularity": regularity,
        "max_reasoning": max_reasoning,
        "new_model": new_model,
    }
    if shift is not None:
        raw["distribution_shift"] = shift  # evidence only: it is inside semantic_elicitation
    return Score(value, own, content, behaviour, cluster, cluster_id, counted, w, raw)


def _signal(value: float, weight: float, contribution: float) -> dict[str, float]:
    return {"value": round(value, 4), "weight": round(weight, 4), "contribution": round(contribution, 4)}


def target_level(score: float, requests: int, settings: Any) -> RiskLevel:
    t = settings.thresholds
    if score >= t.critical and requests >= settings.hysteresis.critical_min_requests:
        return "critical"
    if score >= t.high:
        return "high"
    if score >= t.elevated:
        return "elevated"
    return "none"


def threshold_of(level: RiskLevel, settings: Any) -> float:
    if level == "none":
        return 0.0
    return float(getattr(settings.thresholds, level))


def decide(
    current: RiskLevel, since: float, score: float, requests: int, now: float, settings: Any
) -> RiskLevel:
    """The next level of an account at ``current`` (since ``since``) given its ``score``."""
    target = target_level(score, requests, settings)
    if RANK[target] > RANK[current]:
        return target
    if RANK[target] == RANK[current] or current == "critical":
        return current
    h = settings.hysteresis
    if now - since < h.min_hold_seconds:
        return current
    if score >= threshold_of(current, settings) - h.margin:
        return current
    return RISK_LEVELS[RANK[current] - 1]
