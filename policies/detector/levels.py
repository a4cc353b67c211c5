"""Levels and the audit trail of the detector core: votes, allowlist, change announcements.

A mixin of :class:`policies.detector.core.DetectorCore` (split out to keep modules small).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway.plugins import RiskChange, RiskLevel
from policies.detector.features import AccountState
from policies.detector.scoring import RANK, Score, score_account
from policies.detector.state import CoreState


class LevelsMixin(CoreState):
    """Level votes, the allowlist and audit entries; uses the core's accounts, services, metrics,
    shared settings, remote votes and outboxes."""

    def allowlisted(self, account: str) -> bool:
        return account in self.allow_config or account in self.allow_shared

    def _vote(
        self, state: AccountState, level: RiskLevel, score: Score, now: float, mono: float, shadow: bool
    ) -> None:
        previous = state.level
        evidence = self.evidence_of(state, score, mono)
        if shadow:
            if self.metrics is not None:
                self.metrics.shadow.labels(level).inc()
            self._audit(
                {
                    "at": now,
                    "account": state.account,
                    "from": previous,
                    "to": level,
                    "source": "detector",
                    "applied": False,
                    "reason": "shadow mode",
                    "replica": self.replica,
                    "evidence": evidence,
                },
                shared=True,
            )
            state.level, state.level_since = level, now
            return
        state.level, state.level_since = level, now
        if self.sync_enabled:
            self.out_votes[state.account] = level
        reasons = ", ".join(evidence["score"]["top_reasons"]) or "score"
        self.pending_evidence[state.account] = evidence
        try:
            self.apply(state.account, f"score {score.value:.2f}: {reasons}", "detector")
        finally:
            self.pending_evidence.pop(state.account, None)

    def vote_of(self, account: str) -> RiskLevel:
        state = self.accounts.get(account)
        return state.level if state is not None else "none"

    def apply(self, account: str, reason: str, source: str) -> None:
        """Set the account's board level to the highest vote (this replica's and the others')."""
        if self.services is None:
            return
        level: RiskLevel = self.vote_of(account)
        for vote in self.remote_votes.get(account, {}).values():
            if RANK[vote] > RANK[level]:
                level = vote
        if self.allowlisted(account):
            level = "none"
        self.services.risk.set(account, level, reason=reason, source=source)

    def allow(self, account: str, allowed: bool) -> None:
        """Add or remove an allowlist entry (shared through the store when sync is on)."""
        if allowed:
            self.allow_shared.add(account)
        else:
            self.allow_shared.discard(account)
        self.out_allow.append((account, "+" if allowed else "-"))
        state = self.accounts.get(account)
        if allowed and state is not None and state.level != "none":
            state.level, state.level_since = "none", self.clock()
            if self.sync_enabled:
                self.out_votes[account] = "none"
        self.apply(account, "allowlisted by an operator" if allowed else "removed from allowlist", "operator")

    def _on_change(self, change: RiskChange) -> None:
        entry: dict[str, Any] = {
            "at": change.at,
            "account": change.account,
            "from": change.previous,
            "to": change.level,
            "source": change.source,
            "applied": True,
            "reason": change.reason,
            "replica": self.replica,
        }
        state = self.accounts.get(change.account)
        evidence = self.pending_evidence.get(change.account)
        if evidence is None and state is not None and self.settings is not None:
            score = score_account(state, self.settings, time.monotonic(), 0.0, state.cluster)
            evidence = self.evidence_of(state, score, time.monotonic())
        if evidence is not None:
            entry["evidence"] = evidence
        self._audit(entry, shared=change.source != "sync")
        # The level gauges walk every flagged account: the sync task refreshes them each round.
        if self.metrics is not None and change.source != "sync":
            self.metrics.transitions.labels(change.previous, change.level).inc()

    def _audit(self, entry: dict[str, Any], shared: bool) -> None:
        line = _json(entry)
        self.audit.write_line(line)
        # The in-memory list of recent changes keeps the summary, not the whole evidence.
        recent = {k: v for k, v in entry.items() if k != "evidence"}
        evidence = entry.get("evidence")
        if evidence is not None:
            score = evidence.get("score") or {}
            recent["score"] = score.get("score")
            recent["top_reasons"] = score.get("top_reasons")
            recent["cluster_id"] = score.get("cluster_id")
        self.recent.append(recent)
        if shared:
            self.out_lists.append((("audit", entry["account"]), line, self.shared.audit_trail_kept))


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
