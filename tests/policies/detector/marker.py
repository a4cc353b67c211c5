"""A test-only policy that labels responses with its config, to show which risk-level pipeline served."""

from __future__ import annotations

from gateway.plugins.base import Exchange, Policy, PolicyConfig


class MarkerConfig(PolicyConfig):
    label: str = "none"


class MarkerPolicy(Policy[MarkerConfig]):
    config_model = MarkerConfig

    async def on_request(self, exchange: Exchange) -> None:
        exchange.response_headers["x-risk-marker"] = self.config.label
