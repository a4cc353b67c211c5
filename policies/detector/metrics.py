"""The detector's metric families (no unbounded labels: levels, kinds and stages only)."""

from __future__ import annotations

from gateway.plugins import GatewayMetrics

# Per-request detector cost is tens of microseconds; the buckets resolve the 200 µs target.
COST_BUCKETS = (1e-5, 2.5e-5, 5e-5, 7.5e-5, 1e-4, 1.5e-4, 2e-4, 3e-4, 5e-4, 1e-3, 2.5e-3, 1e-2)
ANALYSIS_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SEMANTIC_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class DetectorMetrics:
    def __init__(self, metrics: GatewayMetrics) -> None:
        self.accounts = metrics.gauge(
            "risk_accounts", "Accounts at each risk level (this replica's view).", ("level",), "max"
        )
        self.transitions = metrics.counter(
            "risk_transitions_total",
            "Risk level changes decided here (detector or operator), by previous and new level.",
            ("from", "to"),
        )
        self.seconds = metrics.histogram(
            "detector_seconds",
            "Detector CPU time per request: inline (request path), analysis (background) and their total.",
            ("stage",),
            COST_BUCKETS,
        )
        # Children resolved once: labels() takes a lock and a dict lookup on every call.
        self.inline_seconds = self.seconds.labels("inline")
        self.analysis_seconds = self.seconds.labels("analysis")
        self.total_seconds = self.seconds.labels("total")
        self.clusters = metrics.gauge(
            "detector_clusters",
            "Flagged account clusters (shared campaign template or infrastructure).",
            ("kind",),
            "max",
        )
        self.tracked = metrics.gauge("detector_accounts_tracked", "Accounts with detector state.", (), "max")
        self.dropped = metrics.counter(
            "detector_dropped_total", "Observations dropped because the analysis queue was full.", ()
        )
        self.shadow = metrics.counter(
            "detector_shadow_decisions_total",
            "Level changes a shadow-mode detector would have made.",
            ("to",),
        )
        self.sync_errors = metrics.counter(
            "detector_sync_errors_total", "Failed synchronisations with the shared state store.", ()
        )
        self.semantic_prompts = metrics.counter(
            "detector_semantic_prompts_total",
            "Prompts the semantic signals embedded, skipped because their queue was full, or lost "
            "with a batch the embedding process failed to serve.",
            ("outcome",),
        )
        self.semantic_embedded = self.semantic_prompts.labels("embedded")
        self.semantic_skipped = self.semantic_prompts.labels("skipped")
        self.semantic_lost = self.semantic_prompts.labels("lost")
        self.semantic_failures = metrics.counter(
            "detector_semantic_process_failures_total",
            "Failures of the embedding process (it is restarted with backoff): exited, hung, start, "
            "protocol, interrupted (a stop gave up on it), error (a batch it refused).",
            ("reason",),
        )
        self.semantic_seconds = metrics.counter(
            "detector_semantic_seconds_total",
            "CPU time of the semantic signals (embedding, in the embedding process, and scoring).",
            (),
        )
        self.forwarded = metrics.counter(
            "detector_forwarded_total",
            "Observations forwarded between replicas (each account is analysed on its owner): sent to "
            "an owner, received from another replica, kept here (the owner's inbox refused them or "
            "the store failed), unreadable (skipped).",
            ("outcome",),
        )
        self.analysis_lag = metrics.histogram(
            "detector_analysis_lag_seconds",
            "Seconds from a response's end to its analysis done (the queue and the analysis), on the "
            "requests whose CPU time is measured: how far the detector runs behind the traffic.",
            (),
            ANALYSIS_LAG_BUCKETS,
        )
        self.semantic_lag = metrics.histogram(
            "detector_semantic_lag_seconds",
            "Seconds from a request to its semantic signals applied (queue, embedding and scoring): how "
            "far the semantic analysis runs behind the traffic.",
            (),
            SEMANTIC_LAG_BUCKETS,
        )
