"""Account ownership across replicas: each account is analysed on one replica, its owner.

Behind a balancer an account's requests reach every replica. Sharing the per-account features
(:mod:`account_share`) lets each replica count them all, but each still decides from its own view
between merges, and several signals stay where the requests landed (the semantic sample, template
reuse against the local index, the arrival gaps, bias probes, client keys). So with ``shared.owners``
(on by default when the detector shares state) each account has one owner among the live replicas,
chosen by rendezvous hashing (a replica that comes or goes moves only its share of the accounts).
The other replicas do the request path's part as always and forward the observation, settled into
bounded slices (no request body), to the owner's inbox in the store, in batches; the owner reads
its inbox every ``inbox_poll_seconds`` while observations come (``inbox_idle_poll_seconds`` after a
quiet second) and analyses what it finds as its own. The owner then sees
every request of the account, as a single replica would, and its decisions reach the others as
level votes (:mod:`sync`, every sync round).

Membership: each replica joins the store's set of live replicas when its policies start and renews
its entry every second, or three times per ``owner_ttl_seconds`` when that is shorter
(:data:`~route_scripts.MEMBERS`); the others count it at their next renewal, and one that stops
renewing for ``owner_ttl_seconds`` loses its accounts to them. An owner also renews an *alive*
mark with every inbox read; a push to an owner without one is refused. When it stops (a policy
shutdown) it drops the mark and takes what is left in its inbox in one step, so a graceful stop
loses nothing. A replica that crashes loses what was pushed to it in the seconds before its mark
expires (``owner_ttl_seconds`` at most).

Fail-safe, never fail-lost: a push the store refuses (unreachable, owner gone, inbox at
``inbox_cap``) or an observation that cannot be encoded is analysed here instead, and counted in
``distillguard_detector_forwarded_total{outcome="kept"}``; the account is then briefly analysed on
two replicas, whose features the account merge sums. A replica that cannot renew its membership
analyses every account itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from gateway.plugins import StoreUnavailableError
from policies.detector.door_share import notice
from policies.detector.request import Observation, settle
from policies.detector.route_scripts import INBOX_PUSH, INBOX_TAKE, MEMBERS

if TYPE_CHECKING:
    from policies.detector.config import DetectorConfig
    from policies.detector.core import DetectorCore

log = logging.getLogger("distillguard.detector.routing")

IDLE_AFTER_SECONDS = 1.0  # without forwarded observations, the inbox is read at the idle pace
_PAIR = b'["pair",'  # an inbox entry that is a paired sighting's notice, not an observation
TAKE_BATCH = 512  # observations an owner takes off its inbox per call
_OWNER_CACHE = 65_536  # accounts whose owner is remembered under one membership
# What an observation carries to its owner, after settle() (the request view and headers are gone).
_FIELDS = (
    "account",
    "tier",
    "at",
    "operation",
    "model",
    "logprobs",
    "bias",
    "max_output",
    "samples",
    "max_reasoning",
    "client_ip",
    "user_text",
    "system_text",
    "turns",
    "tools",
    "tool_count",
    "tool_forced",
    "tool_results",
    "tool_depth",
    "client",
    "status",
    "response_bytes",
    "input_tokens",
    "output_tokens",
    "timed",
    "shadow",
)


def weight(replica: str, account: str) -> bytes:
    """The rendezvous weight of ``replica`` for ``account``: the highest one owns it."""
    return hashlib.blake2b(f"{replica}\x00{account}".encode(), digest_size=8).digest()


def owner_among(members: tuple[str, ...], account: str) -> str:
    """The owner of ``account`` among ``members`` (every replica computes the same one)."""
    return max(members, key=lambda replica: weight(replica, account))


def settings_key(settings: DetectorConfig) -> str:
    """A short digest of a detector configuration: the owner analyses with its own copy of it."""
    return hashlib.blake2b(settings.model_dump_json().encode(), digest_size=8).hexdigest()


def encode(observation: Observation, key: str, mono: float, wall: float) -> bytes:
    """The observation as sent to its owner. Its monotonic times travel as ages (another host's
    monotonic clock means nothing here), with the wall-clock time of sending."""
    settle(observation)
    waited = mono - observation.submitted if observation.submitted else -1.0
    values = [getattr(observation, name) for name in _FIELDS]
    return orjson.dumps([key, mono - observation.mono, waited, wall, *values])


def decode(raw: bytes, settings_for: dict[str, Any], fallback: Any, mono: float, wall: float) -> Observation:
    """An observation forwarded by another replica, its ages made times on this replica's clock.

    Raises ``ValueError`` (orjson's decode error is one) or ``TypeError`` on a malformed entry."""
    key, age, waited, sent, *values = orjson.loads(raw)
    if len(values) != len(_FIELDS):
        raise ValueError(f"forwarded observation has {len(values)} fields, expected {len(_FIELDS)}")
    fields = dict(zip(_FIELDS, values, strict=True))
    transit = max(0.0, wall - float(sent))
    observation = Observation(
        mono=mono - transit - float(age),
        headers=None,
        settings=settings_for.get(key, fallback),
        request=None,
        **fields,
    )
    observation.forwarded = True
    observation.submitted = mono - transit - float(waited) if waited >= 0 else 0.0
    return observation


def beat_interval(shared: Any) -> float:
    """Seconds between heartbeats: three per owner lifetime, at most one second apart (a replica that
    joins is counted by the others within a second)."""
    return min(1.0, shared.owner_ttl_seconds / 3)


class AccountRouter:
    """Which replica analyses which account, and the forwarding between them (see the module)."""

    def __init__(self, replica: str) -> None:
        self.replica = replica
        self.enabled = False  # set by the core from the configuration and the store
        self.members: tuple[str, ...] = ()
        self._owners: dict[str, str] = {}
        # Per replica: observations (and notices, with no observation) waiting to be pushed.
        self.outgoing: dict[str, list[tuple[Observation | None, bytes]]] = {}
        self.waiting = 0  # observations in ``outgoing``
        self.max_waiting = 10_000  # past it (a store that hangs), the rest is analysed here
        self.wake = asyncio.Event()
        self._settings: dict[str, DetectorConfig] = {}
        self._keys: dict[int, tuple[DetectorConfig, str]] = {}
        self.sent = self.received = self.kept = 0
        self.last_received = 0.0  # monotonic time of the last observation taken off the inbox
        self.last_beat = 0.0  # monotonic time of the last heartbeat the store answered

    @property
    def active(self) -> bool:
        """Whether accounts are spread over several replicas now (else every one is analysed here)."""
        return self.enabled and len(self.members) > 1

    def poll_interval(self, shared: Any, now: float) -> float:
        """Seconds until the router's next round: the inbox pace while accounts are spread (slower
        once nothing came for :data:`IDLE_AFTER_SECONDS`), else the heartbeat's."""
        if not self.active:
            return beat_interval(shared)
        if now - self.last_received < IDLE_AFTER_SECONDS:
            return float(shared.inbox_poll_seconds)
        return float(shared.inbox_idle_poll_seconds)  # nothing forwarded here for a while

    def register(self, settings: DetectorConfig) -> None:
        """Know a detector configuration this process runs (forwarded observations name theirs)."""
        key = settings_key(settings)
        self._settings[key] = settings
        self._keys[id(settings)] = (settings, key)

    def key_of(self, settings: DetectorConfig) -> str:
        known = self._keys.get(id(settings))
        if known is not None and known[0] is settings:
            return known[1]
        if len(self._keys) > 64:  # configurations of past reloads
            self._keys.clear()
        key = settings_key(settings)
        self._keys[id(settings)] = (settings, key)
        return key

    def set_members(self, members: list[Any]) -> None:
        names = tuple(sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members))
        if self.replica not in names:
            names = ()  # not registered (yet, or any more): analyse everything here
        if names != self.members:
            self.members = names
            self._owners.clear()

    def owner(self, account: str) -> str:
        """The replica that analyses ``account`` (this one when accounts are not spread)."""
        if not self.active:
            return self.replica
        owners = self._owners
        found = owners.get(account)
        if found is None:
            if len(owners) >= _OWNER_CACHE:
                owners.clear()
            found = owners[account] = owner_among(self.members, account)
        return found

    def forward(self, observation: Observation) -> bool:
        """Queue ``observation`` for its owner; False when it is analysed here (its own, or not
        encodable: a bias with keys JSON cannot hold, say; or past ``max_waiting`` behind a slow store)."""
        if observation.forwarded or not self.active:
            return False
        owner = self.owner(observation.account)
        if owner == self.replica or self.waiting >= self.max_waiting:
            return False
        try:
            raw = encode(observation, self.key_of(observation.settings), time.monotonic(), time.time())
        except (TypeError, ValueError):
            return False
        self.outgoing.setdefault(owner, []).append((observation, raw))
        self.waiting += 1
        self.wake.set()
        return True

    def notify(self, replica: str, notice: list[Any]) -> None:
        """Queue a notice for another replica's inbox (``[kind, ...]``: a paired first sighting,
        door_share.py); dropped past ``max_waiting`` or when JSON cannot hold it."""
        if self.waiting >= self.max_waiting:
            return
        try:
            raw = orjson.dumps(notice)
        except TypeError:
            return
        self.outgoing.setdefault(replica, []).append((None, raw))
        self.waiting += 1
        self.wake.set()

    def inbox_keys(self, store: Any, replica: str) -> list[str]:
        tag = "det-owner:" + replica
        return [store.tagged(tag, "det", "inbox", replica), store.tagged(tag, "det", "alive", replica)]

    async def beat(self, core: DetectorCore, leave: bool = False) -> None:
        """Renew (or, leaving, drop) this replica's membership and read the live replicas."""
        store = core.services.store  # type: ignore[union-attr]
        ttl_ms = int(core.shared.owner_ttl_seconds * 1000)
        key = store.tagged("det-members", "det", "members")
        try:
            members = await store.run_script(MEMBERS, [key], [self.replica, ttl_ms, "1" if leave else "0"])
        except StoreUnavailableError:
            # One slow or failed call keeps the set as it was (a push that fails is analysed here
            # anyway); past the owners' lifetime, nobody can tell who is alive: analyse everything here.
            if leave or time.monotonic() - self.last_beat > core.shared.owner_ttl_seconds:
                self.set_members([])
            raise
        self.last_beat = time.monotonic()
        self.set_members([] if leave else list(members))

    async def push(self, core: DetectorCore) -> None:
        """Send what is queued for other owners, one call per owner (one pipeline); what an owner's
        inbox refuses is analysed here."""
        if not self.outgoing:
            return
        store = core.services.store  # type: ignore[union-attr]
        shared = core.shared
        taken, self.outgoing, self.waiting = self.outgoing, {}, 0
        owners = list(taken)
        inbox_ttl = int(2 * shared.owner_ttl_seconds * 1000)
        calls = [
            (self.inbox_keys(store, owner), [shared.inbox_cap, inbox_ttl, *(raw for _, raw in taken[owner])])
            for owner in owners
        ]
        results = await store.run_scripts(INBOX_PUSH, calls)
        for owner, result in zip(owners, results, strict=True):
            items = taken[owner]
            if isinstance(result, int) and result >= 0:
                self.sent += len(items)
                core.count_forwarded("sent", len(items))
                continue
            if isinstance(result, BaseException) and not isinstance(result, StoreUnavailableError):
                raise result
            kept = [observation for observation, _ in items if observation is not None]
            self.kept += len(kept)
            core.count_forwarded("kept", len(kept))
            for observation in kept:
                core.analyse_here(observation)

    async def take(self, core: DetectorCore, leave: bool = False) -> int:
        """Read this replica's inbox (renewing its alive mark) and queue what it holds for analysis;
        leaving, take everything and drop the mark. Returns how many were taken."""
        store = core.services.store  # type: ignore[union-attr]
        ttl_ms = int(core.shared.owner_ttl_seconds * 1000)
        raw_items = await store.run_script(
            INBOX_TAKE, self.inbox_keys(store, self.replica), [0 if leave else TAKE_BATCH, ttl_ms]
        )
        if not raw_items:
            return 0
        mono, wall = time.monotonic(), time.time()
        settings_for, fallback = self._settings, core.settings
        received = 0
        for raw in raw_items:
            try:
                if raw.startswith(_PAIR):
                    notice(core, orjson.loads(raw))
                    continue
                observation = decode(raw, settings_for, fallback, mono, wall)
            except (ValueError, TypeError):
                log.warning("detector: a forwarded observation could not be read; skipped")
                core.count_forwarded("unreadable", 1)
                continue
            core.analyse_here(observation)
            received += 1
        self.received += received
        if received:
            self.last_received = mono
        core.count_forwarded("received", received)
        return len(raw_items)

    async def round(self, core: DetectorCore, beat: bool) -> None:
        """One round: the heartbeat (when due), what is queued for other owners, this inbox."""
        if beat:
            await self.beat(core)
        if self.outgoing:
            await self.push(core)
        if self.members:  # registered: read the inbox (and renew the alive mark) even when alone
            # A full batch: more may wait; take it now, yielding between (not waiting for an event).
            while await self.take(core) >= TAKE_BATCH:  # noqa: ASYNC110
                await asyncio.sleep(0)

    async def leave(self, core: DetectorCore) -> None:
        """Stop owning (a shutdown): leave the member set, take what is left in the inbox, and
        analyse here what was queued for others (the owners may be stopping too)."""
        if not self.enabled or core.services is None:
            return
        self.enabled = False  # until a configuration attaches again (routing must not rejoin)
        for items in self.outgoing.values():
            for observation, _ in items:
                if observation is not None:
                    core.analyse_here(observation)
        self.outgoing, self.waiting = {}, 0
        try:
            await self.beat(core, leave=True)
            await self.take(core, leave=True)
        except StoreUnavailableError as exc:
            log.warning("detector: could not leave the owners' set: %s", exc)


async def route_loop(core: DetectorCore) -> None:
    """The router's task: forward what the analysis queued for other owners as soon as it is
    queued, read this replica's inbox every ``inbox_poll_seconds`` (``inbox_idle_poll_seconds``
    once nothing came for :data:`IDLE_AFTER_SECONDS`) and renew its membership
    (:func:`beat_interval`). Failures are counted as sync errors and retried the next round."""
    router = core.router
    next_beat = 0.0
    while True:
        shared = core.shared
        wait = router.poll_interval(shared, time.monotonic())
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that arrives as
        # the event is set, and this loop then never ends (a stop would hang on it).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await router.wake.wait()
        router.wake.clear()
        if not router.enabled or core.services is None:
            router.set_members([])
            continue
        now = time.monotonic()
        beat = now >= next_beat
        if beat:
            next_beat = now + beat_interval(shared)
        try:
            await router.round(core, beat)
        except StoreUnavailableError as exc:
            log.warning("detector: forwarding between replicas failed, retrying: %s", exc)
            core.count_sync_error()
        except Exception:
            log.exception("detector: forwarding round failed")
            core.count_sync_error()
