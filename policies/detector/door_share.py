"""The doorkeeper of the template index shared across replicas: first sightings meet in the store.

A template or system key becomes a group at its second sighting (:class:`~index.TemplateIndex`);
the first one only leaves a doorkeeper entry. Each replica has its own doorkeeper, so behind a
round-robin balancer a key seen once on each of N replicas is a group nowhere, and a cross-account
cluster (a campaign's MinHash or semantic keys) formed only once one replica had seen a key twice:
about N times as many sightings as on one replica, then a sync round for the totals.

With a shared store each replica also offers, in every round, the first sightings of keys whose
extraction score reaches :data:`~index.DOOR_FLOOR` (replica, extraction score, account) and the keys
it just made groups, to one doorkeeper entry per key in the store (``DOOR_SYNC``, in the group's
shard: same hash slot as its shared totals). The script answers each with what it held:

* nothing: a first sighting is stored there (it waits for a second one on any replica);
* another sighting: the two make the key a group on this replica, both counted (the entry is
  replaced by ``*``): on one replica the second sighting does the same;
* ``*``: the key is a group in the shared index already; a first sighting here joins it.

A group formed or joined this way pushes its counts and reads the shared totals in the same round,
and is re-read with the other watched groups after. The accounts of the paired sightings count the
use among their templates (shared with their features, :mod:`account_share`). With owners
(:mod:`routing`), the replica that held a sighting another replica paired is told through its
inbox and counts the use then (:func:`take_paired`): the campaign's first account reads the
cluster at once, as on one replica. Without them it does not learn of it: if its own second
sighting later makes the key a group here, its first one is counted again (at most one request per
replica and group, whose extraction score the second sighting stands in for, as on one replica).

Cost: only content-bearing first sightings and new groups, at most :data:`~index.MAX_DOOR_OPS` per
round; two commands each (GET, SET with expiry ``door_ttl_seconds``), one script call per shard
batch. An entry is one short string in the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.plugins import MemoryLike, Script, StoreUnavailableError
from policies.detector.features import AccountState
from policies.detector.fingerprint import key_hex
from policies.detector.index import Group
from policies.detector.store_scripts import slot_calls

if TYPE_CHECKING:
    from policies.detector.core import DetectorCore

log = logging.getLogger("distillguard.detector.sync")

GROUP_MARK = "*"  # the entry of a key that is a group in the shared index
_PER_CALL = 256

# KEYS: one doorkeeper entry per key. ARGV: ttl_ms, then per key a first sighting
# ("replica\textraction\taccount") or "*" (this replica made the key a group). Returns per key
# what the entry held ('' for nothing).
_DOOR_LUA = """
local ttl = ARGV[1]
local out = {}
for i = 1, #KEYS do
  local prev = redis.call('GET', KEYS[i])
  local v = ARGV[i + 1]
  if prev or v == '*' then v = '*' end
  redis.call('SET', KEYS[i], v, 'PX', ttl)
  out[i] = prev or ''
end
return out
"""


def _door_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> list[str]:
    now = time.time()
    ttl = float(args[0]) / 1000.0
    out: list[str] = []
    for key, raw in zip(keys, args[1:], strict=True):
        value = raw.decode() if isinstance(raw, bytes) else str(raw)
        prev = store.get_value(key, now)
        store.set_value(key, GROUP_MARK if prev is not None or value == GROUP_MARK else value, ttl, now)
        out.append("" if prev is None else str(prev))
    return out


DOOR_SYNC = Script("detector_door_sync", _DOOR_LUA, _door_local)


def entry(replica: str, account: str, extraction: float) -> str:
    return f"{replica}\t{extraction!r}\t{account}"


def parse(value: Any) -> tuple[str, str, float] | None:
    """(replica, account, extraction) of a stored first sighting; None for ``*`` or nothing."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    replica, _, rest = text.partition("\t")
    score, _, account = rest.partition("\t")
    try:
        extraction = float(score)
    except ValueError:
        return None
    if not account or not 0.0 <= extraction <= 1.0:
        return None
    return replica, account, extraction


Use = tuple[str, Group, float]  # an account's paired sighting: account, group, extraction score


