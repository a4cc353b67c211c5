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
    from gateway.state.redis import RedisStore, cluster_client, sentinel_client

    if config.mode == "sentinel":
        password = None
        if config.password_env:
            password = os.environ.get(config.password_env)
            if not password:
                raise ConfigError(
                    f"environment variable {config.password_env} is not set", path="state.password_env"
                )
        assert config.service_name is not None  # validated with the mode
        sentinel = sentinel_client(
            config.sentinels, config.service_name, config.timeout_seconds, config.db, password
        )
        return RedisStore(key_prefix=config.key_prefix, client=sentinel, mode="sentinel")
    url = config.url or os.environ.get(config.url_env or "", "")
    if not url:
        raise ConfigError(f"environment variable {config.url_env} is not set", path="state.url_env")
    if config.mode == "cluster":
        cluster = cluster_client(url, config.timeout_seconds)
        return RedisStore(key_prefix=config.key_prefix, client=cluster, mode="cluster")
    return RedisStore(url, config.key_prefix, config.timeout_seconds)
