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
this replica pushes and the ``g_*`` numbers the totals it pulled back, and the
first sightings of content-bearing keys also meet in a doorkeeper shared through
the store (:mod:`door_share`), so a key seen once on each of two replicas becomes
a group as on one.

Scores (0 to 1): a template or system group scores when at least
``min_accounts`` accounts use it *and* the mean extraction score of its
requests (chain-of-thought or rubric demands) reaches ``content_threshold``;
the score then grows with the number of accounts. An infra group scores by the
share of its members that are *linked* (have used a campaign template): a
corporate NAT full of ordinary users scores 0, a proxy pool of a hydra scores 1.

**Pooling across a proxy pool.** A hydra spreads its accounts over several networks with one
client setup; each network's group sees only its own few linked members, so at a low extraction
rate the groups cross the linked fraction one by one, far apart (a group of 37 members needs 6
links). Infra groups that are each *implicated* (``infra_min_accounts`` members, of which
``infra_min_linked`` linked) and share the client key form a *family*; a group reads the family's
pooled linked share when its own count is consistent with it (one-sided binomial test: at least
:data:`CONSISTENT` probability, divided by the number of groups in the family, of seeing as few links
among its members at the pooled rate; the share is pooled again without the groups that fail the
test). A group whose count is far below its
siblings' rate (an office behind a NAT with three linked accounts, beside a proxy pool that uses
the same SDK) keeps its own share, and does not dilute the pool's.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from policies.detector.fingerprint import key_hex

TEMPLATE = "template"
SYSTEM = "system"
INFRA = "infra"
CONSISTENT = 0.1  # family-wise binomial tail below which a group's linked count is not its family's rate
# With a shared store, a template or system key's first sighting from this extraction score on is
# also offered to the shared doorkeeper (door_share.py): the semantic keys' floor (KEY_FLOOR).
DOOR_FLOOR = 0.3
MAX_DOOR_OPS = 8192  # per sync round; past it first sightings wait for a second one here, as before


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
        "swept",
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
        self.swept = 0.0  # the score at which its members were last re-evaluated together

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
        # With a shared store: first sightings (account) and new groups (None) of content-bearing template
        # and system keys for the shared doorkeeper (door_share.py): (key, kind, account, extraction)
        self.door_ops: list[tuple[Any, str, str | None, float]] = []
        self.groups: OrderedDict[Any, Group] = OrderedDict()
        # client key -> keys of its implicated infra groups (see the module docstring)
        self.families: dict[str, set[str]] = {}

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
                if self.track_deltas and extraction >= DOOR_FLOOR and kind != INFRA:
                    self._door_op(key, kind, account, extraction)
                return None, False
            del self._door[key]
            if self.track_deltas and extraction >= DOOR_FLOOR and kind != INFRA:
                self._door_op(key, kind, None, extraction)
            group = Group(key, kind, now)
            self._add_member(group, first)
            # The first sighting's extraction score is not known; this one stands in for it.
            group.requests = 1.0
            group.content = extraction
            if self.track_deltas:
                group.d_requests, group.d_content = 1.0, extraction
            groups[key] = group
            if len(groups) > self.max_groups:
                _, evicted = groups.popitem(last=False)
                if evicted.kind == INFRA and self.families:
                    self._forget(evicted)
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

    def _door_op(self, key: Any, kind: str, account: str | None, extraction: float) -> None:
        if len(self.door_ops) < MAX_DOOR_OPS:
            self.door_ops.append((key, kind, account, extraction))

    def add_sightings(self, key: Any, kind: str, sightings: list[tuple[str, float]], now: float) -> Group:
        """Count uses of ``key`` no group here has counted (first sightings the shared doorkeeper
        paired, door_share.py); the key becomes a group here if it was not one."""
        groups = self.groups
        group = groups.get(key)
        if group is None:
            self._door.pop(key, None)  # this replica's first sighting, if any, is among ``sightings``
            group = groups[key] = Group(key, kind, now)
            if len(groups) > self.max_groups:
                _, evicted = groups.popitem(last=False)
                if evicted.kind == INFRA and self.families:
                    self._forget(evicted)
        else:
            groups.move_to_end(key)
        for account, extraction in sightings:
            if account in group.members:
                group.members[account] += 1
            else:
                self._add_member(group, account)
            group.requests += 1.0
            group.content += extraction
            if self.track_deltas:
                group.d_requests += 1.0
                group.d_content += extraction
        group.last_seen = max(group.last_seen, now)
        return group

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

    def family(self, group: Group, cluster: Any) -> list[Group]:
        """The implicated infra groups sharing ``group``'s client key (itself included when implicated).

        Registers or drops ``group`` in its family as its counts now say; forgets evicted siblings.
        """
        client = str(group.key).partition("|")[0]
        keys = self.families.get(client)
        if implicated(group, cluster):
            if keys is None:
                keys = self.families[client] = set()
            keys.add(group.key)
        elif keys is not None:
            keys.discard(group.key)
        if not keys:
            self.families.pop(client, None)
            return []
        members = []
        for key in list(keys):
            sibling = self.groups.get(key)
            if sibling is None:
                keys.discard(key)
            else:
                members.append(sibling)
        return members

    def _forget(self, group: Group) -> None:
        """Drop an evicted infra group from its family (the families stay bounded by the groups)."""
        client = str(group.key).partition("|")[0]
        keys = self.families.get(client)
        if keys is not None:
            keys.discard(group.key)
            if not keys:
                del self.families[client]

    def pooled_share(self, group: Group, cluster: Any) -> float | None:
        """The linked share of ``group``'s family when it has siblings and the group fits its rate."""
        family = self.family(group, cluster)
        if len(family) < 2 or group not in family:
            return None
        share = _share(family)
        # Family-wise: the least linked of m groups of one pool is at the low tail by chance alone.
        tail = CONSISTENT / len(family)
        # Once more without the groups whose counts do not fit that rate (an office beside the pool).
        fitting = [member for member in family if _fits(member, share, tail)]
        if len(fitting) < 2 or group not in fitting:
            return None
        share = _share(fitting)
        return share if _fits(group, share, tail) else None


