"""Running the gateway and the mock under uvicorn (uvloop + httptools)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tempfile
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from gateway.app import STOP_DEADLINE_SECONDS, create_app
from gateway.config.loader import check_workers, load_config
from gateway.config.schema import GatewayConfig
from gateway.cpu_quota import usable_cpus
from gateway.http_protocol import CoalescingHttpToolsProtocol
from gateway.logs import configure_logging

log = logging.getLogger("distillguard.server")

UVICORN_DEFAULTS: dict[str, Any] = {
    "loop": "uvloop",
    "http": CoalescingHttpToolsProtocol,  # httptools, with one write per loop iteration
    "server_header": False,
    # No WebSocket route is declared: an upgrade is answered as the plain HTTP request it is, and
    # uvicorn's WebSocket protocol stack is not loaded into every worker (~2.6 MB resident).
    "ws": "none",
    "date_header": True,
    "access_log": False,  # the gateway writes its own JSON access log
    # uvicorn would believe X-Forwarded-For from 127.0.0.1; the YAML's trusted_proxies decides instead.
    "proxy_headers": False,
    "timeout_graceful_shutdown": 30,
    # Keep-alive, header and body deadlines and header limits come from the app's `limits:` (see
    # gateway.http_protocol), so the single-process and the worker paths apply the same file.
    "backlog": 4096,
}


def default_workers() -> int:
    """One worker per CPU this process may use: CPU affinity, capped by a container's CPU quota."""
    return usable_cpus()


class ListenerError(Exception):
    """A listener's address cannot be bound (in use, not local, no permission)."""


def bind_socket(host: str, port: int, name: str) -> socket.socket:
    """A bound TCP socket for ``host:port``, inheritable by worker processes; ``name`` is for errors."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenerError(f"cannot listen on {host}:{port} for the {name}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def bind_listeners(
    cfg: GatewayConfig,
    *,
    host: str | None = None,
    port: int | None = None,
    operator_host: str | None = None,
    operator_port: int | None = None,
) -> tuple[socket.socket, socket.socket]:
    """The public socket and the operator socket, bound in this process before any worker starts.

    Arguments given here win over the YAML's ``listen`` and ``operator``.
    """
    public = bind_socket(host or cfg.listen.host, cfg.listen.port if port is None else port, "public API")
    try:
        operator = bind_socket(
            operator_host or cfg.operator.host,
            cfg.operator.port if operator_port is None else operator_port,
            "operator listener (/metrics, /admin)",
        )
    except ListenerError:
        public.close()
        raise
    if operator.getsockname()[1] == public.getsockname()[1]:
        # Both bound (different hosts, same port): requests could not be told apart.
        public.close()
        operator.close()
        raise ListenerError("the operator listener needs a port of its own, not the public API's")
    return public, operator


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    config_path: str,
    *,
    host: str | None = None,
    port: int | None = None,
    operator_host: str | None = None,
    operator_port: int | None = None,
    workers: int = 1,
    keys_file: str | None = None,
    upstream_url: str | None = None,
    drain_timeout: int | None = None,
    stop_timeout: int | None = None,
) -> None:
    """Validate the config, then serve it (in ``workers`` processes when more than one).

    Both listeners are bound here, before any worker starts; every worker serves both and
    routes each request by the socket it arrived on (see ``gateway/app.py``).

    On SIGTERM the listening sockets close at once; requests and streams in
    flight get ``drain_timeout`` seconds (default 30) to finish before they are
    cancelled; the policies then get ``stop_timeout`` seconds (default 15) to flush and close
    before the process dumps its threads' stacks to the log and exits. A deployment's
    termination grace period must exceed the two together.
    """
    options = dict(UVICORN_DEFAULTS)
    stop_deadline = float(STOP_DEADLINE_SECONDS if stop_timeout is None else stop_timeout)
    if drain_timeout is not None:
        options["timeout_graceful_shutdown"] = drain_timeout
    loaded = load_config(config_path, keys_file=keys_file, upstream_url=upstream_url)
    check_workers(loaded, workers)
    cfg = loaded.gateway
    configure_logging(cfg.logging.level)
    public, operator = bind_listeners(
        cfg, host=host, port=port, operator_host=operator_host, operator_port=operator_port
    )
    bound_operator_port = int(operator.getsockname()[1])
    log.info(
        "public API on %s; operator listener (/metrics, /admin) on %s", _address(public), _address(operator)
    )
    sockets = [public, operator]
    if workers > 1:
        # Workers import the app by name and read their options from the environment.
        os.environ["DISTILLGUARD_CONFIG"] = os.path.abspath(config_path)
        os.environ["DISTILLGUARD_KEYS_FILE"] = os.path.abspath(keys_file) if keys_file else ""
        os.environ["DISTILLGUARD_UPSTREAM"] = upstream_url or ""
        os.environ["DISTILLGUARD_WORKERS"] = str(workers)
        os.environ["DISTILLGUARD_OPERATOR_PORT"] = str(bound_operator_port)
        os.environ["DISTILLGUARD_STOP_TIMEOUT"] = str(stop_deadline)
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="distillguard-metrics-"))
        config = uvicorn.Config(
            "gateway.app:app_from_env", factory=True, workers=workers, log_config=None, **options
        )
        with contextlib.suppress(KeyboardInterrupt):
            Multiprocess(config, sockets=sockets).run()
        return
    app = create_app(
        lambda: load_config(config_path, keys_file=keys_file, upstream_url=upstream_url),
        loaded,
        operator_port=bound_operator_port,
        stop_deadline=stop_deadline,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, **options))
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=sockets)


def serve_mock(host: str = "127.0.0.1", port: int = 9100) -> None:
    from gateway.mock.server import create_mock_app

    configure_logging("info")
    uvicorn.run(create_mock_app(), host=host, port=port, log_config=None, **UVICORN_DEFAULTS)


async def serve_async(
    app: Any, host: str, port: int, operator: tuple[str, int] | None = None
) -> uvicorn.Server:
    """Start ``app`` in this event loop and return the running server (for the demo and tests).

    With ``operator`` (host, port; port 0 picks one), a gateway app also gets its operator
    listener, whose bound port is then ``app.operator_port``.
    """
    config = uvicorn.Config(app, log_config=None, lifespan="on", **UVICORN_DEFAULTS)
    sockets = [bind_socket(host, port, "public API")]
    if operator is not None:
        sockets.append(bind_socket(*operator, "operator listener (/metrics, /admin)"))
        app.operator_port = int(sockets[1].getsockname()[1])
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server exited during startup")
        await asyncio.sleep(0.01)
    server._distillguard_task = task  # type: ignore[attr-defined]
    return server
