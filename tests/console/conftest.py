"""Fixtures of the console tests: the scenario's gateway (with the admin token and watermark key set)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.console.scenario import ENV, console_config
from tests.support import GatewayHandle, MockHandle


@pytest.fixture
def console_gateway(
    start_gateway: Callable[..., GatewayHandle],
    mock_upstream: MockHandle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> GatewayHandle:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return start_gateway(console_config(mock_upstream.url, tmp_path))
