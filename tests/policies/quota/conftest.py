"""Stores for the quota tests: the memory store and a real Redis, behind the same interface."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.state.base import StateStore
from gateway.state.memory import MemoryStore
from gateway.state.redis import RedisStore
from tests.support import RedisProcess


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis_server: RedisProcess) -> AsyncIterator[StateStore]:
    """Each backend in turn, with a fresh key prefix so tests never see each other's state."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        yield MemoryStore(prefix)
        return
    redis_store = RedisStore(redis_server.url, prefix)
    yield redis_store
    await redis_store.close()