def _share(groups: list[Group]) -> float:
    linked = accounts = 0
    for group in groups:
        linked += group.linked_count
        accounts += group.accounts
    return linked / accounts


def _fits(group: Group, share: float, tail: float) -> bool:
    """Whether the group's linked count is consistent with ``share`` (or above it)."""
    linked, accounts = group.linked_count, group.accounts
    return linked >= share * accounts or binomial_tail(linked, accounts, share) >= tail


def implicated(group: Group, cluster: Any) -> bool:
    """Whether an infra group has the members and linked members to score at all."""
    return group.accounts >= cluster.infra_min_accounts and group.linked_count >= cluster.infra_min_linked


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p).

    Summed from the k-th term down by the terms' ratio (log space: no underflow at large n); below
    the mean the terms shrink geometrically, so the sum stops after a few dozen of them whatever n.
    """
    if p <= 0.0 or k >= n:
        return 1.0
    if p >= 1.0 or k < 0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    term = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q
    inverse_odds = log_q - log_p
    mean = n * p
    total = 0.0
    for i in range(k, -1, -1):
        value = math.exp(term)
        total += value
        if i < mean and value < total * 1e-15:
            break
        if i:
            term += math.log(i / (n - i + 1)) + inverse_odds
    return min(1.0, total)


def group_score(group: Group, cluster: Any, pooled: float | None = None) -> float:
    """The group's score under the ``cluster`` settings (also stored on the group).

    ``pooled``: for an infra group, its family's linked share (:meth:`TemplateIndex.pooled_share`).
    """
    if group.kind == INFRA:
        accounts, linked = group.accounts, group.linked_count
        if accounts < cluster.infra_min_accounts or linked < cluster.infra_min_linked:
            score = 0.0
        else:
            share = linked / accounts
            if pooled is not None and pooled > share:
                share = pooled
            score = min(1.0, share / cluster.infra_linked_fraction)
    else:
        accounts = group.accounts
        content = group.content_mean
        if accounts < cluster.min_accounts or content < cluster.content_threshold:
            score = 0.0
        else:
            score = min(1.0, accounts / (2.0 * cluster.min_accounts))
    group.score = score
    return score
