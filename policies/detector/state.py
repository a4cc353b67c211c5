"""What the detector core's mixins share: the core's attributes and the methods they call on each other.

:class:`policies.detector.core.DetectorCore` is assembled from three mixins (analysis, levels,
views) that read and write one set of attributes; the core's ``__init__`` sets them. They are
declared here, once, so each mixin is type-checked against the same contract instead of
assuming attributes another module defines.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.plugins import PolicyServices, RiskBoard, RiskLevel

if TYPE_CHECKING:
    from policies.detector.audit import AuditLog
    from policies.detector.config import DetectorConfig, SharedSettings
    from policies.detector.features import AccountState
    from policies.detector.index import TemplateIndex
    from policies.detector.metrics import DetectorMetrics
    from policies.detector.request import Observation
    from policies.detector.scoring import Score


class CoreState:
    """The detector core's state, as its mixins see it (set by ``DetectorCore.__init__``)."""

    replica: str
    shared: SharedSettings
    settings: DetectorConfig | None
    services: PolicyServices | None
    metrics: DetectorMetrics | None
    accounts: OrderedDict[str, AccountState]
    index: TemplateIndex
    audit: AuditLog
    allow_config: set[str]
    allow_shared: set[str]
    remote_votes: dict[str, dict[str, RiskLevel]]
    recent: deque[dict[str, Any]]
    pending_evidence: dict[str, dict[str, Any]]
    sync_enabled: bool
    out_lists: list[tuple[tuple[str, ...], str, int]]
    out_votes: dict[str, RiskLevel]
    out_allow: list[tuple[str, str]]
    touched: set[Any]
    clock: Callable[[], float]
    _system_keys: dict[str, int | None]
    _sweeps: deque[tuple[Any, list[str]]]
    _boards: list[RiskBoard]
    _queue: asyncio.Queue[Observation] | None

    if TYPE_CHECKING:
        # Methods one mixin calls on another (defined in analysis, levels and views).
        def allowlisted(self, account: str) -> bool: ...
        def vote_of(self, account: str) -> RiskLevel: ...
        def _vote(
            self, state: AccountState, level: RiskLevel, score: Score, now: float, mono: float, shadow: bool
        ) -> None: ...
        def evidence_of(self, state: AccountState, score: Score, mono: float) -> dict[str, Any]: ...
        def _timeline(self, state: AccountState, mono: float) -> None: ...
        def cluster_term(self, state: AccountState, settings: DetectorConfig) -> tuple[float, str | None]: ...
