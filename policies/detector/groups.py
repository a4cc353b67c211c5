"""The template index's groups as the analysis uses them: rescoring, the sync marks, the sweep
queue, an account's uses of shared templates and its cluster term (:class:`GroupBook`).

:class:`~policies.detector.analysis.Analyser` binds these methods as its own: its
:meth:`~policies.detector.analysis.Analyser.process` calls them for every observation, and the sync,
the doorkeeper, the semantic signals and the views call them through it.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any

from policies.detector.config import DetectorConfig
from policies.detector.features import MAX_TEMPLATES, AccountState
from policies.detector.index import INFRA, TEMPLATE, Group, TemplateIndex, group_score
from policies.detector.outbox import SyncOutbox

log = logging.getLogger("distillguard.detector")

SWEEP_STEP = 0.1  # a flagged group's score rise at which its members are re-evaluated again

# (key of a newly flagged group, its members then): members the core re-evaluates
Sweep = tuple[Any, list[str]]


class GroupBook:
    """Rescores groups, marks them for the sync, queues sweeps of flagged groups' members, counts an
    account's template uses and reads its cluster term. Handed the template index, the sync outbox
    and the core's sweep queue."""

    def __init__(self, index: TemplateIndex, outbox: SyncOutbox, sweeps: deque[Sweep]) -> None:
        self._index = index
        self._outbox = outbox
        self._sweeps = sweeps

    def maybe_rescore(self, group: Group, seen: bool, settings: DetectorConfig) -> None:
        """Rescore a group when it gains a member, else every 8th request (its mean moves slowly)."""
        if not seen or int(group.requests) % 8 == 0:
            self.rescore(group, settings)
        elif self._outbox.sharing:
            self.share(group, settings.cluster)

    def share(self, group: Group, cluster: Any) -> None:
        """Mark a group for the next full sync round; for the next account round too (0.1 s, not
        1 s: sync.py) when it is a campaign's content, used by two accounts or more, below full
        score: the shared count it reads there may have grown (an account's uses read it)."""
        outbox = self._outbox
        outbox.touched.add(group.key)
        if (
            group.dirty
            and group.score < 1.0
            and group.kind != INFRA
            and group.accounts >= 2
            and group.content_mean >= cluster.content_threshold
        ):
            outbox.hot.add(group.key)

    def remember_template(self, state: AccountState, group: Group, extraction: float) -> None:
        """Count the account's use of a shared group, and the extraction score of that use."""
        templates = state.templates
        entry = templates.get(group.key)
        if entry is not None:
            entry[0] += 1.0
            entry[1] += extraction
            return
        if len(group.members) < 2 and extraction < 0.5:
            return  # the account's own template: no cluster can come of it yet
        if len(templates) >= MAX_TEMPLATES:
            if group.score <= 0 and extraction < 0.5:
                return  # nothing telling: keep what is remembered
            # Forget the template with the lowest own extraction score (a cheap ordering: no index
            # lookups), unless it belongs to a scoring group and the newcomer is no more telling.
            # (The first of equals, as min() would; a plain loop costs a third of min() with a key.)
            weakest: int | None = None
            lowest = math.inf
            for key, (uses, total) in templates.items():
                if total / uses < lowest:
                    weakest, lowest = key, total / uses
            if group.score <= 0 and lowest >= extraction:
                return
            assert weakest is not None  # the templates are full, and their means finite
            known = self._index.get(weakest)
            if known is not None and known.score > group.score and lowest >= extraction:
                return
            del templates[weakest]
        templates[group.key] = [1.0, extraction]

    def use_template(
        self, state: AccountState, key: int, extraction: float, now: float, settings: DetectorConfig
    ) -> None:
        """Count one use of a template key found outside :meth:`process` (the semantic signals' keys)."""
        group, seen = self._index.touch(key, TEMPLATE, state.account, extraction, now)
        if group is None:
            return
        self.maybe_rescore(group, seen, settings)
        self.remember_template(state, group, extraction)

    def rescore(self, group: Group, settings: DetectorConfig) -> None:
        """Score a group again; one that becomes flagged, or whose flagged score rose by
        :data:`SWEEP_STEP` or past a level's threshold, goes on the sweep queue (its members'
        cluster terms changed)."""
        was = group.flagged
        cluster = settings.cluster
        pooled = None
        if group.kind == INFRA and cluster.infra_pooling:
            pooled = self._index.pooled_share(group, cluster)
        score = group_score(group, cluster, pooled)
        group.flagged = score >= cluster.flag_score and score > 0
        if self._outbox.sharing:
            self.share(group, cluster)
        if group.flagged and (not was or _risen(group.swept, score, settings)):
            # A raise waits for no member's next request (a hydra member sends one in hundreds).
            group.swept = score
            self._sweeps.append((group.key, list(group.members)))
            if not was:
                log.info("detector: cluster %s flagged (%d accounts)", group.id, group.accounts)

    def link(self, group: Group, account: str, settings: DetectorConfig) -> None:
        """Count ``account`` as linked in an infra group; rescore it and its family (pooled share moved)."""
        self._index.link(group, account)
        self.rescore(group, settings)
        if settings.cluster.infra_pooling:
            for sibling in self._index.family(group, settings.cluster):
                if sibling is not group:
                    self.rescore(sibling, settings)

    def cluster_term(self, state: AccountState, settings: DetectorConfig) -> tuple[float, str | None]:
        """The best group score of the account and its group id.

        A campaign template counts only when the account's own requests on it were extraction
        requests (mean score >= ``member_extraction``), and half when it used it once: sharing a
        benchmark-like question with a campaign is not membership.
        """
        best, best_group = 0.0, None
        flag = settings.cluster.flag_score
        own_floor = settings.cluster.member_extraction
        linked = False
        index = self._index
        get = index.groups.get
        for key, (uses, extraction) in state.templates.items():
            group = get(key)
            if group is None or group.score <= 0 or extraction / uses < own_floor:
                # A shared template ties an account to a campaign only through its own extraction use.
                continue
            if group.score >= flag:
                linked = True
            value = group.score if uses >= 2 else group.score * 0.5
            if value > best:
                best, best_group = value, group
        if linked and not state.linked:
            state.linked = True
            for infra_key in state.infra:
                infra = get(infra_key)
                if infra is not None:
                    self.link(infra, state.account, settings)
        for infra_key in state.infra:
            group = get(infra_key)
            if group is not None and group.score > best:
                best, best_group = group.score, group
        return best, (best_group.id if best_group is not None else None)


def _risen(swept: float, score: float, settings: DetectorConfig) -> bool:
    """Whether a group's score rose enough since its members were last re-evaluated to raise them."""
    if score >= swept + SWEEP_STEP:
        return True
    weight = settings.weights.cluster
    if score <= swept or weight <= 0:
        return False
    t = settings.thresholds
    # A member with no score of its own is raised when w_cluster x score reaches a threshold.
    return any(swept < level / weight <= score for level in (t.elevated, t.high, t.critical))
