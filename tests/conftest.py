"""Shared fixtures: a mock model upstream, gateways in front of it, and a real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import GatewayHandle, MockHandle, RedisProcess, base_config


@pytest.fixture(scope="session")
def mock_upstream() -> Iterator[MockHandle]:
    handle = MockHandle().start()
    yield handle
    handle.stop()


@pytest.fixture
def start_gateway(mock_upstream: MockHandle, tmp_path: Any) -> Iterator[Callable[..., GatewayHandle]]:
    """``start_gateway(**config_overrides)`` -> a running gateway in front of the mock upstream."""
    started: list[GatewayHandle] = []

    def start(config: dict[str, Any] | None = None, **overrides: Any) -> GatewayHandle:
        cfg = config if config is not None else base_config(mock_upstream.url, **overrides)
        directory = tmp_path / f"gw{len(started)}"
        directory.mkdir()
        handle = GatewayHandle(cfg, directory).start()
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture
def gateway(start_gateway: Callable[..., GatewayHandle]) -> GatewayHandle:
    """A gateway with no policies (tiers free, pro, trusted)."""
    return start_gateway()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    """A real redis-server on a free port for the whole session (flushed by tests that need it)."""
    server = RedisProcess().start()
    yield server
    server.stop()
