"""A test-only policy that labels responses with its config, to show which risk-level pipeline served."""

from __future__ import annotations

from typing import Annotated

from gateway.plugins.base import Exchange, Policy, PolicyConfig
from gateway.plugins.strictness import NEUTRAL


class MarkerConfig(PolicyConfig):
    label: Annotated[str, NEUTRAL] = "none"  # says which risk level's pipeline served


class MarkerPolicy(Policy[MarkerConfig]):
    config_model = MarkerConfig

    async def on_request(self, exchange: Exchange) -> None:
        exchange.response_headers["x-risk-marker"] = self.config.label
