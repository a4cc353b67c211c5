"""The feature timeline: snapshots of a suspicious account's features over time, for its evidence bundle.

Only accounts above level ``none`` or with a score of 0.2 or more get points, one every
``shared.timeline_every_requests`` requests (the first one at once); each account keeps the last
``timeline_points`` in memory and the same in its capped list in the state store.
"""

from __future__ import annotations

from collections import deque

from policies.detector.audit import to_json
from policies.detector.config import SharedSettings
from policies.detector.features import AccountState
from policies.detector.outbox import SyncOutbox


class FeatureTimeline:
    """Takes feature snapshots of accounts (into their state and the sync outbox)."""

    def __init__(self, shared: SharedSettings, outbox: SyncOutbox) -> None:
        self._shared = shared
        self._outbox = outbox

    def configure(self, shared: SharedSettings) -> None:
        self._shared = shared

    def record(self, state: AccountState, mono: float) -> None:
        """Add a point for the account when it is due (called after each evaluation)."""
        shared = self._shared
        every = shared.timeline_every_requests
        if state.level == "none" and state.last_score < 0.2:
            return
        if state.requests % every and state.timeline is not None:
            return
        point = {"at": state.last_seen, "level": state.level, "score": round(state.last_score, 4)}
        point.update(state.snapshot(mono))
        if state.timeline is None:
            state.timeline = deque(maxlen=shared.timeline_points)
        state.timeline.append(point)
        self._outbox.add_list_item(("timeline", state.account), to_json(point), shared.timeline_points)
