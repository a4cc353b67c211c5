"""The Gateway: owns the live Runtime, the state that outlives reloads, and the reload machinery.

Reloads happen on SIGHUP and when the config file (or the keys file) changes
on disk. A new config is loaded and validated completely and its pipelines
started before it is swapped in; if anything fails the old config keeps
serving, and a log line and ``distillguard_config_reloads_total{result="rejected"}``
say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.config.loader import LoadedConfig, load_config
from gateway.config.schema import LimitsConfig
from gateway.errors import ConfigError
from gateway.logs import AccessLog
from gateway.metric_queue import periodic_flush
from gateway.metrics import GatewayMetrics
from gateway.pins import SharedPins
from gateway.plugins.services import PolicyServices, SharedObjects
from gateway.plugins.tasks import stop_task
from gateway.risk import RiskBoard
from gateway.runtime import Runtime
from gateway.state import StateStore
from gateway.state.base import StoreUnavailableError
from gateway.state.factory import create_store
from gateway.upstream import UpstreamPool

log = logging.getLogger("distillguard.engine")

ConfigLoader = Callable[[], LoadedConfig]


class Gateway:
    """One per process. ``runtime`` is the config now serving."""

    def __init__(self, loader: ConfigLoader, initial: LoadedConfig | None = None) -> None:
        self._loader = loader
        self._initial = initial if initial is not None else loader()
        self.metrics = GatewayMetrics(self._initial.gateway.metrics.per_account_labels)
        self.risk = RiskBoard()
        # Operator pins live in the state store so that every worker and replica applies them.
        self.pins = SharedPins(self.risk, lambda: self.runtime.services.store)
        self.shared = SharedObjects()
        self._runtime: Runtime | None = None
        self._store: StateStore | None = None
        self._pool: UpstreamPool | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._reload_lock = asyncio.Lock()
        self._file_digest = ""
        self.draining = False
        self.access_log = AccessLog()
        # The last reload attempt (when, why, result, error), shown by the operator console.
        self.last_reload: dict[str, Any] | None = None

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "gateway not started"
        return self._runtime

    @property
    def config(self) -> LoadedConfig:
        """The configuration in force (replaced by a reload)."""
        return self.runtime.loaded

    @property
    def store(self) -> StateStore:
        """The state store in force (replaced by a reload that changes ``state``)."""
        return self.runtime.services.store

    @property
    def limits(self) -> LimitsConfig:
        """The front door's limits of the config now serving (the initial config's before the start)."""
        loaded = self._runtime.loaded if self._runtime is not None else self._initial
        return loaded.gateway.limits

    async def start(self) -> None:
        self._runtime = await self._build(self._initial)
        self.metrics.config_info.set(time.time())
        self._file_digest = self._digest_files(self._initial)
        with contextlib.suppress(StoreUnavailableError):
            await self.pins.refresh()  # pins set before this process started; else the poller retries
        self.pins.start()
        self._flush_task = asyncio.create_task(periodic_flush())  # queued metric updates, each second
        if self._initial.gateway.reload.watch and self._initial.source is not None:
            self._watch_task = asyncio.create_task(self._watch())
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)

    async def stop(self) -> None:
        self.draining = True
        await self.pins.stop()
        await stop_task(self._watch_task)
        for task in list(self._retiring):
            await stop_task(task)
        if self._runtime is not None:
            await self._runtime.retire(grace_seconds=30)
        if self._pool is not None:
            await self._pool.close()
        if self._store is not None:
            await self._store.close()
        self.access_log.flush()
        await stop_task(self._flush_task)  # after the retired pipelines' last updates; flushes once more

    async def _build(self, loaded: LoadedConfig) -> Runtime:
        """Make ``loaded`` live, reusing the store and pool when their settings did not change."""
        cfg = loaded.gateway
        store = self._store
        if store is None or self._runtime is None or self._runtime.config.state != cfg.state:
            store = create_store(cfg.state)
            await store.start()
        pool = self._pool
        if pool is None or pool.configs != cfg.upstreams:
            pool = UpstreamPool(list(cfg.upstreams), self.metrics)
        services = PolicyServices(store=store, metrics=self.metrics, risk=self.risk, shared=self.shared)
        runtime = Runtime(loaded, services, pool)
        try:
            await runtime.startup()
        except Exception as exc:
            await runtime.retire(0)
            if store is not self._store:
                await store.close()
            raise ConfigError(f"a policy failed to start: {exc}", source=str(loaded.source)) from exc
        old_store, old_pool = self._store, self._pool
        self._store, self._pool = store, pool
        if old_store is not None and old_store is not store:
            self._later(self._close_when_idle(old_store, None))
        if old_pool is not None and old_pool is not pool:
            self._later(self._close_when_idle(None, old_pool))
        return runtime

    async def _close_when_idle(self, store: StateStore | None, pool: UpstreamPool | None) -> None:
        # In-flight requests of the old runtime may still use these; retire() waits for them first.
        await asyncio.sleep(1)
        for task in list(self._retiring):
            if task is not asyncio.current_task():
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)
        if store is not None:
            await store.close()
        if pool is not None:
            await pool.close()

    def _later(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def reload(self, reason: str = "manual") -> bool:
        """Load the config again; swap it in if valid. Returns whether a new config now serves."""
        async with self._reload_lock:
            try:
                loaded = await asyncio.to_thread(self._loader)
            except ConfigError as exc:
                self._reloaded(reason, "rejected", str(exc))
                log.error("config reload (%s) rejected, the previous config keeps serving: %s", reason, exc)
                return False
            if self._runtime is not None and loaded.fingerprint == self._runtime.loaded.fingerprint:
                self._reloaded(reason, "unchanged")
                return False
            try:
                runtime = await self._build(loaded)
            except ConfigError as exc:
                self._reloaded(reason, "rejected", str(exc))
                log.error("config reload (%s) rejected, the previous config keeps serving: %s", reason, exc)
                return False
            old, self._runtime = self._runtime, runtime
            self._reloaded(reason, "applied")
            self.metrics.config_info.set(time.time())
            log.info("config reloaded (%s) from %s", reason, loaded.source)
            if old is not None:
                self._later(old.retire())
            return True

    def _reloaded(self, reason: str, result: str, error: str | None = None) -> None:
        self.metrics.config_reloads.labels(result).inc()
        self.last_reload = {"at": time.time(), "reason": reason, "result": result, "error": error}

    def _on_sighup(self) -> None:
        self._later(self.reload("SIGHUP"))

    @staticmethod
    def _digest_files(loaded: LoadedConfig) -> str:
        digest = hashlib.sha256()
        for path in loaded.watched_files:
            try:
                digest.update(Path(path).read_bytes())
            except OSError:
                digest.update(b"<missing>")
        return digest.hexdigest()

    async def _watch(self) -> None:
        """Poll the config files (robust to rename-on-save and Kubernetes ConfigMap symlink swaps)."""
        while True:
            runtime = self.runtime
            await asyncio.sleep(runtime.config.reload.interval_seconds)
            digest = self._digest_files(self.runtime.loaded)
            if digest != self._file_digest:
                self._file_digest = digest
                await self.reload("file changed")


def file_loader(path: str | Path, **kwargs: object) -> ConfigLoader:
    return lambda: load_config(path, **kwargs)  # type: ignore[arg-type]
