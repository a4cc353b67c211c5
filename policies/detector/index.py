"""The cross-account index: which accounts share a template, a system prompt or a client setup.

Three kinds of *group*, each keyed by one value:

* ``template``: a MinHash band key of the last user turn (near-duplicate prompts share one);
* ``system``: the normalised system prompt;
* ``infra``: the client's user agent and header shape together with its IP /24 (or /48).

A key seen once is held in a cheap *doorkeeper* entry (which account); the
second sighting promotes it to a group with members, request count and the
sum of the requests' extraction scores. Both maps are LRU-bounded by
``max_templates``; members per group by ``max_group_members`` (beyond that
only the count grows). With a shared store the local numbers are the deltas
this replica pushes and the ``g_*`` numbers the totals it pulled back.

Scores (0 to 1): a template or system group scores when at least
``min_accounts`` accounts use it *and* the mean extraction score of its
requests (chain-of-thought or rubric demands) reaches ``content_threshold``;
the score then grows with the number of accounts. An infra group scores by the
share of its members that are *linked* (have used a campaign template): a
corporate NAT full of ordinary users scores 0, a proxy pool of a hydra scores 1.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from policies.detector.fingerprint import key_hex

TEMPLATE = "template"
SYSTEM = "system"
INFRA = "infra"


class Group:
    __slots__ = (
        "content",
        "d_content",
        "d_requests",
        "extra_members",
        "first_seen",
        "flagged",
        "g_accounts",
        "g_content",
        "g_linked",
        "g_requests",
        "key",
        "kind",
        "last_seen",
        "linked",
        "members",
        "new_linked",
        "new_members",
        "requests",
        "score",
    )

    def __init__(self, key: Any, kind: str, now: float) -> None:
        self.key = key
        self.kind = kind
        self.members: dict[str, int] = {}
        self.extra_members = 0
        self.linked: set[str] = set()
        self.requests = 0.0
        self.content = 0.0
        self.first_seen = now
        self.last_seen = now
        self.g_accounts = 0
        self.g_requests = 0.0
        self.g_content = 0.0
        self.g_linked = 0
        self.d_requests = 0.0
        self.d_content = 0.0
        self.new_members: list[str] = []
        self.new_linked: list[str] = []
        self.flagged = False
        self.score = 0.0

    @property
    def id(self) -> str:
        if self.kind == INFRA:
            return f"infra:{self.key}"
        prefix = "system" if self.kind == SYSTEM else "template"
        return f"{prefix}:{key_hex(self.key)}"

    @property
    def accounts(self) -> int:
        return max(len(self.members) + self.extra_members, self.g_accounts)

    @property
    def total_requests(self) -> float:
        return max(self.requests, self.g_requests)

    @property
    def content_mean(self) -> float:
        if self.g_requests > self.requests:
            return self.g_content / self.g_requests if self.g_requests else 0.0
        return self.content / self.requests if self.requests else 0.0

    @property
    def linked_count(self) -> int:
        return max(len(self.linked), self.g_linked)

    @property
    def dirty(self) -> bool:
        return bool(self.d_requests or self.new_members or self.new_linked)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "accounts": self.accounts,
            "requests": int(self.total_requests),
            "score": round(self.score, 4),
            "flagged": self.flagged,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }
        if self.kind == INFRA:
            out["linked_accounts"] = self.linked_count
            out["client_key"], _, out["network"] = str(self.key).partition("|")
        else:
            out["extraction_mean"] = round(self.content_mean, 4)
        return out


class TemplateIndex:
    """The bounded local index; see the module docstring."""

    def __init__(self, max_groups: int, max_members: int) -> None:
        self.max_groups = max_groups
        self.max_members = max_members
        self.track_deltas = False  # only when a store shares the index (else the lists would grow)
        self._door: OrderedDict[Any, str] = OrderedDict()
        self.groups: OrderedDict[Any, Group] = OrderedDict()

    def __len__(self) -> int:
        return len(self.groups)

    def get(self, key: Any) -> Group | None:
        return self.groups.get(key)

    def find(self, group_id: str) -> Group | None:
        """A group by its public id (``template:<hex>``, ``system:<hex>``, ``infra:<key>``)."""
        kind, _, raw = group_id.partition(":")
        if kind == INFRA:
            return self.groups.get(raw)
        try:
            return self.groups.get(int(raw, 16))
        except ValueError:
            return None

    def touch(
        self, key: Any, kind: str, account: str, extraction: float, now: float
    ) -> tuple[Group | None, bool]:
        """Count one use of ``key`` by ``account``.

        Returns its group (None while the key has been seen once) and whether the account used it before.
        """
        groups = self.groups
        group = groups.get(key)
        if group is None:
            first = self._door.get(key)
            if first is None:
                self._door[key] = account
                if len(self._door) > self.max_groups:
                    self._door.popitem(last=False)
                return None, False
            del self._door[key]
            group = Group(key, kind, now)
            self._add_member(group, first)
            # The first sighting's extraction score is not known; this one stands in for it.
            group.requests = 1.0
            group.content = extraction
            if self.track_deltas:
                group.d_requests, group.d_content = 1.0, extraction
            groups[key] = group
            if len(groups) > self.max_groups:
                groups.popitem(last=False)
            seen = first == account
        else:
            groups.move_to_end(key)
            seen = account in group.members
        if not seen:
            self._add_member(group, account)
        else:
            group.members[account] += 1
        group.requests += 1.0
        group.content += extraction
        if self.track_deltas:
            group.d_requests += 1.0
            group.d_content += extraction
        group.last_seen = now
        return group, seen

    def _add_member(self, group: Group, account: str) -> None:
        if account in group.members:
            return
        if len(group.members) < self.max_members:
            group.members[account] = 1
        else:
            group.extra_members += 1
        if self.track_deltas:
            group.new_members.append(account)

    def link(self, group: Group, account: str) -> None:
        if account not in group.linked:
            group.linked.add(account)
            if self.track_deltas:
                group.new_linked.append(account)


def group_score(group: Group, cluster: Any) -> float:
    """The group's score under the ``cluster`` settings (also stored on the group)."""
    if group.kind == INFRA:
        accounts, linked = group.accounts, group.linked_count
        if accounts < cluster.infra_min_accounts or linked < cluster.infra_min_linked:
            score = 0.0
        else:
            score = min(1.0, (linked / accounts) / cluster.infra_linked_fraction)
    else:
        accounts = group.accounts
        content = group.content_mean
        if accounts < cluster.min_accounts or content < cluster.content_threshold:
            score = 0.0
        else:
            score = min(1.0, accounts / (2.0 * cluster.min_accounts))
    group.score = score
    return score
