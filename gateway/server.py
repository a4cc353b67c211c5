"""Running the gateway and the mock under uvicorn (uvloop + httptools)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.config.loader import check_workers, load_config
from gateway.cpu_quota import usable_cpus
from gateway.http_protocol import CoalescingHttpToolsProtocol
from gateway.logs import configure_logging

UVICORN_DEFAULTS: dict[str, Any] = {
    "loop": "uvloop",
    "http": CoalescingHttpToolsProtocol,  # httptools, with one write per loop iteration
    "server_header": False,
    "date_header": True,
    "access_log": False,  # the gateway writes its own JSON access log
    "timeout_graceful_shutdown": 30,
    # Keep-alive, header and body deadlines and header limits come from the app's `limits:` (see
    # gateway.http_protocol), so the single-process and the worker paths apply the same file.
    "backlog": 4096,
}


def default_workers() -> int:
    """One worker per CPU this process may use: CPU affinity, capped by a container's CPU quota."""
    return usable_cpus()


def serve(
    config_path: str,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    keys_file: str | None = None,
    upstream_url: str | None = None,
    drain_timeout: int | None = None,
) -> None:
    """Validate the config, then serve it (in ``workers`` processes when more than one).

    On SIGTERM the listening socket closes at once; requests and streams in
    flight get ``drain_timeout`` seconds (default 30) to finish before they are
    cancelled. A deployment's termination grace period must exceed it.
    """
    options = dict(UVICORN_DEFAULTS)
    if drain_timeout is not None:
        options["timeout_graceful_shutdown"] = drain_timeout
    loaded = load_config(config_path, keys_file=keys_file, upstream_url=upstream_url)
    check_workers(loaded, workers)
    cfg = loaded.gateway
    configure_logging(cfg.logging.level)
    bind_host = host or cfg.listen.host
    bind_port = port if port is not None else cfg.listen.port
    if workers > 1:
        # Workers import the app by name and read their options from the environment.
        os.environ["DISTILLGUARD_CONFIG"] = os.path.abspath(config_path)
        os.environ["DISTILLGUARD_KEYS_FILE"] = os.path.abspath(keys_file) if keys_file else ""
        os.environ["DISTILLGUARD_UPSTREAM"] = upstream_url or ""
        os.environ["DISTILLGUARD_WORKERS"] = str(workers)
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="distillguard-metrics-"))
        uvicorn.run(
            "gateway.app:app_from_env",
            factory=True,
            host=bind_host,
            port=bind_port,
            workers=workers,
            log_config=None,
            **options,
        )
        return
    app = create_app(lambda: load_config(config_path, keys_file=keys_file, upstream_url=upstream_url), loaded)
    uvicorn.run(app, host=bind_host, port=bind_port, log_config=None, **options)


def serve_mock(host: str = "127.0.0.1", port: int = 9100) -> None:
    from gateway.mock.server import create_mock_app

    configure_logging("info")
    uvicorn.run(create_mock_app(), host=host, port=port, log_config=None, **UVICORN_DEFAULTS)


async def serve_async(app: Any, host: str, port: int) -> uvicorn.Server:
    """Start ``app`` in this event loop and return the running server (for the demo and tests)."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on", **UVICORN_DEFAULTS)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server exited during startup")
        await asyncio.sleep(0.01)
    server._distillguard_task = task  # type: ignore[attr-defined]
    return server
