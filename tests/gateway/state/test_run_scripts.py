"""``run_scripts``: independent atomic calls of one script in one go, on each backend."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.state.base import Script, StoreUnavailableError
from gateway.state.memory import MemoryStore
from gateway.state.redis import RedisStore
from tests.support import RedisProcess, free_port


def _add_local(store: Any, keys: Any, args: Any) -> int:
    value = int(store.get_value(keys[0], 0.0) or 0) + int(args[0])
    store.set_value(keys[0], value, 0, 0.0)
    return value


ADD = Script("test_add", "return redis.call('INCRBY', KEYS[1], ARGV[1])", _add_local)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_each_call_runs_once_and_answers_in_order(backend: str, redis_server: RedisProcess) -> None:
    store: Any = MemoryStore("rs") if backend == "memory" else RedisStore(redis_server.url, "rs")
    if backend == "redis":
        await store.client.flushdb()
        await store.client.script_flush()  # the pipeline meets NOSCRIPT and falls back to EVAL
    calls = [([store.key("a")], [1]), ([store.key("b")], [5]), ([store.key("a")], [2])]
    assert [int(x) for x in await store.run_scripts(ADD, calls)] == [1, 5, 3]
    assert [int(x) for x in await store.run_scripts(ADD, calls)] == [4, 10, 6], "cached script"
    if backend == "redis":
        await store.close()


async def test_an_unreachable_node_fails_every_call_without_raising() -> None:
    dead = RedisStore(f"redis://127.0.0.1:{free_port()}/0", "rs", timeout_seconds=0.2)
    results = await dead.run_scripts(ADD, [([dead.key("a")], [1]), ([dead.key("b")], [1])])
    assert all(isinstance(r, StoreUnavailableError) for r in results)
    await dead.close()
