"""A Runtime is one loaded config made live: authenticator, pipelines, upstream pool, store.

Requests take the runtime current when they start and keep it to their end,
so a reload never changes the rules under a request in flight. A retired
runtime shuts its policies down once its last request finishes.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.auth import Authenticator
from gateway.client_address import TrustedProxies
from gateway.config.loader import LoadedConfig
from gateway.plugins.base import Account, RiskLevel
from gateway.plugins.pipeline import Pipeline
from gateway.plugins.services import PolicyServices
from gateway.routes import RouteTable, config_routes
from gateway.upstream import UpstreamPool

log = logging.getLogger("distillguard.runtime")


class Runtime:
    def __init__(self, loaded: LoadedConfig, services: PolicyServices, pool: UpstreamPool) -> None:
        self.loaded = loaded
        self.config = loaded.gateway
        self.services = services
        self.pool = pool
        self.auth = Authenticator(loaded)
        self.pipelines = {key: Pipeline(spec, services) for key, spec in loaded.pipelines.items()}
        self.routes = RouteTable(config_routes(self.config.passthrough_routes))
        self.max_body = self.config.limits.max_body_bytes
        self.body_timeout = self.config.limits.body_timeout_seconds
        self.access_log = self.config.logging.access_log
        self.trusted_proxies = TrustedProxies(self.config.trusted_proxies)
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.retired = False

    async def startup(self) -> None:
        for pipeline in self.pipelines.values():
            await pipeline.startup()

    def pipeline_for(self, account: Account, level: RiskLevel) -> Pipeline:
        pipeline = self.pipelines.get((account.tier, account.id, level))
        if pipeline is None:
            pipeline = self.pipelines[(account.tier, None, level)]
        return pipeline

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def retire(self, grace_seconds: float = 900.0) -> None:
        """Wait for the requests still using this runtime (bounded), then shut its policies down."""
        self.retired = True
        try:
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
        except TimeoutError:
            log.warning("retiring a config with %d requests still in flight", self.in_flight)
        for pipeline in self.pipelines.values():
            await pipeline.shutdown()
