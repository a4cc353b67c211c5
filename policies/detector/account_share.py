"""Per-account features shared across replicas: each replica's deltas, merged in the state store.

Behind a round-robin load balancer each of N replicas sees 1/N of an account's
requests. Without sharing, each would count a third of the requests (the
``min_requests`` hysteresis, the volume signal and the scoring cadence all read
counts) and decide N times later. With sharing on (``shared.sync``), every
replica keeps deciding from its own in-memory :class:`AccountState`, and once per
sync round pushes what its own requests added and reads back the merged state:

* The averages are decayed sums (``v := v * keep + alpha * x`` per request), so
  what k requests did to an account since a base ``b`` is ``v = P * b + D`` with
  ``P`` the product of their ``keep`` factors. A replica records ``P`` and the base
  when an account's first observation of the round arrives (:meth:`AccountShare.before`),
  sends ``(P, D = v - P * b)`` and the store applies ``v := v * P + D`` to the
  shared values (``ACCOUNT_SYNC``): exactly one replica's arithmetic when
  batches do not interleave, the same EWMA up to order within one round when
  they do. Token averages, updated only when a response reported usage, keep
  their own product.
* The request count is summed; the rate (a count decaying with a 60 s time
  constant) is summed at the later of the two reference times.
* Observations that arrive while the round's script call is in flight are kept
  on top: ``v := v_now + P' * (merged - base)``.
* The account's template uses (how often it used each campaign template, and
  the extraction score of those uses: the cluster term's inputs) are summed too
  (:mod:`template_share`), so a template used once on each of two replicas counts
  as used twice, as on one replica.

What stays per replica: the account's client/network keys, bias probes and
prompts (the cluster term reads the shared template index for the groups);
whether a request reuses one of the account's templates (``template_reuse``),
judged against the uses this replica's index has seen (on a 1/N sample a
template used k times is seen again once k > N); and the inter-arrival gaps
(each replica measures the gaps between the requests it sees; their
regularity, a ratio, is the same on a 1/N sample of a periodic stream). A
replica only reads back the accounts it saw in the round; an account it has
never seen is not tracked there (its level still arrives with the votes).

Cost: one script call per batch of ``_ACCOUNTS_PER_CALL`` accounts per round
on one node, one per account (its hash slot) on a cluster, all sent in one
pipeline (one round trip per node);
a request adds one dictionary lookup to the analysis, and the first request of an
account in a round one copy of its feature array and of its template uses (at
most ``MAX_TEMPLATES`` entries).
"""

from __future__ import annotations

import math
import struct
from array import array
from typing import TYPE_CHECKING, Any

from gateway.plugins import StoreUnavailableError
from policies.detector import template_share
from policies.detector.features import IN_TOKENS, OUT_TOKENS, RATE, SIZE, AccountState
from policies.detector.request import Observation
from policies.detector.store_scripts import ACCOUNT_SYNC, slot_calls

if TYPE_CHECKING:
    from policies.detector.core import DetectorCore

_RATE_TAU = 60.0
# An account other replicas added to: its state, its request count before the merge, and the
# template keys whose uses the merge changed.
Moved = tuple[AccountState, int, list[int]]
_ACCOUNTS_PER_CALL = 64
_PACK_DELTA = struct.Struct(f"<{7 + SIZE}d")  # what a replica sends per account (ACCOUNT_SYNC)
_RECORD = struct.Struct(f"<{4 + SIZE}d")  # the shared record: requests, first, last, rate time, values


class Base:
    """An account's values when this replica's deltas of the round started, and the decay since."""

    __slots__ = ("decay", "decay_tokens", "mono", "requests", "templates", "values")

    def __init__(self, state: AccountState | None) -> None:
        if state is None:  # a new account: the zero state
            self.values = array("d", bytes(8 * SIZE))
            self.requests = 0
            self.mono = 0.0
        else:
            self.values = array("d", state.values)
            self.requests = state.requests
            self.mono = state.last_mono
        # The account's template uses (the cluster term's inputs, template_share.py).
        self.templates: template_share.Snapshot = template_share.snapshot(state)
        self.decay = 1.0  # product of the keep factors of the averages since the base
        self.decay_tokens = 1.0  # the same for the token averages (only requests with usage)

    def then(self, later: Base) -> Base:
        """This base followed by ``later``'s updates (a failed round keeps both rounds' deltas)."""
        self.decay *= later.decay
        self.decay_tokens *= later.decay_tokens
        return self


def rate_at(values: array[float], mono: float, at_mono: float) -> float:
    """The decaying rate count of ``values`` (referenced at ``mono``) brought to ``at_mono``."""
    return values[RATE] * math.exp(-(at_mono - mono) / _RATE_TAU)


