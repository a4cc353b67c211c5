"""What the detector core shows: gauges, evidence of an account, status, clusters, level counts.

Read-only: :func:`account_evidence` is what an audit entry and the admin API
show of an account; :class:`DetectorViews` serves the admin API and metrics.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gateway.plugins import RISK_LEVELS
from policies.detector import fingerprint
from policies.detector.features import AccountState, TrackedAccounts
from policies.detector.index import INFRA, SYSTEM, TEMPLATE, TemplateIndex
from policies.detector.scoring import Score, score_account

if TYPE_CHECKING:
    from gateway.plugins import RiskBoard
    from policies.detector.analysis import Analyser
    from policies.detector.config import DetectorConfig
    from policies.detector.levels import LevelVotes
    from policies.detector.metrics import DetectorMetrics


def account_evidence(index: TemplateIndex, state: AccountState, score: Score, mono: float) -> dict[str, Any]:
    """The account's features, score breakdown, templates (with their groups), infrastructure, cluster."""
    templates = []
    for key, (uses, extraction) in sorted(state.templates.items(), key=lambda kv: -kv[1][0]):
        group = index.get(key)
        item: dict[str, Any] = {"uses": int(uses), "own_extraction_mean": round(extraction / uses, 4)}
        if group is not None:
            item.update(group.summary())
        else:
            item["id"] = f"template:{fingerprint.key_hex(key)}"
        templates.append(item)
    cluster = None
    if score.cluster_id is not None:
        found = index.find(score.cluster_id)
        cluster = found.summary() if found is not None else {"id": score.cluster_id}
    return {
        "features": state.snapshot(mono),
        "score": score.explain(),
        "templates": templates,
        "infra": list(state.infra),
        "cluster": cluster,
    }


class DetectorViews:
    """Read-only views of the detector's state for the admin API, evidence bundles and metrics."""

    def __init__(
        self,
        replica: str,
        accounts: TrackedAccounts,
        index: TemplateIndex,
        levels: LevelVotes,
        analyser: Analyser,
    ) -> None:
        self._replica = replica
        self._accounts = accounts
        self._index = index
        self._levels = levels
        self._analyser = analyser
        self._settings: DetectorConfig | None = None
        self._risk: RiskBoard | None = None
        self._metrics: DetectorMetrics | None = None

    def configure(self, settings: DetectorConfig, risk: RiskBoard, metrics: DetectorMetrics | None) -> None:
        """Take the settings, risk board and metrics of a new configuration."""
        self._settings = settings
        self._risk = risk
        self._metrics = metrics

    def update_gauges(self, clusters: bool = True) -> None:
        """Set the level, tracked-accounts and (with ``clusters``) flagged-cluster gauges."""
        metrics = self._metrics
        if metrics is None or self._risk is None:
            return
        for level, count in self._risk.accounts_at().items():
            metrics.accounts.labels(level).set(count)
        metrics.tracked.set(len(self._accounts))
        if not clusters:
            return  # counting clusters walks the index: done once per sync round, not per change
        flagged = {TEMPLATE: 0, SYSTEM: 0, INFRA: 0}
        for group in self._index.groups.values():
            if group.flagged:
                flagged[group.kind] += 1
        for kind, count in flagged.items():
            metrics.clusters.labels(kind).set(count)

    def status(self, account: str) -> dict[str, Any]:
        """What the admin API shows for an account."""
        levels = self._levels
        out: dict[str, Any] = {"account": account, "replica": self._replica}
        if self._risk is not None:
            out["risk_level"] = self._risk.level(account)
            out["pinned"] = self._risk.pinned(account)
        out["allowlisted"] = levels.allowlisted(account)
        out["votes"] = {self._replica: levels.vote_of(account), **levels.remote_votes.get(account, {})}
        state = self._accounts.get(account)
        settings = self._settings
        if state is None or settings is None:
            out["tracked"] = False
            return out
        mono = time.monotonic()
        cluster, cluster_id = self._analyser.cluster_term(state, settings)
        semantic, shift = self._analyser.semantic.value(account)
        score = score_account(state, settings, mono, cluster, cluster_id, semantic, shift)
        out.update(
            tracked=True,
            detector_level=state.level,
            level_since=state.level_since or None,
            first_seen=state.first_seen,
            last_seen=state.last_seen,
            **account_evidence(self._index, state, score, mono),
        )
        return out

    def clusters(self, flagged_only: bool = True, limit: int = 500) -> list[dict[str, Any]]:
        """Summaries of flagged groups (or of every group shared by 2+ accounts), strongest first."""
        out = []
        for group in self._index.groups.values():
            if group.flagged or (not flagged_only and group.accounts >= 2):
                out.append(group.summary())
        out.sort(key=lambda g: (-g["score"], -g["accounts"]))
        return out[:limit]

    def levels_summary(self) -> dict[str, int]:
        """How many tracked accounts this replica votes for at each level."""
        counts: dict[str, int] = dict.fromkeys(RISK_LEVELS, 0)
        for state in self._accounts.values():
            counts[state.level] += 1
        return counts
