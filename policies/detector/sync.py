"""Store I/O of the detector core, every ``sync_interval_seconds`` in one background task.

Always: the per-account audit trail and feature timeline are appended to capped
lists in the state store (so evidence bundles work from any replica).

When sharing is on (``shared.sync: auto`` with a Redis store, or ``on``):

* **template index**: each group this replica touched since the last round and
  that is worth sharing (seen at least twice here) pushes its deltas and pulls
  the shared totals in the same script call, and keeps pulling them for 60
  rounds after its last push; a group the totals push over the line is flagged
  here too and its local members re-evaluated. First sightings of content-bearing
  keys meet in a doorkeeper in the store (:mod:`door_share`, also in the per-account
  rounds): a key seen once on each of two replicas becomes a group as on one.
* **levels**: this replica's changed votes and allowlist changes are written;
  the whole shared state (votes of every replica, allowlist) is read back when
  its version moved. An account's level is the highest live vote; the allowlist
  is applied as the operator set it. Operator pins are not the detector's: the
  engine shares them through the state store for every policy set
  (``gateway/pins.py``), and the board's pin wins over any vote.

Early rounds: when the analysis changes what another replica's analysis needs (a campaign group
below full score changed here, first sightings wait for the doorkeeper, another replica paired a
sighting of this one) it wakes this task, which runs the doorkeeper's and those groups' part of a
round :data:`EARLY_GAP` later, not at the next tick (with owners a campaign meets only here).

Consistency: eventual, bounded by one sync interval plus one store round trip
(default ~1 s). Between rounds, each replica decides from its own view. If the
store is unreachable the detector keeps working locally and retries (counted
in ``distillguard_detector_sync_errors_total``); nothing on the request path
waits for the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from typing import TYPE_CHECKING, Any

from gateway.plugins import RISK_LEVELS, StateStore, StoreUnavailableError
from policies.detector.door_share import remember, sync_door, take_paired
from policies.detector.index import INFRA, Group
from policies.detector.store_scripts import APPEND_CAPPED, GROUP_SYNC, LEVEL_SYNC, slot_calls

if TYPE_CHECKING:
    from policies.detector.core import DetectorCore

log = logging.getLogger("distillguard.detector.sync")

_GROUPS_PER_CALL = 64
_GROUP_SHARDS = 16  # hash tags of the shared index on a cluster (spread over its masters)
_WATCH_ROUNDS = 60
_WATCH_MAX = 10_000
_LIST_TTL_SECONDS = 30 * 86_400
# After the analysis wakes the loop, how long it waits for more of the same burst: early rounds run
# at most this often (about 50 a second under a campaign; none while no group or sighting waits).
EARLY_GAP = 0.02


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SyncState:
    """What one core remembers between rounds."""

    def __init__(self) -> None:
        self.version = ""
        self.last_refresh = 0.0
        self.watch: dict[Any, int] = {}  # group key -> rounds left to re-read its shared totals


async def sync_loop(core: DetectorCore) -> None:
    """Full rounds every ``sync_interval_seconds``; in between, per-account rounds every
    ``account_sync_seconds`` (an account spread over replicas is then counted whole within that
    time; a round costs at most one call per account that had requests, so at most one per request)."""
    state = SyncState()
    next_full = time.monotonic() + core.shared.sync_interval_seconds
    while True:
        shared = core.shared
        step = shared.sync_interval_seconds
        if core.outbox.sharing and shared.share_accounts:
            step = min(step, shared.account_sync_seconds)
        deadline = time.monotonic() + max(0.0, min(step, next_full - time.monotonic()))
        while await _woken_early(core, deadline):
            try:
                await early_round(core, state)
            except Exception:
                log.exception("detector: early sync round failed")
                core.count_sync_error()
        if time.monotonic() < next_full:
            try:
                if core.outbox.sharing and core.shared.share_accounts and core.services is not None:
                    await account_round(core, state)
            except Exception:
                log.exception("detector: account sync round failed")
                if core.metrics is not None:
                    core.metrics.sync_errors.inc()
            continue
        next_full = time.monotonic() + shared.sync_interval_seconds
        try:
            await sync_once(core, state)
        except StoreUnavailableError as exc:
            log.warning("detector: state store unavailable, retrying next round: %s", exc)
            if core.metrics is not None:
                core.metrics.sync_errors.inc()
        except Exception:
            log.exception("detector: sync round failed")
            if core.metrics is not None:
                core.metrics.sync_errors.inc()
        core.update_gauges()


async def _woken_early(core: DetectorCore, deadline: float) -> bool:
    """Wait for ``deadline``; True when the analysis woke the loop before it (a campaign group changed
    here, or first sightings wait for the doorkeeper: :meth:`DetectorCore.wake_sync`), after
    :data:`EARLY_GAP` more seconds, so the sightings of the same burst go in one round."""
    left = deadline - time.monotonic()
    if left <= 0:
        return False
    wake = core.sync_wake
    try:
        async with asyncio.timeout(left):  # not wait_for: see routing.route_loop
            await wake.wait()
    except TimeoutError:
        return False
    wake.clear()
    await asyncio.sleep(min(EARLY_GAP, max(0.0, deadline - time.monotonic())))
    return True


async def early_round(core: DetectorCore, state: SyncState) -> None:
    """The doorkeeper and the campaign groups' totals, now: what another replica's analysis of the
    same campaign needs (on one replica its own index has it at once; across replicas, with each
    account on its owner, the members of one campaign meet only here). No per-account merges."""
    if core.services is None or not core.outbox.sharing:
        return
    await _sync_door(core, state)
    await _sync_hot(core, state)


async def sync_once(core: DetectorCore, state: SyncState | None = None) -> None:
    """One round (see the module docstring). ``state`` carries what the previous round saw."""
    state = state or getattr(core, "_sync_state", None) or SyncState()
    core._sync_state = state  # type: ignore[attr-defined]
    services = core.services
    if services is None:
        return
    await push_lists(core)
    if not core.outbox.sharing:
        core.outbox.take_allow()
        return
    await _sync_accounts(core)
    await _sync_door(core, state)
    core.outbox.take_hot()  # the full round pushes every touched group
    await _sync_groups(core, state)
    await _sync_levels(core, state)


async def account_round(core: DetectorCore, state: SyncState) -> None:
    """A round between full ones: the per-account merges, and the shared doorkeeper (a cluster's
    first sightings on different replicas meet within ``account_sync_seconds``)."""
    await _sync_accounts(core)
    await _sync_door(core, state)
    await _sync_hot(core, state)


async def _sync_hot(core: DetectorCore, state: SyncState) -> None:
    """Push the campaign template groups below full score that changed here and read their totals
    (:attr:`SyncOutbox.hot`, ``Analyser._share``): one replica counts a cluster's fifth account, or
    scores an account's second use against the template's whole count, at once; three would wait for
    the full round (a new member here is not in the shared count before it is pushed, and the count
    read here may be a second old)."""
    groups = [g for key in core.outbox.take_hot() if (g := core.index.get(key)) is not None and g.dirty]
    if groups:
        for group in groups:
            state.watch[group.key] = _WATCH_ROUNDS
        await _push_groups(core, groups)


def _partial_failure(core: DetectorCore, exc: Exception) -> None:
    """Count a store call of the round that failed while the others go on."""
    log.warning("detector: part of a sync round failed, retrying next round: %s", exc)
    if core.metrics is not None:
        core.metrics.sync_errors.inc()


async def _sync_accounts(core: DetectorCore) -> None:
    """Merge this replica's per-account deltas; re-evaluate the merged accounts that could change level.

    An account other replicas added to is evaluated now (not at its next request here) when the
    merge can change its level: it holds a level, its score is near the lowest threshold, its
    request count crossed ``min_requests`` or ``critical_min_requests`` (before which its own
    score does not count), or the merge changed its uses of a template whose group scores here
    (its cluster term moved). The others wait for their next request: re-scoring every merged
    account every round would cost one evaluation per request on each replica.
    """
    moved, failure = await core.share.sync(core)
    if failure is not None:  # those accounts keep their deltas for the next round
        _partial_failure(core, failure)
    settings = core.settings
    if settings is None or not moved:
        return
    near = 0.75 * settings.thresholds.elevated
    gates = (settings.hysteresis.min_requests, settings.hysteresis.critical_min_requests)
    now, mono = core.clock(), time.monotonic()
    evaluated = 0
    groups = core.index.groups
    for state, before, templates in moved:
        crossed = any(before < gate <= state.requests for gate in gates)
        if state.level == "none" and state.last_score < near and not crossed:
            scoring = False
            for key in templates:
                group = groups.get(key)
                if group is not None and group.score > 0:
                    scoring = True
                    break
            if not scoring:
                continue
        core.evaluate(state, settings, now, mono)
        evaluated += 1
        if evaluated % 64 == 0:
            await asyncio.sleep(0)  # yield between chunks of re-evaluation work


async def push_lists(core: DetectorCore) -> None:
    store = core.services.store  # type: ignore[union-attr]
    pending = core.outbox.take_lists()
    grouped: dict[tuple[str, ...], tuple[list[str], int]] = {}
    for parts, item, cap in pending:
        items, _ = grouped.setdefault(parts, ([], cap))
        items.append(item)
    failure: StoreUnavailableError | None = None
    for parts, (items, cap) in grouped.items():
        key = store.key("det", *parts)
        try:
            await store.run_script(APPEND_CAPPED, [key], [cap, int(_LIST_TTL_SECONDS * 1000), *items])
        except StoreUnavailableError as exc:
            # This list's node is unreachable (all of them, or one cluster master): keep its newest
            # items (the list keeps no more anyway) for the next round; the other lists go on.
            failure = exc
            for item in items[-cap:]:
                core.outbox.add_list_item(parts, item, cap)
    if failure is not None:
        # Nothing got through: the store is down, unless these lists all live on one lost cluster
        # master while the others answer (then the round's account merges and levels go on).
        if len(core.outbox.lists) == len(pending) and not await store.ping():
            raise failure
        _partial_failure(core, failure)


_GROUP_SUFFIXES = ("g", "gm", "gl", "gu")


def group_keys(store: StateStore, name: str, suffixes: tuple[str, ...] = _GROUP_SUFFIXES) -> list[str]:
    """The keys of a shared group (its totals, members, linked members, account count; ``gd`` its
    doorkeeper entry, door_share.py), tagged with its shard (a stable hash of its id)."""
    tag = f"det-g{zlib.crc32(name.encode()) % _GROUP_SHARDS}"
    return [store.tagged(tag, "det", suffix, name) for suffix in suffixes]


def _worth_sharing(group: Group, watch: dict[Any, int]) -> bool:
    return group.dirty and (
        group.requests >= 2 or len(group.members) >= 2 or group.kind == INFRA or group.key in watch
    )


async def _sync_door(core: DetectorCore, state: SyncState) -> None:
    """The shared doorkeeper's round (door_share.py): the groups it formed or joined here push their
    counts and read the shared totals now, and are watched like the groups this replica pushed."""
    groups, uses = await sync_door(core)
    if core.door_notices:
        paired, paired_uses = take_paired(core)
        groups, uses = groups + paired, uses + paired_uses
    if not groups:
        return
    for group in groups:
        state.watch[group.key] = _WATCH_ROUNDS
    await _push_groups(core, groups)
    remember(core, uses)


async def _sync_groups(core: DetectorCore, state: SyncState) -> None:
    touched = core.outbox.take_touched()
    watch = state.watch
    groups = [g for key in touched if (g := core.index.get(key)) is not None and _worth_sharing(g, watch)]
    # Shared groups are also re-read for a while after this replica last pushed to them (with zero
    # deltas), so a replica learns of accounts that other replicas added since.
    pushing = {g.key for g in groups}
    for key in list(state.watch):
        state.watch[key] -= 1
        group = core.index.get(key)
        if state.watch[key] <= 0 or group is None:
            del state.watch[key]
        elif key not in pushing:
            groups.append(group)
    for key in pushing:
        state.watch[key] = _WATCH_ROUNDS
    while len(state.watch) > _WATCH_MAX:
        del state.watch[next(iter(state.watch))]
    await _push_groups(core, groups)


async def _push_groups(core: DetectorCore, groups: list[Group]) -> None:
    """Push the groups' deltas and read their shared totals; rescore them and sweep what flagged."""
    store = core.services.store  # type: ignore[union-attr]
    ttl_ms = int(core.shared.group_ttl_seconds * 1000)
    # On a Redis Cluster one script call must stay in one slot: a group's four keys share the tag of
    # one of _GROUP_SHARDS shards, and the calls are batched per shard (on one node: one batch).
    firsts = [group_keys(store, group.id)[0] for group in groups] if store.clustered else [""] * len(groups)
    batches = [[groups[p] for p in call] for call in slot_calls(store, firsts, _GROUPS_PER_CALL)]
    for batch in batches:
        keys: list[str] = []
        args: list[Any] = [ttl_ms, core.shared.max_group_members]
        sent: list[tuple[float, float, list[str], list[str]]] = []
        for group in batch:
            keys.extend(group_keys(store, group.id))
            members, linked = list(group.new_members), list(group.new_linked)
            args.extend([repr(group.d_requests), repr(group.d_content), len(members), *members])
            args.extend([len(linked), *linked])
            sent.append((group.d_requests, group.d_content, members, linked))
        try:
            result = await store.run_script(GROUP_SYNC, keys, args)
        except StoreUnavailableError as exc:
            # One shard unreachable (a lost cluster master): its groups keep their deltas (they are
            # watched, so the next rounds push them), the other shards and the levels go on.
            _partial_failure(core, exc)
            continue
        settings = core.settings
        for position, group in enumerate(batch):
            d_requests, d_content, members, linked = sent[position]
            group.d_requests -= d_requests
            group.d_content -= d_content
            del group.new_members[: len(members)]
            del group.new_linked[: len(linked)]
            base = position * 4
            group.g_requests = float(_s(result[base]))
            group.g_content = float(_s(result[base + 1]))
            group.g_accounts = int(result[base + 2])
            group.g_linked = int(result[base + 3])
            if settings is not None:
                core.analysis.rescore(group, settings)
    # Yield between chunks of re-evaluation work (this is not waiting for an event).
    while core.run_sweeps():  # noqa: ASYNC110
        await asyncio.sleep(0)


