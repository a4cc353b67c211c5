"""The detector core: one per process, fed by every detector instance, owning all detector state.

Request path: the policy takes a small :class:`Observation` in ``on_request``,
completes it with the response size in ``after_response`` and hands it to
:meth:`DetectorCore.submit`, which only puts it on a bounded queue (a full
queue drops the observation and counts it; it never blocks a request).

Analysis (a background task on the gateway's event loop, :mod:`analysis`): fingerprints,
classifier, chain-of-thought score, account features, the cross-account index,
the score and the level decision. A new level is this replica's *vote*; the
account's level on the engine's risk board is the highest vote of any replica
(one replica when the store is not shared). Level changes reach the audit log
through the risk board's change announcements, so operator pins are audited
too. Store I/O (audit trail, timeline, sharing) happens in :mod:`sync`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict, deque
from typing import Any

from gateway.plugins import PolicyServices, RiskBoard, RiskLevel
from policies.detector.analysis import AnalysisMixin
from policies.detector.audit import AuditLog
from policies.detector.config import DetectorConfig, SharedSettings
from policies.detector.features import AccountState
from policies.detector.index import TemplateIndex
from policies.detector.levels import LevelsMixin
from policies.detector.metrics import DetectorMetrics
from policies.detector.request import Observation
from policies.detector.views import ViewsMixin

log = logging.getLogger("distillguard.detector")

CORE_KEY = "detector.core"
_RECENT_CHANGES = 10_000
_BATCH = 256


def core_for(services: PolicyServices) -> DetectorCore:
    """The process-wide core (created on first use; it outlives config reloads)."""
    return services.shared.get(CORE_KEY, DetectorCore)


class DetectorCore(AnalysisMixin, LevelsMixin, ViewsMixin):
    def __init__(self) -> None:
        self.replica = uuid.uuid4().hex[:12]
        self.shared = SharedSettings()
        self.settings: DetectorConfig | None = None  # the first instance's, for sweeps and the admin API
        self.services: PolicyServices | None = None
        self._generation: PolicyServices | None = None
        self.metrics: DetectorMetrics | None = None
        self.accounts: OrderedDict[str, AccountState] = OrderedDict()
        self.index = TemplateIndex(self.shared.max_templates, self.shared.max_group_members)
        self.audit = AuditLog(None)
        self.allow_config: set[str] = set()
        self.allow_shared: set[str] = set()
        self.remote_votes: dict[str, dict[str, RiskLevel]] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=_RECENT_CHANGES)
        self.pending_evidence: dict[str, dict[str, Any]] = {}
        self.sync_enabled = False
        # Outboxes drained by the sync task.
        self.out_lists: list[tuple[tuple[str, ...], str, int]] = []  # (key parts, json, cap)
        self.out_votes: dict[str, RiskLevel] = {}
        self.out_allow: list[tuple[str, str]] = []
        self.touched: set[Any] = set()
        self._system_keys: dict[str, int | None] = {}
        # (key, members) of newly flagged groups: members to re-evaluate
        self._sweeps: deque[tuple[Any, list[str]]] = deque()
        self._boards: list[RiskBoard] = []
        self._queue: asyncio.Queue[Observation] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self.clock = time.time

    # ---- configuration ----------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return self.services is not None

    def attach(self, settings: DetectorConfig, services: PolicyServices) -> None:
        """Called by every detector instance at startup; the first of a new config (re)configures."""
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
        self.shared = settings.shared
        self.index.max_groups = self.shared.max_templates
        self.index.max_members = self.shared.max_group_members
        if self.audit.path != self.shared.audit_log:
            self.audit.close()
            self.audit = AuditLog(self.shared.audit_log, self.replica)
        self.allow_config = set(self.shared.allowlist)
        mode = self.shared.sync
        self.sync_enabled = mode == "on" or (mode == "auto" and services.store.backend == "redis")
        self.index.track_deltas = self.sync_enabled
        if self.metrics is None:
            self.metrics = DetectorMetrics(services.metrics)
        if services.risk not in self._boards:
            services.risk.subscribe(self._on_change)
            self._boards.append(services.risk)
        if self._queue is not None and self._queue.maxsize != self.shared.queue_size:
            log.info("detector queue size changes to %d at the next restart", self.shared.queue_size)

    # ---- the request path -------------------------------------------------------------------
    def submit(self, observation: Observation) -> None:
        """Queue an observation for analysis (never blocks; drops and counts when full)."""
        self._ensure_running()
        assert self._queue is not None
        try:
            self._queue.put_nowait(observation)
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
        self._queue = asyncio.Queue(self.shared.queue_size)
        self._idle = asyncio.Event()
        self._idle.set()
        from policies.detector.sync import sync_loop

        self._tasks = [loop.create_task(self._analyse_loop()), loop.create_task(sync_loop(self))]

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
            for item in batch:
                try:
                    self.process(item)
                except Exception:
                    log.exception("detector analysis failed for one observation")
            self.run_sweeps()
            if queue.empty() and not self._sweeps:
                self._idle.set()
            await asyncio.sleep(0)

    async def drain(self) -> None:
        """Wait until every submitted observation is analysed (tests, benchmarks, shutdown)."""
        queue = self._queue
        if queue is None:
            return
        if not self._tasks or self._tasks[0].done() or self._loop is not asyncio.get_running_loop():
            while not queue.empty():  # no worker on this loop: analyse here
                self.process(queue.get_nowait())
            while self.run_sweeps():
                pass
            return
        while True:
            await self._idle.wait()
            if queue.empty() and not self._sweeps:
                return
            await asyncio.sleep(0)

    async def flush(self) -> None:
        """Analyse what is queued and write pending audit and timeline entries to the store."""
        await self.drain()
        if self.services is not None:
            from policies.detector.sync import push_lists

            await push_lists(self)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._loop = None
