"""A policy whose shutdown never returns, loaded by name in tests/gateway/test_server_drain.py."""

from __future__ import annotations

import time

from gateway.plugins import Policy, PolicyConfig


class StuckAtShutdownPolicy(Policy[PolicyConfig]):
    config_model = PolicyConfig

    async def shutdown(self) -> None:
        time.sleep(3600)  # noqa: ASYNC251 (blocks the event loop itself: nothing on the loop could end it)