async def sync_door(core: DetectorCore) -> tuple[list[Group], list[Use]]:
    """Offer this round's first sightings and new groups to the shared doorkeeper; count the paired
    sightings in the index. Returns the groups that changed (the caller pushes them and reads their
    totals) and the accounts' uses, which :func:`remember` counts once the totals are in."""
    index = core.index
    ops, index.door_ops = index.door_ops, []
    if not ops:
        return [], []
    from policies.detector.sync import group_keys

    store = core.services.store  # type: ignore[union-attr]
    replica, router = core.replica, core.router
    keys = [group_keys(store, f"{kind}:{key_hex(key)}", ("gd",))[0] for key, kind, *_ in ops]
    calls = slot_calls(store, keys, _PER_CALL)
    ttl_ms = int(core.shared.door_ttl_seconds * 1000)
    batches = []
    for positions in calls:
        args: list[Any] = [ttl_ms]
        for position in positions:
            _, _, account, extraction = ops[position]
            args.append(GROUP_MARK if account is None else entry(replica, account, extraction))
        batches.append(([keys[p] for p in positions], args))
    results = await store.run_scripts(DOOR_SYNC, batches)  # one round trip (per node)
    now = core.clock()
    changed: dict[Any, Group] = {}
    uses: list[Use] = []
    failure: StoreUnavailableError | None = None
    for positions, result in zip(calls, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, StoreUnavailableError):
                raise result
            failure = result  # these keys become groups at a second sighting on one replica, as before
            continue
        for position, raw in zip(positions, result, strict=True):
            key, kind, account, extraction = ops[position]
            held = raw.decode() if isinstance(raw, bytes) else str(raw)
            other = parse(held) if held and held != GROUP_MARK else None
            sightings: list[tuple[str, float]] = []
            if other is not None and (account is not None or other[0] != replica):
                sightings.append((other[1], other[2]))  # a first sighting no group has counted
                if other[0] != replica and router.active and core.accounts.get(other[1]) is None:
                    # Its replica (the account's owner) learns of the pairing now, not at the
                    # account's next use of the key (take_paired, there).
                    router.notify(other[0], ["pair", kind, key, other[1], other[2]])
            if account is not None and index.get(key) is None and (other is not None or held == GROUP_MARK):
                sightings.append((account, extraction))  # this replica's, in its own doorkeeper
            if not sightings:
                if account is None and held == GROUP_MARK and (local := index.get(key)) is not None:
                    changed[key] = local  # a new group here that is shared already: read its totals now
                continue
            group = index.add_sightings(key, kind, sightings, now)
            changed[key] = group
            uses.extend((name, group, score) for name, score in sightings)
    if failure is not None:
        log.warning("detector: shared doorkeeper unavailable this round: %s", failure)
        if core.metrics is not None:
            core.metrics.sync_errors.inc()
    return list(changed.values()), uses


MAX_NOTICES = 10_000  # paired sightings waiting for the next sync round


def notice(core: DetectorCore, values: list[Any]) -> None:
    """Another replica paired a first sighting this replica offered (``["pair", kind, key, account,
    extraction]`` from this replica's inbox): counted in the next sync round, which it wakes.
    Raises ``ValueError`` or ``TypeError`` on a malformed notice."""
    _, kind, key, account, extraction = values
    if len(core.door_notices) < MAX_NOTICES:
        core.door_notices.append((str(kind), int(key), str(account), float(extraction)))
        core.sync_wake.set()


def take_paired(core: DetectorCore) -> tuple[list[Group], list[Use]]:
    """This replica's first sightings that another replica paired (its notices, through this
    replica's inbox: routing.py), counted here as that replica did: the key becomes a group here
    with the sighting as its use, and the account's evaluation reads the cluster, as on one replica
    where the second sighting's group sweeps its members. The shared totals counted the sighting
    already (the other replica pushed both), so none of it is pushed again. A key that is a group
    here already counted the sighting itself (its second sighting here counts the first)."""
    notices, core.door_notices = core.door_notices, []
    index, now = core.index, core.clock()
    changed: dict[Any, Group] = {}
    uses: list[Use] = []
    for kind, key, account, extraction in notices:
        if core.accounts.get(account) is None or (index.get(key) is not None and key not in changed):
            continue
        group = index.add_sightings(key, kind, [(account, extraction)], now)
        if index.track_deltas:
            group.d_requests -= 1.0
            group.d_content -= extraction
        changed[key] = group
        uses.append((account, group, extraction))
    return list(changed.values()), uses


def remember(core: DetectorCore, uses: list[Use]) -> None:
    """Count the paired sightings among their accounts' template uses (call once the groups' totals
    are read), and re-evaluate the accounts whose group scores."""
    settings = core.settings
    if not uses or settings is None:
        return
    analysis = core.analysis
    share = core.share if core.outbox.sharing and core.shared.share_accounts else None
    scoring: dict[str, AccountState] = {}
    for account, group, extraction in uses:
        state = core.accounts.get(account)
        if state is None:
            continue  # not seen here: its own replica counts the use once the key is a group there
        if share is not None:
            share.note(state)  # the use travels with the account's features in the next round
        analysis.remember_template(state, group, extraction)
        if group.score > 0:
            scoring[account] = state
    now, mono = core.clock(), time.monotonic()
    for state in scoring.values():
        core.evaluate(state, settings, now, mono)
