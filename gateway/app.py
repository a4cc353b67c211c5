"""The ASGI application: the API goes straight to the proxy, the probes through Starlette.

One process serves two listeners (``gateway/server.py`` binds both sockets): the public port
(the API and the probes) and the operator port (``/metrics``, ``/admin/*``, the ``/console``
and the probes).
A request is routed by the local port of the socket it arrived on (``scope["server"]``, which
the kernel reports, not a header the client writes); until the operator port is known no
request reaches the operator surfaces at all. On the public port every path but the probes is
the API's: the declared route table (``gateway.routes``) answers it, 404 in the API's shape.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
from collections.abc import AsyncIterator, Callable
from importlib.metadata import entry_points
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.admin import admin_routes, guard_admin
from gateway.asgi import Receive, Scope, Send
from gateway.config.loader import LoadedConfig
from gateway.config.schema import LimitsConfig
from gateway.console import console_routes
from gateway.engine import ConfigLoader, Gateway
from gateway.metrics import render_metrics
from gateway.plugins import AdminContext
from gateway.proxy import ProxyHandler

ADMIN_ENTRY_POINTS = "distillguard.admin"
PROBES = frozenset({"/healthz", "/readyz"})
# How long a served process may take by default (``serve --stop-timeout``) to stop once the drain is
# over (policies flushing, the state store closing, worker threads finishing); past it the process
# dumps every thread's stack to its log and exits, so a SIGTERM always ends it well inside a
# deployment's termination grace period.
STOP_DEADLINE_SECONDS = 15.0


class GatewayApp:
    """Top-level ASGI callable. Model traffic skips the router; everything else is Starlette."""

    def __init__(
        self, gateway: Gateway, operator_port: int | None = None, stop_deadline: float | None = None
    ) -> None:
        self.gateway = gateway
        self.stop_deadline = stop_deadline
        self.proxy = ProxyHandler(gateway)
        self.operator_port = operator_port
        probes: list[BaseRoute] = [Route("/healthz", self.healthz), Route("/readyz", self.readyz)]
        handlers = {404: _not_found, 405: _not_found}
        self.router = Starlette(routes=probes, lifespan=self.lifespan, exception_handlers=handlers)
        admin = guard_admin(
            gateway,
            Starlette(
                routes=admin_routes(gateway) + _plugin_admin_routes(gateway), exception_handlers=handlers
            ),
        )
        self.operator = Starlette(
            routes=[
                *probes,
                Route("/metrics", self.metrics),
                # Every /admin route, the plugins' too, behind the admin token: enforced here, once.
                Mount("/admin", app=admin),
                # The operator console, a browser session in front of the same (guarded) admin API.
                Mount("/console", routes=console_routes(gateway, admin)),
            ],
            exception_handlers=handlers,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.router(scope, receive, send)
            return
        server = scope.get("server")
        if server is not None and self.operator_port is not None and server[1] == self.operator_port:
            await self.operator(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] not in PROBES:
            await self.proxy(scope, receive, send)  # the declared API routes, or 404 in the API's shape
        else:
            await self.router(scope, receive, send)

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
            if self.stop_deadline is not None:
                # A timer thread in C: it fires even when the event loop or the interpreter's exit hangs.
                faulthandler.dump_traceback_later(self.stop_deadline, exit=True)
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
        factory: Callable[[AdminContext], list[BaseRoute]] = ep.load()
        routes.extend(factory(gateway))
    return routes


def create_app(
    loader: ConfigLoader,
    initial: LoadedConfig | None = None,
    operator_port: int | None = None,
    stop_deadline: float | None = None,
) -> GatewayApp:
    """The app for one process; ``operator_port`` is the bound port of the operator listener.

    ``stop_deadline`` (served processes only, never an app embedded in a test or another program)
    bounds the stop after the drain: see ``STOP_DEADLINE_SECONDS``.
    """
    return GatewayApp(Gateway(loader, initial), operator_port=operator_port, stop_deadline=stop_deadline)


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
    operator_port = os.environ.get("DISTILLGUARD_OPERATOR_PORT")
    return create_app(
        load,
        loaded,
        int(operator_port) if operator_port else None,
        stop_deadline=float(os.environ.get("DISTILLGUARD_STOP_TIMEOUT") or STOP_DEADLINE_SECONDS),
    )
