"""The detector's config schema.

Two parts. ``shared`` configures the process-wide detector core (accounts,
template index, audit log, store sync, allowlist): the engine builds one
detector instance per (tier, account override, risk level), but they all feed
one core, so ``shared`` must be the same wherever the detector appears (a
config where two entries disagree is refused at startup). Everything else
(weights, thresholds, hysteresis, cluster rules) may differ per tier: each
observation is scored with the settings of the instance that saw it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from gateway.plugins import HIGHER_IS_STRICTER, LOWER_IS_STRICTER, NEUTRAL, TRUE_IS_STRICTER, PolicyConfig


class NewModel(PolicyConfig):
    """A model release: traffic moving to it soon after ``released_at`` is a pivot signal."""

    model: str = Field(min_length=1, description="model name or glob (fnmatch)")
    released_at: datetime


class SemanticSettings(PolicyConfig):
    """The semantic signals (policies/detector/semantic.py): a sentence-embedding model, background only."""

    enabled: Literal["auto", "on", "off"] = Field(
        "auto",
        description="auto: when the 'semantic' extra is installed; on: refuse to start without it",
    )
    sample_first: int = Field(16, ge=0, le=100_000, description="an account's requests all embedded first")
    sample_every: int = Field(4, ge=1, le=10_000, description="then one request in this many")
    max_pending: int = Field(512, ge=1, le=100_000, description="prompts waiting to be embedded")
    warm_start: bool = Field(
        True,
        description="start the embedding process and load its model when the gateway starts, so the first "
        "requests' semantic signals do not wait for it (off: at the first sampled request)",
    )

    @model_validator(mode="after")
    def _installed(self) -> SemanticSettings:
        from policies.detector.embedding import available

        if self.enabled == "on" and not available():
            raise ValueError(
                "enabled is 'on' but the sentence-embedding model is not installed "
                "(pip install 'distillguard[semantic]')"
            )
        return self


class SharedSettings(PolicyConfig):
    audit_log: str | None = Field(
        None, description="JSONL file of level changes with their evidence ('{replica}' = this replica's id)"
    )
    max_accounts: int = Field(100_000, ge=10, le=10_000_000, description="accounts tracked (LRU)")
    max_templates: int = Field(200_000, ge=100, le=10_000_000, description="template groups kept (LRU)")
    max_group_members: int = Field(2048, ge=16, le=100_000, description="members remembered per group")
    queue_size: int = Field(10_000, ge=10, le=1_000_000, description="observations waiting for analysis")
    sync: Literal["auto", "on", "off"] = Field(
        "auto", description="share index and levels through the state store (auto: when it is redis)"
    )
    sync_interval_seconds: float = Field(1.0, gt=0, le=60)
    vote_ttl_seconds: float = Field(86_400.0, gt=0, description="how long a replica's level vote lives")
    group_ttl_seconds: float = Field(86_400.0, gt=0, description="expiry of shared template groups")
    door_ttl_seconds: float = Field(
        600.0, gt=0, description="how long a first sighting waits in the shared doorkeeper (door_share.py)"
    )
    share_accounts: bool = Field(
        True, description="with sync on, also merge per-account features in the store (account_share.py)"
    )
    account_sync_seconds: float = Field(
        0.1, gt=0, le=60, description="how often per-account features are merged (between full rounds)"
    )
    account_ttl_seconds: float = Field(
        86_400.0, gt=0, description="expiry of an account's shared features after its last request"
    )
    owners: bool = Field(
        True,
        description="with sync on, analyse each account on one replica, its owner: the others forward "
        "its observations through the store (routing.py)",
    )
    inbox_poll_seconds: float = Field(
        0.005, gt=0, le=5, description="how often an owner reads the observations forwarded to it"
    )
    inbox_idle_poll_seconds: float = Field(
        0.05, gt=0, le=5, description="the same after a second in which nothing was forwarded to it"
    )
    owner_ttl_seconds: float = Field(
        5.0,
        ge=0.5,
        le=600,
        description="how long a replica stays an owner after its last heartbeat (every third of it)",
    )
    inbox_cap: int = Field(
        50_000, ge=100, le=10_000_000, description="observations an owner's inbox holds (more: kept locally)"
    )
    store_prompts: bool = Field(False, description="keep the last prompts per flagged account as evidence")
    prompts_kept: int = Field(20, ge=1, le=1000)
    timeline_points: int = Field(48, ge=2, le=10_000, description="feature snapshots kept per account")
    timeline_every_requests: int = Field(50, ge=1, description="snapshot cadence for flagged accounts")
    audit_trail_kept: int = Field(200, ge=1, le=100_000, description="audit entries kept per account")
    allowlist: list[str] = Field(default_factory=list, description="accounts the detector never raises")
    new_models: list[NewModel] = Field(default_factory=list)
    pivot_window_hours: float = Field(24.0, gt=0)
    semantic: SemanticSettings = SemanticSettings()


class TextSettings(PolicyConfig):
    max_chars: int = Field(
        1000, ge=64, le=100_000, description="prompt characters analysed per request (head 70%, tail 30%)"
    )


# The behaviour signals, in the order the score mixes them.
BEHAVIOUR = (
    "template_reuse",
    "single_turn",
    "capability_focus",
    "volume",
    "regularity",
    "max_reasoning",
    "new_model",
)


class Weights(PolicyConfig):
    """Weights of the signals (see docs/detection.md for the formula)."""

    cot_elicitation: float = Field(0.95, ge=0, le=1)
    rubric_grading: float = Field(0.9, ge=0, le=1)
    agentic_elicitation: float = Field(
        0.9, ge=0, le=1, description="plans and the reason for each tool call, asked for"
    )
    logprobs: float = Field(0.5, ge=0, le=1)
    bias_probing: float = Field(
        0.95, ge=0, le=1, description="the same prompt resent under another logit_bias (a bias search)"
    )
    semantic_elicitation: float = Field(
        0.9, ge=0, le=1, description="extraction demands recognised by meaning (sentence embeddings)"
    )
    behaviour_floor: float = Field(0.3, ge=0, le=1, description="most that behaviour alone can score")
    cluster: float = Field(0.85, ge=0, le=1)
    # Behaviour (dataset-likeness) mix; normalised to sum 1.
    template_reuse: float = Field(0.3, ge=0)
    single_turn: float = Field(0.2, ge=0)
    capability_focus: float = Field(0.2, ge=0)
    volume: float = Field(0.1, ge=0)
    regularity: float = Field(0.05, ge=0)
    max_reasoning: float = Field(0.05, ge=0)
    new_model: float = Field(0.1, ge=0)
    _behaviour: tuple[tuple[float, ...], float] = PrivateAttr(default=((), 0.0))

    def model_post_init(self, context: Any) -> None:
        weights = tuple(getattr(self, name) for name in BEHAVIOUR)
        total = 0.0
        for weight in weights:  # summed in order, as the score always has
            total += weight
        self._behaviour = (weights, total)

    @property
    def behaviour(self) -> tuple[tuple[float, ...], float]:
        """The behaviour weights in :data:`BEHAVIOUR` order and their sum (computed once, at load)."""
        return self._behaviour


class Thresholds(PolicyConfig):
    """Scores at which an account reaches each level; lower is stricter (the order survives a merge)."""

    elevated: Annotated[float, LOWER_IS_STRICTER] = Field(0.4, gt=0, le=1)
    high: Annotated[float, LOWER_IS_STRICTER] = Field(0.6, gt=0, le=1)
    critical: Annotated[float, LOWER_IS_STRICTER] = Field(
        0.9, gt=0, le=1.01, description="above 1 turns automatic critical off"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.elevated < self.high < self.critical:
            raise ValueError("thresholds must increase: elevated < high < critical")
        return self


class Hysteresis(PolicyConfig):
    margin: Annotated[float, HIGHER_IS_STRICTER] = Field(
        0.1, ge=0, le=0.5, description="a level is left only below its threshold - margin"
    )
    min_hold_seconds: Annotated[float, HIGHER_IS_STRICTER] = Field(
        600.0, ge=0, description="time at a level before it may be lowered"
    )
    min_requests: Annotated[int, LOWER_IS_STRICTER] = Field(
        20, ge=1, description="requests seen before an account's own score counts"
    )
    critical_min_requests: Annotated[int, LOWER_IS_STRICTER] = Field(
        200, ge=1, description="requests seen before automatic critical"
    )


class ClusterSettings(PolicyConfig):
    min_accounts: Annotated[int, LOWER_IS_STRICTER] = Field(
        5, ge=2, description="accounts sharing a template before it is a cluster"
    )
    content_threshold: Annotated[float, LOWER_IS_STRICTER] = Field(
        0.45, ge=0, le=1, description="mean extraction score of a campaign template"
    )
    member_extraction: Annotated[float, LOWER_IS_STRICTER] = Field(
        0.7, ge=0, le=1, description="an account's own mean extraction score on a template to count as member"
    )
    infra_min_accounts: Annotated[int, LOWER_IS_STRICTER] = Field(5, ge=2)
    infra_min_linked: Annotated[int, LOWER_IS_STRICTER] = Field(
        3, ge=1, description="members tied to campaign templates"
    )
    infra_linked_fraction: Annotated[float, LOWER_IS_STRICTER] = Field(
        0.2, gt=0, le=1, description="linked share for a full infra score"
    )
    infra_pooling: Annotated[bool, TRUE_IS_STRICTER] = Field(
        True,
        description="implicated infra groups with one client key read their pooled linked share (index.py)",
    )
    flag_score: Annotated[float, LOWER_IS_STRICTER] = Field(
        0.5, ge=0, le=1, description="group score at which members are re-evaluated"
    )
    ipv4_prefix: int = Field(24, ge=8, le=32)
    ipv6_prefix: int = Field(48, ge=16, le=128)


class Rates(PolicyConfig):
    window_requests: int = Field(32, ge=4, le=4096, description="memory of the per-request averages")
    volume_rpm: Annotated[float, LOWER_IS_STRICTER] = Field(
        30.0, gt=0, description="requests per minute that count as full volume"
    )
    max_reasoning_budget: Annotated[int, LOWER_IS_STRICTER] = Field(
        8000, ge=1, description="budget_tokens at or above this = max effort"
    )


class DetectorConfig(PolicyConfig):
    """The detector's settings. Stricter means an account is raised sooner and lowered later.

    ``shared`` must be one for the whole process (checked at startup), the text window and the
    weights (a normalised mix) are not about strictness: all neutral. The IP prefixes and the
    averaging window declare no order, so risk levels may not change them.
    """

    shared: Annotated[SharedSettings, NEUTRAL] = SharedSettings()
    text: Annotated[TextSettings, NEUTRAL] = TextSettings()
    weights: Annotated[Weights, NEUTRAL] = Weights()
    thresholds: Thresholds = Thresholds()
    hysteresis: Hysteresis = Hysteresis()
    cluster: ClusterSettings = ClusterSettings()
    rates: Rates = Rates()
