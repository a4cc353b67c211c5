"""Choosing the state backend from the config."""

from __future__ import annotations

import os

from gateway.config.schema import StateConfig
from gateway.errors import ConfigError
from gateway.state.base import StateStore
from gateway.state.memory import MemoryStore


def create_store(config: StateConfig) -> StateStore:
    """The store the config selects (not yet connected)."""
    if config.backend == "memory":
        return MemoryStore(config.key_prefix)
    url = config.url or os.environ.get(config.url_env or "", "")
    if not url:
        raise ConfigError(f"environment variable {config.url_env} is not set", path="state.url_env")
    from gateway.state.redis import RedisStore

    return RedisStore(url, config.key_prefix, config.timeout_seconds)
