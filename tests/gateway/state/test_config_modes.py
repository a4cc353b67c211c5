"""``state.mode``: the Redis topology is chosen in the YAML; a misconfigured one is refused with its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config.schema import StateConfig
from gateway.errors import ConfigError
from gateway.state.factory import create_store
from gateway.state.memory import MemoryStore
from gateway.state.redis import RedisStore
from tests.gateway.config.test_loader import config, refused


@pytest.mark.parametrize(
    ("state", "path", "reason"),
    [
        ({"backend": "memory", "mode": "cluster"}, "state.mode", "needs backend: redis"),
        ({"backend": "redis", "mode": "sentinel", "service_name": "m"}, "state.sentinels", "at least one"),
        ({"backend": "redis", "mode": "sentinel", "sentinels": ["s1:26379"]}, "state.service_name", "needs"),
        (
            {"backend": "redis", "mode": "sentinel", "sentinels": ["s1"], "service_name": "m"},
            "state.sentinels",
            "not host:port",
        ),
        (
            {
                "backend": "redis",
                "mode": "sentinel",
                "url": "redis://x:1",
                "sentinels": ["s:1"],
                "service_name": "m",
            },
            "state.url",
            "not a url",
        ),
        ({"backend": "redis", "mode": "cluster", "url": "redis://n1:7000/3"}, "state.url", "only database 0"),
        (
            {"backend": "redis", "mode": "cluster", "sentinels": ["s:1"], "url": "redis://n:1"},
            "state.sentinels",
            "for mode",
        ),
        ({"backend": "redis", "url": "redis://n:1", "service_name": "m"}, "state.service_name", "for mode"),
        ({"backend": "redis", "mode": "cluster"}, "state", "needs url or url_env"),
        ({"backend": "redis", "mode": "clustered", "url": "redis://n:1"}, "state.mode", ""),
    ],
)
def test_misconfigured_topologies_are_refused_with_their_key(
    state: dict[str, Any], path: str, reason: str, tmp_path: Path
) -> None:
    error = refused(config(state=state), tmp_path)
    assert error.path == path, error
    assert reason in error.reason


def test_each_mode_builds_its_client() -> None:
    assert isinstance(create_store(StateConfig()), MemoryStore)
    standalone = create_store(StateConfig(backend="redis", url="redis://127.0.0.1:1/0"))
    assert isinstance(standalone, RedisStore) and standalone.mode == "standalone" and not standalone.clustered
    cluster = create_store(StateConfig(backend="redis", mode="cluster", url="redis://127.0.0.1:1"))
    assert isinstance(cluster, RedisStore) and cluster.clustered
    assert type(cluster.client).__name__ == "RedisCluster"
    sentinel = create_store(
        StateConfig(backend="redis", mode="sentinel", sentinels=["127.0.0.1:1", "[::1]:2"], service_name="m")
    )
    assert isinstance(sentinel, RedisStore) and sentinel.mode == "sentinel"
    assert type(sentinel.client.connection_pool).__name__ == "SentinelConnectionPool"


def test_sentinel_password_env_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DG_TEST_REDIS_PASSWORD", raising=False)
    cfg = StateConfig(
        backend="redis",
        mode="sentinel",
        sentinels=["127.0.0.1:1"],
        service_name="m",
        password_env="DG_TEST_REDIS_PASSWORD",
    )
    with pytest.raises(ConfigError) as info:
        create_store(cfg)
    assert info.value.path == "state.password_env"


def test_keys_of_one_decision_share_a_slot_only_on_a_cluster() -> None:
    one_node = RedisStore("redis://127.0.0.1:1/0", "dg")
    assert one_node.tagged("acct-1", "det", "acct", "acct-1") == "dg:det:acct:acct-1", "names unchanged"
    cluster = create_store(StateConfig(backend="redis", mode="cluster", url="redis://127.0.0.1:1"))
    first, second = cluster.tagged("pins", "pins"), cluster.tagged("pins", "pins", "version")
    assert first == "dg:{pins}:pins" and cluster.slot(first) == cluster.slot(second)
    # A tag with a brace would end the tag early (an attacker-chosen account id could pick the
    # slot of someone else's keys): it is replaced by its digest.
    odd = cluster.tagged("a}b{c", "det", "acct", "a}b{c")
    assert odd.count("{") == 2 and "{a}" not in odd
