"""What the detector core shows: gauges, evidence of an account, status, clusters, timelines.

A mixin of :class:`policies.detector.core.DetectorCore` (split out to keep modules small).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from gateway.plugins import RISK_LEVELS
from policies.detector import fingerprint
from policies.detector.features import AccountState
from policies.detector.index import INFRA, SYSTEM, TEMPLATE
from policies.detector.levels import _json
from policies.detector.scoring import Score, score_account
from policies.detector.state import CoreState


class ViewsMixin(CoreState):
    """Read-only views of the core's state for the admin API, the audit trail and metrics."""

    def update_gauges(self, clusters: bool = True) -> None:
        if self.metrics is None or self.services is None:
            return
        for level, count in self.services.risk.accounts_at().items():
            self.metrics.accounts.labels(level).set(count)
        self.metrics.tracked.set(len(self.accounts))
        if not clusters:
            return  # counting clusters walks the index: done once per sync round, not per change
        flagged = {TEMPLATE: 0, SYSTEM: 0, INFRA: 0}
        for group in self.index.groups.values():
            if group.flagged:
                flagged[group.kind] += 1
        for kind, count in flagged.items():
            self.metrics.clusters.labels(kind).set(count)

    def evidence_of(self, state: AccountState, score: Score, mono: float) -> dict[str, Any]:
        templates = []
        for key, (uses, extraction) in sorted(state.templates.items(), key=lambda kv: -kv[1][0]):
            group = self.index.get(key)
            item: dict[str, Any] = {"uses": int(uses), "own_extraction_mean": round(extraction / uses, 4)}
            if group is not None:
                item.update(group.summary())
            else:
                item["id"] = f"template:{fingerprint.key_hex(key)}"
            templates.append(item)
        cluster = None
        if score.cluster_id is not None:
            group = self.index.find(score.cluster_id)
            cluster = group.summary() if group is not None else {"id": score.cluster_id}
        return {
            "features": state.snapshot(mono),
            "score": score.explain(),
            "templates": templates,
            "infra": list(state.infra),
            "cluster": cluster,
        }

    def _timeline(self, state: AccountState, mono: float) -> None:
        every = self.shared.timeline_every_requests
        if state.level == "none" and state.last_score < 0.2:
            return
        if state.requests % every and state.timeline is not None:
            return
        point = {"at": state.last_seen, "level": state.level, "score": round(state.last_score, 4)}
        point.update(state.snapshot(mono))
        if state.timeline is None:
            state.timeline = deque(maxlen=self.shared.timeline_points)
        state.timeline.append(point)
        self.out_lists.append((("timeline", state.account), _json(point), self.shared.timeline_points))

    def status(self, account: str) -> dict[str, Any]:
        """What the admin API shows for an account."""
        out: dict[str, Any] = {"account": account, "replica": self.replica}
        if self.services is not None:
            out["risk_level"] = self.services.risk.level(account)
            out["pinned"] = self.services.risk.pinned(account)
        out["allowlisted"] = self.allowlisted(account)
        out["votes"] = {self.replica: self.vote_of(account), **self.remote_votes.get(account, {})}
        state = self.accounts.get(account)
        if state is None or self.settings is None:
            out["tracked"] = False
            return out
        mono = time.monotonic()
        cluster, cluster_id = self.cluster_term(state, self.settings)
        score = score_account(state, self.settings, mono, cluster, cluster_id)
        out.update(
            tracked=True,
            detector_level=state.level,
            level_since=state.level_since or None,
            first_seen=state.first_seen,
            last_seen=state.last_seen,
            **self.evidence_of(state, score, mono),
        )
        return out

    def clusters(self, flagged_only: bool = True, limit: int = 500) -> list[dict[str, Any]]:
        out = []
        for group in self.index.groups.values():
            if group.flagged or (not flagged_only and group.accounts >= 2):
                out.append(group.summary())
        out.sort(key=lambda g: (-g["score"], -g["accounts"]))
        return out[:limit]

    def levels_summary(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(RISK_LEVELS, 0)
        for state in self.accounts.values():
            counts[state.level] += 1
        return counts