class AccountShare:
    """Bases of the accounts this replica updated since the last round, and the round itself."""

    def __init__(self) -> None:
        self.pending: dict[str, Base] = {}

    # ---- the analysis path (the core's worker) ----------------------------------------------
    def before(self, obs: Observation, state: AccountState | None) -> None:
        """Note the account's base at its first observation of the round (call before analysing it)."""
        pending = self.pending
        if obs.account not in pending:
            pending[obs.account] = Base(state)

    def note(self, state: AccountState) -> None:
        """Note the account's base before something other than its observation changes its template
        uses (a sighting the shared doorkeeper paired, door_share.py), so the round sends them."""
        if state.account not in self.pending:
            self.pending[state.account] = Base(state)

    def after(self, obs: Observation) -> None:
        """Count the observation's decay (call after analysing it)."""
        base = self.pending.get(obs.account)
        if base is None:
            return
        keep = 1.0 - 1.0 / obs.settings.rates.window_requests
        base.decay *= keep
        if obs.input_tokens or obs.output_tokens:
            base.decay_tokens *= keep

    # ---- the sync task ------------------------------------------------------------------------
    async def sync(self, core: DetectorCore) -> tuple[list[Moved], Exception | None]:
        """Push this round's deltas and merge what comes back.

        Returns the accounts other replicas also moved (with their request count before the merge
        and the template keys whose uses the merge changed), and the store error of the calls that
        failed (their accounts keep their deltas for the next round; the other calls' merges stand).
        """
        services = core.services
        assert services is not None
        store = services.store
        taken, self.pending = self.pending, {}
        accounts = core.accounts
        items: list[tuple[str, AccountState, Base, array[float], bytes, bytes]] = []
        for account, base in taken.items():
            state = accounts.get(account)
            if state is None:
                continue  # forgotten since (LRU)
            templates = template_share.delta(state, base.templates)
            if state.requests == base.requests and not templates:
                continue  # nothing new
            values = array("d", state.values)
            items.append((account, state, base, values, self._delta(state, base), templates))
        if not items:
            return [], None
        ttl_ms = int(core.shared.account_ttl_seconds * 1000)
        header: list[Any] = [ttl_ms, SIZE, RATE, IN_TOKENS, OUT_TOKENS, template_share.STORE_CAP]
        # Two keys per account, one hash tag (one slot): its features and its template uses.
        keys = [store.tagged(account, "det", "acct", account) for account, *_ in items]
        tkeys = [store.tagged(account, "det", "acctt", account) for account, *_ in items]
        calls = slot_calls(store, keys, _ACCOUNTS_PER_CALL)
        batches = []
        for positions in calls:
            args = list(header)
            call_keys: list[str] = []
            for position in positions:
                args.extend(items[position][4:6])
                call_keys.extend((keys[position], tkeys[position]))
            batches.append((call_keys, args))
        results = await store.run_scripts(ACCOUNT_SYNC, batches)  # one round trip (per node)
        moved: list[Moved] = []
        failure: Exception | None = None
        for positions, result in zip(calls, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, StoreUnavailableError):
                    raise result
                failure = result
                for position in positions:  # nothing was merged: keep the deltas for the next round
                    account, _, base, *_ = items[position]
                    later = self.pending.get(account)
                    self.pending[account] = base.then(later) if later is not None else base
                continue
            for offset, position in enumerate(positions):
                account, state, base, sent, *_ = items[position]
                before = state.requests
                later = self.pending.get(account)  # observations analysed while the call was in flight
                if not self._merge(state, sent, result[2 * offset]):
                    continue
                merged = template_share.unpack(result[2 * offset + 1])
                changed = template_share.merge(state, merged, later.templates if later is not None else None)
                moved.append((state, before, changed))
        return moved, failure

    @staticmethod
    def _delta(state: AccountState, base: Base) -> bytes:
        """The argument of one account: what this replica's requests since ``base`` added, as
        packed little-endian doubles (exact, and cheap to read in Lua)."""
        now, then = state.values, base.values
        decay, decay_tokens = base.decay, base.decay_tokens
        deltas: list[float] = []
        for index in range(SIZE):
            if index == RATE:
                added = now[RATE] - rate_at(then, base.mono, state.last_mono) if base.requests else now[RATE]
                deltas.append(added)
            elif index in (IN_TOKENS, OUT_TOKENS):
                deltas.append(now[index] - decay_tokens * then[index])
            else:
                deltas.append(now[index] - decay * then[index])
        rate_added = deltas[RATE]
        deltas[RATE] = 0.0
        head = (
            float(state.requests - base.requests),
            state.first_seen,
            state.last_seen,
            decay,
            decay_tokens,
            rate_added,
            state.last_seen,  # the rate's reference time: the last request's wall clock
        )
        return _PACK_DELTA.pack(*head, *deltas)

    def _merge(self, state: AccountState, sent: array[float], record: Any) -> bool:
        """Apply the merged values (keeping what was analysed since they were sent); whether others added."""
        if not isinstance(record, bytes) or len(record) != _RECORD.size:
            return False
        requests, first, _last, rate_time, *shared = _RECORD.unpack(record)
        merged = array("d", shared)
        total = int(requests)
        later = self.pending.get(state.account)  # observations analysed while the call was in flight
        decay = later.decay if later is not None else 1.0
        decay_tokens = later.decay_tokens if later is not None else 1.0
        sent_requests = later.requests if later is not None else state.requests
        sent_mono = later.mono if later is not None else state.last_mono
        values = state.values
        for index in range(SIZE):
            if index == RATE:
                continue
            factor = decay_tokens if index in (IN_TOKENS, OUT_TOKENS) else decay
            values[index] += factor * (merged[index] - sent[index])
        # The merged rate is referenced at rate_time (wall); the local one at last_mono.
        merged_rate = merged[RATE] * math.exp(-(state.last_seen - rate_time) / _RATE_TAU)
        sent_rate = rate_at(sent, sent_mono, state.last_mono)
        values[RATE] += merged_rate - sent_rate
        others = total - sent_requests
        state.requests += others
        state.first_seen = min(state.first_seen, first)
        if later is not None:  # the next round's deltas start from the merged values
            later.values = merged
            later.requests = total
            later.mono = sent_mono
            merged[RATE] = merged_rate * math.exp(-(sent_mono - state.last_mono) / _RATE_TAU)
        return others > 0
