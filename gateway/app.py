"""The ASGI application: /v1/* goes straight to the proxy, the rest through Starlette routes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from importlib.metadata import entry_points
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.admin import admin_routes
from gateway.asgi import Receive, Scope, Send
from gateway.config.loader import LoadedConfig
from gateway.config.schema import LimitsConfig
from gateway.engine import ConfigLoader, Gateway
from gateway.metrics import render_metrics
from gateway.proxy import ProxyHandler

ADMIN_ENTRY_POINTS = "distillguard.admin"


class GatewayApp:
    """Top-level ASGI callable. Model traffic skips the router; everything else is Starlette."""

    def __init__(self, gateway: Gateway, extra_routes: list[BaseRoute] | None = None) -> None:
        self.gateway = gateway
        self.proxy = ProxyHandler(gateway)
        routes: list[BaseRoute] = [
            Route("/healthz", self.healthz),
            Route("/readyz", self.readyz),
            Route("/metrics", self.metrics),
            Mount("/admin", routes=admin_routes(gateway) + _plugin_admin_routes(gateway)),
            *(extra_routes or []),
        ]
        self.router = Starlette(
            routes=routes,
            lifespan=self.lifespan,
            exception_handlers={404: _not_found, 405: _not_found},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.proxy(scope, receive, send)
        else:
            await self.router(scope, receive, send)  # type: ignore[arg-type]

    @property
    def front_door_limits(self) -> LimitsConfig:
        """The current config's ``limits``, read by the HTTP protocol for each new connection."""
        return self.gateway.limits

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        await self.gateway.start()
        try:
            yield
        finally:
            await self.gateway.stop()

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(self, request: Request) -> Response:
        """503 while draining or when the state backend is unreachable.

        ``?state=optional`` reports the backend without failing on it: a load
        balancer that probes every replica would otherwise take them all out
        at once when the shared Redis goes down, overriding what the policies
        are configured to do without it (fail open or closed).
        """
        if self.gateway.draining:
            return JSONResponse({"ready": False, "reason": "draining"}, status_code=503)
        store = self.gateway.runtime.services.store
        reachable = await store.ping()
        if not reachable and request.query_params.get("state") != "optional":
            return JSONResponse(
                {"ready": False, "reason": f"{store.backend} state backend unreachable"}, status_code=503
            )
        return JSONResponse(
            {
                "ready": True,
                "config": self.gateway.runtime.loaded.fingerprint[:12],
                "state": "ok" if reachable else "unreachable",
            }
        )

    async def metrics(self, request: Request) -> Response:
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)


async def _not_found(request: Request, exc: Exception) -> Response:
    """Unknown non-/v1 paths answer in OpenAI's error shape, like unknown /v1 paths."""
    status = getattr(exc, "status_code", 404)
    message = f"Unknown path {request.url.path}." if status == 404 else "Method not allowed."
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": "not_found_error" if status == 404 else "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
        status_code=status,
    )


def _plugin_admin_routes(gateway: Gateway) -> list[BaseRoute]:
    """Admin routes contributed by policies (entry points ``distillguard.admin``), behind the admin token."""
    routes: list[BaseRoute] = []
    for ep in entry_points(group=ADMIN_ENTRY_POINTS):
        factory: Callable[[Gateway], list[BaseRoute]] = ep.load()
        routes.extend(factory(gateway))
    return routes


def create_app(loader: ConfigLoader, initial: LoadedConfig | None = None) -> GatewayApp:
    return GatewayApp(Gateway(loader, initial))


def app_from_env() -> GatewayApp:
    """Factory for uvicorn workers: the CLI passes its options through DISTILLGUARD_* variables."""
    from gateway.config.loader import check_workers, load_config

    path = os.environ["DISTILLGUARD_CONFIG"]
    options = {
        "keys_file": os.environ.get("DISTILLGUARD_KEYS_FILE") or None,
        "upstream_url": os.environ.get("DISTILLGUARD_UPSTREAM") or None,
    }
    from gateway.logs import configure_logging

    workers = int(os.environ.get("DISTILLGUARD_WORKERS") or "1")

    def load() -> LoadedConfig:
        loaded = load_config(path, **options)
        check_workers(loaded, workers)  # a reload must not bring in what serve() refused
        return loaded

    loaded = load()
    configure_logging(loaded.gateway.logging.level)  # each worker is a fresh process
    return create_app(load, loaded)