async def _sync_levels(core: DetectorCore, state: SyncState) -> None:
    services = core.services
    assert services is not None
    store = services.store
    risk = services.risk
    outbox, levels = core.outbox, core.levels
    votes = outbox.take_votes()
    now = core.clock()
    if now - state.last_refresh > core.shared.vote_ttl_seconds / 2:
        # Re-write every live vote of this replica before it expires.
        state.last_refresh = now
        for account, account_state in core.accounts.items():
            if account_state.level != "none":
                votes.setdefault(account, account_state.level)
    allow = outbox.take_allow()
    args: list[Any] = [repr(now), core.replica, repr(core.shared.vote_ttl_seconds), state.version]
    args.append(len(votes))
    for account, level in votes.items():
        args.extend([account, level])
    # Operator pins are shared by the engine (gateway/pins.py) whatever the policies; a second
    # copy here could bring back a pin an operator had just removed. None are written or read.
    args.append(0)
    args.append(len(allow))
    for account, op in allow:
        args.extend([account, op])
    keys = [store.tagged("det-levels", "det", name) for name in ("votes", "pins", "allow", "version")]
    try:
        result = await store.run_script(LEVEL_SYNC, keys, args)
    except Exception:
        # Nothing was written: try these changes again next round.
        outbox.put_back(votes, allow)
        raise
    state.version = _s(result[0])
    if len(result) == 1:
        return
    live, allowed = result[1], result[3]
    remote: dict[str, dict[str, Any]] = {}
    for position in range(0, len(live), 2):
        account, _, replica = _s(live[position]).partition("\t")
        vote = _s(live[position + 1])
        if replica != core.replica and vote in RISK_LEVELS:
            remote.setdefault(account, {})[replica] = vote
    changed = set(remote) ^ set(levels.remote_votes)
    changed |= {a for a in remote if remote[a] != levels.remote_votes.get(a)}
    levels.remote_votes = remote
    levels.allow_shared = {_s(a) for a in allowed}
    for account in changed:
        levels.apply(account, "level shared by another replica", "sync")
    for account in levels.allow_shared:
        if services.risk.level(account) != "none" and risk.pinned(account) is None:
            levels.apply(account, "allowlisted", "sync")
