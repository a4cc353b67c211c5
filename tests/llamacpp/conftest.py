"""Fixtures for the end-to-end tests against a real llama.cpp server (marker ``llamacpp``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.llamacpp.server import LlamaServer
from tests.support import GatewayHandle, base_config, free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/llamacpp/" in str(item.fspath):
            item.add_marker(pytest.mark.llamacpp)


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    server = LlamaServer(free_port()).wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llama_plain_server() -> Iterator[LlamaServer]:
    """The same model with its own chat template: plain answers, no reasoning block."""
    server = LlamaServer(free_port(), reasoning=False).wait_ready()
    yield server
    server.stop()


@pytest.fixture
def llama_gateway(
    llama_server: LlamaServer, start_gateway: Callable[..., GatewayHandle]
) -> Callable[..., GatewayHandle]:
    """``llama_gateway(policies_by_tier, server=None, extra_parameters=None)`` -> a gateway, llama.cpp."""

    def start(
        policies: dict[str, list[dict[str, Any]]] | None = None,
        server: LlamaServer | None = None,
        extra_parameters: list[str] | None = None,
        **overrides: Any,
    ) -> GatewayHandle:
        cfg = base_config((server or llama_server).url, **overrides)
        for upstream in cfg["upstreams"]:
            upstream["timeouts"] = {"connect": 5, "first_byte": 120, "idle": 60, "total": 300}
            if extra_parameters:
                upstream["extra_parameters"] = extra_parameters
        for tier, tier_policies in (policies or {}).items():
            cfg["tiers"][tier]["policies"] = tier_policies
        return start_gateway(cfg)

    return start
