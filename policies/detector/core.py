"""The detector core: one per process, fed by every detector instance, composing the detector's parts.

Request path: the policy takes a small :class:`Observation` in ``on_request``,
completes it with the response size in ``after_response`` and hands it to
:meth:`DetectorCore.submit`, which only puts it on a bounded queue (a full
queue drops the observation and counts it; it never blocks a request).

Analysis (a background task on the gateway's event loop, :class:`~analysis.Analyser`):
fingerprints, classifier, chain-of-thought score, account features, the
cross-account index, the score and the level decision. A new level is this
replica's *vote*; the account's level on the engine's risk board is the highest
vote of any replica (one replica when the store is not shared;
:class:`~levels.LevelVotes`). Level changes reach the audit log
(:class:`~audit.AuditTrail`) through the risk board's change announcements, so
operator pins are audited too. Store I/O (audit trail, timeline, sharing)
happens in :mod:`sync`, from the :class:`~outbox.SyncOutbox`.

The core builds these collaborators once, each owning its state and handed
what it reads, and keeps the scheduling: the observation queue, the worker,
and the sweeps that re-evaluate the members of a newly flagged cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from gateway.plugins import PolicyServices, RiskBoard, StoreUnavailableError, stop_task
from policies.detector.account_share import AccountShare
from policies.detector.analysis import Analyser
from policies.detector.audit import AuditTrail
from policies.detector.config import DetectorConfig, SharedSettings
from policies.detector.features import TrackedAccounts
from policies.detector.groups import Sweep
from policies.detector.index import TemplateIndex
from policies.detector.levels import LevelVotes
from policies.detector.metrics import DetectorMetrics
from policies.detector.outbox import SyncOutbox
from policies.detector.request import Observation, settle
from policies.detector.routing import AccountRouter
from policies.detector.scoring import Score
from policies.detector.timeline import FeatureTimeline
from policies.detector.views import DetectorViews

log = logging.getLogger("distillguard.detector")

CORE_KEY = "detector.core"
_BATCH = 256
_SWEEP_CHUNK = 64
# Observations that may wait for the analysis still holding their request view (the parsed body, up to
# limits.max_body_bytes) and their client's headers (up to limits.max_header_bytes): a few, as many as
# a few more requests in flight would hold; behind more, the prompt slices and the client key are taken
# at submission (on the request path), so a backlog holds bounded slices only.
UNSETTLED_WAIT = 32


def core_for(services: PolicyServices) -> DetectorCore:
    """The process-wide core (created on first use; it outlives config reloads)."""
    return services.shared.get(CORE_KEY, DetectorCore)


class DetectorCore:
    """The detector of one process: its parts, their configuration, and the background worker.

    Parts (each owns its state): ``accounts`` (:class:`TrackedAccounts`), ``index``
    (:class:`TemplateIndex`), ``outbox`` (:class:`SyncOutbox`), ``audit`` (:class:`AuditTrail`),
    ``timeline`` (:class:`FeatureTimeline`), ``levels`` (:class:`LevelVotes`), ``analysis``
    (:class:`Analyser`) and ``views`` (:class:`DetectorViews`). ``process``, ``evaluate``,
    ``account`` and ``_rescore`` are the analyser's methods, bound here once.
    """

    def __init__(self) -> None:
        self.replica = uuid.uuid4().hex[:12]
        self.shared = SharedSettings()
        self.settings: DetectorConfig | None = None  # the first instance's, for sweeps and the admin API
        self.services: PolicyServices | None = None
        self._generation: PolicyServices | None = None
        self.metrics: DetectorMetrics | None = None
        self.clock = time.time
        self.accounts = TrackedAccounts(self.shared.max_accounts)
        self.index = TemplateIndex(self.shared.max_templates, self.shared.max_group_members)
        self.outbox = SyncOutbox()
        self.audit = AuditTrail(self.replica, self.shared, self.outbox)
        self.timeline = FeatureTimeline(self.shared, self.outbox)
        self.levels = LevelVotes(self.replica, self.accounts, self.index, self.audit, self.outbox)
        self._sweeps: deque[Sweep] = deque()  # newly flagged groups whose members to re-evaluate
        self.analysis = Analyser(
            self.shared, self.accounts, self.index, self.levels, self.timeline, self.outbox, self._sweeps
        )
        self.views = DetectorViews(self.replica, self.accounts, self.index, self.levels, self.analysis)
        self.share = AccountShare()  # per-account deltas for the store (when sharing is on)
        self.router = AccountRouter(self.replica)  # which replica analyses which account
        # This replica's first sightings another replica paired (kind, key, account, extraction).
        self.door_notices: list[tuple[str, int, str, float]] = []
        # The analyser's entry points, bound once (no lookup through it per observation).
        self.process: Callable[[Observation], Score | None] = self.analysis.process
        self.evaluate = self.analysis.evaluate
        self._rescore = self.analysis.rescore
        self.account = self.accounts.seen
        self._boards: list[RiskBoard] = []
        self._queue: asyncio.Queue[Observation] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._embedding: asyncio.Task[None] | None = None  # the semantic signals' rounds, while running
        self._idle = asyncio.Event()
        self.sync_wake = asyncio.Event()  # set when the store should hear of a change before the tick

    # ---- configuration ----------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return self.services is not None

    def serves(self, services: PolicyServices) -> bool:
        """Whether ``services`` are the newest configuration's (a policy shutting down with them is
        the gateway stopping, not a reload retiring an older configuration)."""
        return self._generation is services

    def attach(self, settings: DetectorConfig, services: PolicyServices) -> None:
        """Called by every detector instance at startup; the first of a new config (re)configures."""
        self.router.register(settings)
        if self._generation is services:
            if settings.shared != self.shared:
                raise ValueError(
                    "detector: the 'shared' settings must be identical in every tier, account override "
                    "and risk level (one detector core serves them all)"
                )
            return
        self._generation = services
        self.services = services
        self.settings = settings
        shared = self.shared = settings.shared
        self.accounts.limit = shared.max_accounts
        self.index.max_groups = shared.max_templates
        self.index.max_members = shared.max_group_members
        self.audit.configure(shared)
        mode = shared.sync
        self.outbox.sharing = mode == "on" or (mode == "auto" and services.store.backend == "redis")
        self.index.track_deltas = self.outbox.sharing
        # With sharing on, each observation also records the account's delta for the store.
        accounts_shared = self.outbox.sharing and shared.share_accounts
        self.process = self.analysis.process
        if accounts_shared:
            self.process = self._process_shared
        if not accounts_shared:
            self.share.pending.clear()
        self.router.enabled = self.outbox.sharing and shared.owners
        self.router.max_waiting = shared.queue_size
        if self.metrics is None:
            self.metrics = DetectorMetrics(services.metrics)
        self.timeline.configure(shared)
        self.levels.configure(settings, services.risk, self.metrics)
        self.analysis.configure(shared, self.metrics)
        self.analysis.semantic.warm_up()
        self.views.configure(settings, services.risk, self.metrics)
        if services.risk not in self._boards:
            services.risk.subscribe(self.levels.on_change)
            self._boards.append(services.risk)
        if self._queue is not None and self._queue.maxsize != self.shared.queue_size:
            log.info("detector queue size changes to %d at the next restart", self.shared.queue_size)

    def _process_shared(self, observation: Observation) -> Score | None:
        """Analyse one observation and record what it adds to the account's shared features."""
        share = self.share
        share.before(observation, self.accounts.get(observation.account))
        result = self.analysis.process(observation)
        share.after(observation)
        return result

    # ---- the request path -------------------------------------------------------------------
    def submit(self, observation: Observation) -> None:
        """Queue an observation for analysis (never blocks; drops and counts when full)."""
        self._ensure_running()
        queue = self._queue
        assert queue is not None
        if queue.qsize() >= UNSETTLED_WAIT:  # a backlog: no request body or client's headers wait in it
            settle(observation)
        self._enqueue(queue, observation)

    def _enqueue(self, queue: asyncio.Queue[Observation], observation: Observation) -> None:
        """Put an observation on the analysis queue; a full queue drops it and counts it."""
        try:
            queue.put_nowait(observation)
            self._idle.clear()
        except asyncio.QueueFull:
            if self.metrics is not None:
                self.metrics.dropped.inc()

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop and all(not task.done() for task in self._tasks):
            return
        for task in self._tasks:
            task.cancel()
        self._loop = loop
        self._embedding = None  # a round of a previous loop is gone with it
        self._queue = asyncio.Queue(self.shared.queue_size)
        self._idle = asyncio.Event()
        self._idle.set()
        self.router.wake = asyncio.Event()
        self.sync_wake = asyncio.Event()
        from policies.detector.routing import route_loop
        from policies.detector.sync import sync_loop

        self._tasks = [
            loop.create_task(self._analyse_loop()),
            loop.create_task(sync_loop(self)),
            loop.create_task(route_loop(self)),
        ]

    async def start(self) -> None:
        """Start the background tasks now (a policy's startup), and with owners join the replicas'
        set before the first request: the others count this replica at their next heartbeat."""
        self._ensure_running()
        if self.router.enabled and not self.router.members and self.services is not None:
            try:
                await self.router.round(self, beat=True)
            except StoreUnavailableError as exc:
                log.warning("detector: could not join the replicas' set yet, retrying: %s", exc)
                self.count_sync_error()

    def analyse_here(self, observation: Observation) -> None:
        """Queue an observation to be analysed on this replica whoever owns its account (one
        forwarded here, or one its owner's inbox refused)."""
        observation.forwarded = True
        queue = self._queue
        if queue is None:
            self.process(observation)
            return
        self._enqueue(queue, observation)

    def wake_sync(self) -> None:
        """Have the sync task share now what another replica's analysis may need before its next
        tick: campaign groups that changed here, first sightings for the doorkeeper (sync.py)."""
        if self.outbox.sharing and (self.outbox.hot or self.index.door_ops):
            self.sync_wake.set()

    def count_forwarded(self, outcome: str, count: int) -> None:
        if self.metrics is not None:
            self.metrics.forwarded.labels(outcome).inc(count)

    def count_sync_error(self) -> None:
        if self.metrics is not None:
            self.metrics.sync_errors.inc()

    async def _analyse_loop(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            if self._sweeps and queue.empty():
                if not self.run_sweeps():
                    self._idle.set()
                await asyncio.sleep(0)
                continue
            observation = await queue.get()
            batch = [observation]
            while len(batch) < _BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            forward = self.router.forward if self.router.active else None
            for item in batch:
                if forward is not None and forward(item):
                    continue  # its owner analyses it (routing.py)
                try:
                    self.process(item)
                except Exception:
                    log.exception("detector analysis failed for one observation")
            if self.analysis.semantic.pending and (self._embedding is None or self._embedding.done()):
                # Its own task: the lexical analysis goes on while a worker thread embeds.
                self._embedding = asyncio.get_running_loop().create_task(
                    self.analysis.semantic.rounds(self.analysis, self.run_sweeps, self.wake_sync)
                )
            self.run_sweeps()
            self.wake_sync()
            if queue.empty() and not self._sweeps:
                self._idle.set()
            await asyncio.sleep(0)

    def run_sweeps(self, budget: int = _SWEEP_CHUNK) -> bool:
        """Re-evaluate local members of newly flagged clusters, at most ``budget`` accounts per call.

        Only members whose cluster term reads the group are re-evaluated: those that remember it
        among their templates (their extraction use of it) or infrastructure. For the others the
        flag changes nothing (:meth:`Analyser.cluster_term` never looks at the group), and their
        next request evaluates them as usual.

        Returns whether members are still waiting (the worker calls again between batches, so a
        500-member cluster never holds the event loop for more than one chunk).
        """
        settings = self.settings
        sweeps = self._sweeps
        if settings is None:
            sweeps.clear()
            return False
        now = self.clock()
        mono = time.monotonic()
        while sweeps and budget > 0:
            key, pending = sweeps[0]
            while pending and budget > 0:
                state = self.accounts.get(pending.pop())
                if state is not None and (key in state.templates or key in state.infra):
                    budget -= 1
                    self.evaluate(state, settings, now, mono)
            if not pending:
                sweeps.popleft()
        return bool(sweeps)

    async def drain(self, embeddings_within: float | None = None) -> None:
        """Wait until every submitted observation is analysed (tests, benchmarks, shutdown).

        That includes the embeddings of the prompts it sampled, unless ``embeddings_within`` bounds
        how long to wait for them (a stop): past it, the drain ends once the lexical analysis has.
        """
        queue = self._queue
        if queue is None:
            return
        if not self._tasks or self._tasks[0].done() or self._loop is not asyncio.get_running_loop():
            while not queue.empty():  # no worker on this loop: analyse here
                self.process(queue.get_nowait())
            self.analysis.semantic.run_now(self.analysis)
            while self.run_sweeps():
                pass
            return
        loop = asyncio.get_running_loop()
        deadline = None if embeddings_within is None else loop.time() + embeddings_within
        while True:
            await self._idle.wait()
            embedding = self._embedding
            if embedding is not None and not embedding.done():
                # Its results may raise levels and flag groups.
                if deadline is None:
                    await asyncio.wait([embedding])
                    continue
                left = deadline - loop.time()
                if left > 0:
                    await asyncio.wait([embedding], timeout=left)
                    continue
            if queue.empty() and not self._sweeps:
                return
            await asyncio.sleep(0)

    async def flush(self, embeddings_within: float | None = None, leaving: bool = False) -> None:
        """Analyse what is queued and write pending audit and timeline entries to the store.

        With ``embeddings_within`` (a policy's shutdown), embeddings still running past it are
        given up: the wait for the embedding process is interrupted (the batch is lost and counted)
        and the round stops, so a hung embedding process cannot hold a stop up. ``leaving``: the
        gateway stops (no newer configuration took over): this replica stops owning accounts, and
        what was forwarded to it or queued for other owners is analysed here first.
        """
        if leaving:
            await self.router.leave(self)
        await self.drain(embeddings_within)
        embedding = self._embedding
        if embeddings_within is not None and embedding is not None and not embedding.done():
            log.warning("detector: embeddings still running after %.1f s; given up", embeddings_within)
            self.analysis.semantic.interrupt()
            await stop_task(embedding)
        if self.services is not None:
            from policies.detector.sync import push_lists

            await push_lists(self)

    async def stop(self) -> None:
        await stop_task(self._embedding)
        for task in self._tasks:
            await stop_task(task)
        self._tasks = []
        self._loop = None

    # ---- what the admin API, evidence bundles and the sync task use -------------------------
    def allow(self, account: str, allowed: bool) -> None:
        """Add or remove an operator allowlist entry (shared through the store when sync is on)."""
        self.levels.allow(account, allowed, self.clock())

    def allowlisted(self, account: str) -> bool:
        """Whether the account is on the configured or the operator allowlist."""
        return self.levels.allowlisted(account)

    def status(self, account: str) -> dict[str, Any]:
        """What the admin API shows for an account."""
        out = self.views.status(account)
        if self.router.active:
            out["analysed_by"] = self.router.owner(account)
        return out

    def clusters(self, flagged_only: bool = True, limit: int = 500) -> list[dict[str, Any]]:
        """Summaries of flagged groups (or of every group shared by 2+ accounts), strongest first."""
        return self.views.clusters(flagged_only, limit)

    def levels_summary(self) -> dict[str, int]:
        """How many tracked accounts this replica votes for at each level."""
        return self.views.levels_summary()

    def update_gauges(self, clusters: bool = True) -> None:
        """Refresh the level, account and (with ``clusters``) cluster gauges."""
        self.views.update_gauges(clusters)
