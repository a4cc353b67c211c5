"""The ``state:`` section of the policy YAML: where shared state lives and which Redis topology serves it."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from gateway.config.strict import Strict

_HOST_PORT = re.compile(r"^[A-Za-z0-9_.-]+:[0-9]{1,5}$|^\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}$")


class StateConfig(Strict):
    """Where shared state lives (``gateway/state``): this process, or Redis in one of three topologies.

    ``mode`` picks the Redis client: ``standalone`` (one node, ``url``), ``cluster`` (Redis Cluster;
    ``url`` names any node, the others are discovered; keys of one decision share a hash slot) or
    ``sentinel`` (the master of ``service_name`` as the ``sentinels`` report it, followed across
    failovers). Fields that another mode needs are refused with their key.
    """

    backend: Literal["memory", "redis"] = "memory"
    mode: Literal["standalone", "cluster", "sentinel"] = Field(
        "standalone", description="the Redis topology (backend: redis only)"
    )
    url: str | None = Field(None, description="redis://host:port/db (or set url_env); cluster: any node")
    url_env: str | None = None
    sentinels: list[str] = Field(
        default_factory=list, validate_default=True, description="sentinel mode: host:port of each sentinel"
    )
    service_name: str | None = Field(
        None, validate_default=True, description="sentinel mode: the monitored master's name"
    )
    db: int = Field(0, ge=0, le=15, description="sentinel mode: database number")
    password_env: str | None = Field(
        None, description="sentinel mode: env var holding the Redis password (of the master and replicas)"
    )
    key_prefix: str = Field("dg", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    timeout_seconds: float = Field(0.5, gt=0)

    @field_validator("mode")
    @classmethod
    def _mode_needs_redis(cls, value: str, info: Any) -> str:
        if value != "standalone" and info.data.get("backend") != "redis":
            raise ValueError(f"mode '{value}' needs backend: redis")
        return value

    @field_validator("url")
    @classmethod
    def _url_fits_mode(cls, value: str | None, info: Any) -> str | None:
        mode = info.data.get("mode")
        if value is None:
            return value
        if mode == "sentinel":
            raise ValueError("sentinel mode takes sentinels and service_name, not a url")
        database = re.match(r"^[a-z]+://[^/?#]*/(\d+)", value)
        if mode == "cluster" and database is not None and int(database.group(1)) != 0:
            raise ValueError("Redis Cluster has only database 0")
        return value

    @field_validator("url_env")
    @classmethod
    def _url_env_fits_mode(cls, value: str | None, info: Any) -> str | None:
        if value is not None and info.data.get("mode") == "sentinel":
            raise ValueError("sentinel mode takes sentinels and service_name, not a url")
        return value

    @field_validator("sentinels")
    @classmethod
    def _sentinel_addresses(cls, value: list[str], info: Any) -> list[str]:
        mode = info.data.get("mode")
        if mode == "sentinel" and not value:
            raise ValueError("sentinel mode needs at least one sentinel (host:port)")
        if mode != "sentinel" and value:
            raise ValueError("sentinels are for mode: sentinel")
        for address in value:
            if not _HOST_PORT.match(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
                raise ValueError(f"'{address}' is not host:port")
        return value

    @field_validator("service_name")
    @classmethod
    def _service_name(cls, value: str | None, info: Any) -> str | None:
        mode = info.data.get("mode")
        if mode == "sentinel" and not value:
            raise ValueError("sentinel mode needs service_name (the master's name in the sentinels)")
        if mode != "sentinel" and value is not None:
            raise ValueError("service_name is for mode: sentinel")
        return value

    @model_validator(mode="after")
    def _redis_url(self) -> StateConfig:
        if self.backend == "redis" and self.mode != "sentinel" and not (self.url or self.url_env):
            raise ValueError("the redis backend needs url or url_env")
        if self.mode != "sentinel" and (self.db or self.password_env):
            raise ValueError("db and password_env are for mode: sentinel (else the url carries them)")
        return self
