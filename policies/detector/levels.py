"""Levels of the detector core: this replica's votes, the other replicas' votes, the allowlist.

An account's level on the engine's risk board is the highest vote of any replica
(``none`` when allowlisted); every change the board announces is audited here,
operator pins included, with the evidence behind it.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.plugins import RiskBoard, RiskChange, RiskLevel
from policies.detector.audit import AuditTrail
from policies.detector.config import DetectorConfig
from policies.detector.features import AccountState, TrackedAccounts
from policies.detector.index import TemplateIndex
from policies.detector.metrics import DetectorMetrics
from policies.detector.outbox import SyncOutbox
from policies.detector.scoring import RANK, Score, score_account
from policies.detector.views import account_evidence


class LevelVotes:
    """Decides what reaches the risk board for an account, and audits every change of it.

    Owns the allowlist (configured and operator-added), the other replicas' votes (written by
    the sync task) and the evidence of the vote being applied (so the board's change
    announcement audits it). This replica's vote is the tracked account's ``level``.
    """

    def __init__(
        self,
        replica: str,
        accounts: TrackedAccounts,
        index: TemplateIndex,
        audit: AuditTrail,
        outbox: SyncOutbox,
    ) -> None:
        self.replica = replica
        self.allow_config: set[str] = set()
        self.allow_shared: set[str] = set()  # operator-added (shared through the store)
        self.remote_votes: dict[str, dict[str, RiskLevel]] = {}  # account -> replica -> level
        self._pending_evidence: dict[str, dict[str, Any]] = {}
        self._accounts = accounts
        self._index = index
        self._audit = audit
        self._outbox = outbox
        self._settings: DetectorConfig | None = None
        self._risk: RiskBoard | None = None
        self._metrics: DetectorMetrics | None = None

    def configure(self, settings: DetectorConfig, risk: RiskBoard, metrics: DetectorMetrics | None) -> None:
        """Take the settings, risk board and metrics of a new configuration."""
        self._settings = settings
        self._risk = risk
        self._metrics = metrics
        self.allow_config = set(settings.shared.allowlist)

    def allowlisted(self, account: str) -> bool:
        return account in self.allow_config or account in self.allow_shared

    def vote(
        self, state: AccountState, level: RiskLevel, score: Score, now: float, mono: float, shadow: bool
    ) -> None:
        """Change this replica's vote for the account (audited only, in shadow mode) and apply it."""
        previous = state.level
        evidence = account_evidence(self._index, state, score, mono)
        if shadow:
            if self._metrics is not None:
                self._metrics.shadow.labels(level).inc()
            self._audit.record(
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
        if self._outbox.sharing:
            self._outbox.votes[state.account] = level
        reasons = ", ".join(evidence["score"]["top_reasons"]) or "score"
        self._pending_evidence[state.account] = evidence
        try:
            self.apply(state.account, f"score {score.value:.2f}: {reasons}", "detector")
        finally:
            self._pending_evidence.pop(state.account, None)

    def vote_of(self, account: str) -> RiskLevel:
        """This replica's vote for the account."""
        state = self._accounts.get(account)
        return state.level if state is not None else "none"

    def apply(self, account: str, reason: str, source: str) -> None:
        """Set the account's board level to the highest vote (this replica's and the others')."""
        if self._risk is None:
            return
        level: RiskLevel = self.vote_of(account)
        for vote in self.remote_votes.get(account, {}).values():
            if RANK[vote] > RANK[level]:
                level = vote
        if self.allowlisted(account):
            level = "none"
        self._risk.set(account, level, reason=reason, source=source)

    def allow(self, account: str, allowed: bool, now: float) -> None:
        """Add or remove an operator allowlist entry (shared through the store when sync is on)."""
        if allowed:
            self.allow_shared.add(account)
        else:
            self.allow_shared.discard(account)
        self._outbox.allow.append((account, "+" if allowed else "-"))
        state = self._accounts.get(account)
        if allowed and state is not None and state.level != "none":
            state.level, state.level_since = "none", now
            if self._outbox.sharing:
                self._outbox.votes[account] = "none"
        self.apply(account, "allowlisted by an operator" if allowed else "removed from allowlist", "operator")

    def on_change(self, change: RiskChange) -> None:
        """Audit a change the risk board announces (with the evidence: the vote's, or computed now)."""
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
        state = self._accounts.get(change.account)
        evidence = self._pending_evidence.get(change.account)
        if evidence is None and state is not None and self._settings is not None:
            score = score_account(state, self._settings, time.monotonic(), 0.0, state.cluster)
            evidence = account_evidence(self._index, state, score, time.monotonic())
        if evidence is not None:
            entry["evidence"] = evidence
        self._audit.record(entry, shared=change.source != "sync")
        # The level gauges walk every flagged account: the sync task refreshes them each round.
        if self._metrics is not None and change.source != "sync":
            self._metrics.transitions.labels(change.previous, change.level).inc()
