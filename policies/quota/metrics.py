"""The quota's metric families (names fixed for the Grafana dashboard) and its backend-health log."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import Counter

from gateway.plugins import OVERHEAD_BUCKETS, GatewayMetrics

if TYPE_CHECKING:
    from policies.quota.plan import Check

log = logging.getLogger("distillguard.policy.quota")

LOG_EVERY_SECONDS = 10.0


class QuotaMetrics:
    """``distillguard_quota_*``: decisions by tier and limit kind, tokens, backend latency and errors."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.decisions = metrics.counter(
            "quota_decisions_total",
            "Quota decisions by tier, limit kind and decision (admitted, rejected, shadow_rejected).",
            ("tier", "limit", "decision"),
        )
        self.tokens = metrics.counter(
            "quota_tokens_total",
            "Tokens reserved before forwarding, consumed after reconciliation, and refunded.",
            ("tier", "kind"),
        )
        self.backend_seconds = metrics.histogram(
            "quota_backend_seconds",
            "Time per quota script (decision or settlement) on the state backend.",
            ("backend",),
            OVERHEAD_BUCKETS,
        )
        self.backend_errors = metrics.counter(
            "quota_backend_errors_total",
            "Quota scripts that failed because the state backend was unreachable, by what was done "
            "(fail_open, fail_closed, settle).",
            ("backend", "mode"),
        )
        self._admitted: dict[tuple[str, tuple[str, ...]], list[Counter]] = {}

    def decision(self, tier: str, limit: str, decision: str) -> None:
        self.decisions.labels(tier, limit, decision).inc()

    def admitted(self, tier: str, checks: Iterable[Check]) -> None:
        self.admitted_limits(tier, tuple(check.limit for check in checks))

    def admitted_limits(self, tier: str, limits: tuple[str, ...]) -> None:
        """One admitted decision of every kind in ``limits`` (a kind counted once per decision)."""
        children = self._admitted.get((tier, limits))
        if children is None:  # a few combinations per tier (which limits a request meets)
            distinct = dict.fromkeys(limits)
            children = [self.decisions.labels(tier, limit, "admitted") for limit in distinct]
            self._admitted[(tier, limits)] = children
        for child in children:
            child.inc()


class BackendHealth:
    """One per process: logs backend failures loudly but at most every 10 s, and the recovery."""

    def __init__(self) -> None:
        self.failing_since: float | None = None
        self.suppressed = 0
        self.last_logged = 0.0

    def failed(self, backend: str, mode: str, exc: Exception) -> None:
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        if now - self.last_logged >= LOG_EVERY_SECONDS:
            more = f" ({self.suppressed} more failures since the last message)" if self.suppressed else ""
            action = {
                "fail_open": "ADMITTING requests WITHOUT quota checks (fail_open)",
                "fail_closed": "REJECTING requests with 503 (fail_closed)",
            }.get(mode, "leaving reservations charged")
            log.error("quota state backend %s unreachable: %s; %s%s", backend, exc, action, more)
            self.last_logged = now
            self.suppressed = 0
        else:
            self.suppressed += 1

    def succeeded(self, backend: str) -> None:
        if self.failing_since is not None:
            log.warning(
                "quota state backend %s is reachable again after %.1f s",
                backend,
                time.monotonic() - self.failing_since,
            )
            self.failing_since = None
            self.suppressed = 0
            self.last_logged = 0.0
