"""What the detector core has to write to the state store: the outbox the sync task drains each round.

Analysis, the level votes, the audit trail and the feature timeline fill it on
the event loop; the sync task (:mod:`policies.detector.sync`) takes its
contents every round, so nothing on the analysis path waits for the store.
"""

from __future__ import annotations

from typing import Any

from gateway.plugins import RiskLevel

# (key parts under "det", serialised JSON item, how many items the list keeps)
ListItem = tuple[tuple[str, ...], str, int]


class SyncOutbox:
    """Pending store writes: capped lists (always), group deltas, votes and allowlist changes (when shared).

    ``sharing`` says whether the index, the votes and the allowlist are shared with other
    replicas (``shared.sync``); when it is off, only ``lists`` is written.
    """

    def __init__(self) -> None:
        self.sharing = False
        self.lists: list[ListItem] = []
        self.votes: dict[str, RiskLevel] = {}  # account -> this replica's new vote
        self.allow: list[tuple[str, str]] = []  # (account, "+" or "-"), in order
        self.touched: set[Any] = set()  # keys of index groups changed since the last round
        # keys of campaign template groups below full score changed here: pushed in the account rounds
        self.hot: set[Any] = set()

    def add_list_item(self, parts: tuple[str, ...], item: str, cap: int) -> None:
        """Append ``item`` to the store list ``det:<parts>`` (which keeps the last ``cap`` items)."""
        self.lists.append((parts, item, cap))

    def take_lists(self) -> list[ListItem]:
        taken, self.lists = self.lists, []
        return taken

    def take_touched(self) -> set[Any]:
        taken, self.touched = self.touched, set()
        return taken

    def take_hot(self) -> set[Any]:
        taken, self.hot = self.hot, set()
        return taken

    def take_votes(self) -> dict[str, RiskLevel]:
        taken, self.votes = self.votes, {}
        return taken

    def take_allow(self) -> list[tuple[str, str]]:
        taken, self.allow = self.allow, []
        return taken

    def put_back(self, votes: dict[str, RiskLevel], allow: list[tuple[str, str]]) -> None:
        """Queue again what a failed round took (what was queued since is newer and wins)."""
        self.votes = {**votes, **self.votes}
        self.allow = allow + self.allow
