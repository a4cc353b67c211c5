"""The chart's Redis topologies (redis.external.mode: standalone, cluster, sentinel).

Each mode is rendered, the pod's environment is resolved the way the kubelet does it (secret
references, ``$(VAR)`` expansion), and the rendered policy is loaded by the gateway's own config
loader and store factory: a chart value the gateway's schema refuses fails here. The cluster and
sentinel renders are then pointed at a real 3-master Redis Cluster and a real Sentinel group and
must make quota decisions there.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import pytest
import yaml

from gateway.config.loader import load_config_text
from gateway.config.schema import StateConfig
from gateway.errors import ConfigError, RateLimitError
from gateway.state.factory import create_store
from gateway.state.redis import RedisStore
from tests.deploy.chart_rendering import (
    CHART,
    KUBERNETES_VERSIONS,
    ROOT,
    Manifest,
    docs_for,
    env_of,
    gateway_container,
    policy_of,
    render,
    validate,
)
from tests.deploy.test_values_schema import check
from tests.policies.quota.helpers import chat, ended, harness
from tests.redis_topologies import RedisClusterProcesses, SentinelProcesses

SENTINELS = [
    "redis-sentinel-0.redis-sentinel:26379",
    "redis-sentinel-1.redis-sentinel:26379",
    "[fd00::7]:26379",
]


def external(mode: str, **fields: Any) -> dict[str, Any]:
    return {"redis": {"mode": "external", "external": {"mode": mode, **fields}}}


def sentinel_values(addresses: list[str], service: str, db: int = 0, secret: str = "") -> dict[str, Any]:
    auth = {"existingSecret": secret} if secret else {}
    return external(
        "sentinel", sentinel={"addresses": addresses, "serviceName": service, "db": db, "auth": auth}
    )


class PodWouldNotStart(Exception):
    """A required secret reference has no value: the kubelet does not start the container."""


def pod_environment(docs: list[Manifest], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The gateway container's environment as the kubelet builds it: secretKeyRef values looked up in
    ``secrets``, ``$(VAR)`` expanded from the variables defined earlier in the list."""
    environment: dict[str, str] = {}
    for entry in gateway_container(docs).get("env", []):
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            value = secrets.get(ref["name"], {}).get(ref["key"])
            if value is None:
                if not ref.get("optional"):
                    raise PodWouldNotStart(f"{entry['name']}: secret {ref['name']} has no key {ref['key']}")
                continue
        else:
            value = re.sub(r"\$\((\w+)\)", lambda m: environment.get(m.group(1), m.group(0)), entry["value"])
        environment[entry["name"]] = value
    return environment


def rendered_state(
    values: dict[str, Any], secrets: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> StateConfig:
    """The state section the gateway loads from the chart's render, with the pod's environment set."""
    docs = docs_for(values)
    for name in ("DISTILLGUARD_REDIS_URL", "DISTILLGUARD_REDIS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in pod_environment(docs, secrets).items():
        monkeypatch.setenv(name, value)
    return load_config_text(policy_of(docs)).gateway.state


# --- what each mode renders ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "secrets", "expected"),
    [
        ({}, {}, {"mode": "standalone", "url": "redis://dg-distillguard-redis.ai.svc:6379/0"}),
        (
            {"redis": {"mode": "bundled", "bundled": {"auth": {"existingSecret": "rp"}}}},
            {"rp": {"redis-password": "s3cret"}},
            {"mode": "standalone", "url": "redis://:s3cret@dg-distillguard-redis.ai.svc:6379/0"},
        ),
        (
            external("standalone", url="rediss://cache:6380/3"),
            {},
            {"mode": "standalone", "url": "rediss://cache:6380/3"},
        ),
        (
            external("cluster", url="redis://redis-cluster.data.svc:6379"),
            {},
            {"mode": "cluster", "url": "redis://redis-cluster.data.svc:6379"},
        ),
        (
            external("cluster", existingSecret="rc"),
            {"rc": {"redis-url": "rediss://:pw@redis-cluster.data.svc:6379/0"}},
            {"mode": "cluster", "url": "rediss://:pw@redis-cluster.data.svc:6379/0"},
        ),
    ],
    ids=["bundled", "bundled-auth", "standalone-tls", "cluster-url", "cluster-secret"],
)
def test_url_modes_render_a_state_section_the_gateway_loads(
    values: dict[str, Any],
    secrets: dict[str, dict[str, str]],
    expected: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = rendered_state(values, secrets, monkeypatch)
    assert (state.backend, state.mode, state.url, state.url_env) == (
        "redis",
        expected["mode"],
        None,
        "DISTILLGUARD_REDIS_URL",
    )
    assert state.sentinels == [] and state.service_name is None and state.password_env is None
    assert os.environ["DISTILLGUARD_REDIS_URL"] == expected["url"]
    store = create_store(state)
    assert isinstance(store, RedisStore) and store.mode == expected["mode"]


def test_sentinel_mode_renders_addresses_service_db_and_the_password_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = sentinel_values(SENTINELS, "mymaster", db=2, secret="redis-auth")
    docs = docs_for(values)
    env = env_of(gateway_container(docs))
    assert "DISTILLGUARD_REDIS_URL" not in env  # the gateway refuses a url in sentinel mode
    ref = env["DISTILLGUARD_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("redis-auth", "redis-password")

    state = rendered_state(values, {"redis-auth": {"redis-password": "pw"}}, monkeypatch)
    assert (state.mode, state.sentinels, state.service_name, state.db) == (
        "sentinel",
        SENTINELS,
        "mymaster",
        2,
    )
    assert state.url is None and state.url_env is None
    assert state.password_env == "DISTILLGUARD_REDIS_PASSWORD"
    assert isinstance(create_store(state), RedisStore)
    # The Secret without the key: the pod does not start (the reference is not optional); and
    # should the variable be unset anyway, the gateway refuses to start and names it.
    with pytest.raises(PodWouldNotStart, match="DISTILLGUARD_REDIS_PASSWORD"):
        rendered_state(values, {}, monkeypatch)
    monkeypatch.delenv("DISTILLGUARD_REDIS_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="DISTILLGUARD_REDIS_PASSWORD") as caught:
        create_store(state)
    assert caught.value.path == "state.password_env"


def test_sentinel_mode_without_auth_sets_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    state = rendered_state(sentinel_values(SENTINELS[:1], "mymaster"), {}, monkeypatch)
    assert state.password_env is None and state.db == 0
    assert not any(
        "REDIS" in name for name in env_of(gateway_container(docs_for(sentinel_values(SENTINELS[:1], "m"))))
    )


def test_the_policy_state_topology_is_replaced_not_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    """A policy written for Sentinel, deployed with the bundled Redis (or a cluster): the chart's
    topology wins whole, the policy's key_prefix and timeout are kept."""
    policy = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    policy["state"] = {
        "backend": "redis",
        "mode": "sentinel",
        "sentinels": ["old-sentinel:26379"],
        "service_name": "old",
        "db": 4,
        "password_env": "OLD_PASSWORD",
        "key_prefix": "mine",
        "timeout_seconds": 0.2,
    }
    text = yaml.safe_dump(policy)
    state = rendered_state({"policy": {"yaml": text}}, {}, monkeypatch)
    assert (state.mode, state.url_env, state.sentinels, state.db, state.password_env) == (
        "standalone",
        "DISTILLGUARD_REDIS_URL",
        [],
        0,
        None,
    )
    assert (state.key_prefix, state.timeout_seconds) == ("mine", 0.2)
    cluster = {**external("cluster", url="redis://c:6379"), "policy": {"yaml": text}}
    assert rendered_state(cluster, {}, monkeypatch).mode == "cluster"
    policy["state"] = {"backend": "redis", "url": "redis://old:6379/5", "key_prefix": "mine"}
    moved = rendered_state(
        {**sentinel_values(SENTINELS, "m"), "policy": {"yaml": yaml.safe_dump(policy)}}, {}, monkeypatch
    )
    assert (moved.mode, moved.url, moved.key_prefix) == ("sentinel", None, "mine")


@pytest.mark.parametrize(
    "values",
    [external("cluster", existingSecret="rc"), sentinel_values(SENTINELS, "mymaster", secret="redis-auth")],
    ids=["cluster", "sentinel"],
)
def test_external_topologies_lint_clean_and_validate(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBERNETES_VERSIONS[0]}")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
    docs = docs_for(values)
    assert [doc for doc in docs if doc["kind"] == "StatefulSet"] == []  # no bundled Redis
    for version in KUBERNETES_VERSIONS:
        for doc in docs:
            validate(doc, version)


# --- values the chart refuses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "where"),
    [
        (external("replicated", url="redis://r:6379"), "/redis/external/mode"),
        (sentinel_values(["sentinel-0"], "m"), "/redis/external/sentinel/addresses/0"),
        (sentinel_values(["sentinel-0:70000"], "m"), "/redis/external/sentinel/addresses/0"),
        (sentinel_values(["s:26379", "s:26379"], "m"), "/redis/external/sentinel/addresses"),
        (sentinel_values(["s:26379"], "my master"), "/redis/external/sentinel/serviceName"),
        (sentinel_values(["s:26379"], "m", db=16), "/redis/external/sentinel/db"),
        (external("sentinel", sentinel={"password": "x"}), "password"),
        (
            external("sentinel", sentinel={"auth": {"existingSecret": "Bad_Name"}}),
            "/redis/external/sentinel/auth",
        ),
    ],
)
def test_bad_topology_values_fail_the_schema(values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        check(values)
    assert where in str(caught.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (external("cluster"), "redis.mode external needs redis.external.url or"),
        (external("sentinel"), "sentinel needs redis.external.sentinel.addresses"),
        (sentinel_values(SENTINELS, ""), "sentinel needs redis.external.sentinel.addresses"),
        (
            {
                "redis": {
                    "mode": "external",
                    "external": {
                        "mode": "sentinel",
                        "url": "redis://r:6379",
                        "sentinel": {"addresses": SENTINELS, "serviceName": "m"},
                    },
                }
            },
            "redis.external.url and redis.external.existingSecret are for modes standalone and cluster",
        ),
        (
            external("standalone", url="redis://r:6379", sentinel={"addresses": SENTINELS}),
            r"redis.external.sentinel is for redis.external.mode sentinel \(the mode is standalone\)",
        ),
        (external("cluster", url="redis://r:6379/2"), "Redis Cluster has only database 0"),
        (
            {"redis": {"mode": "bundled", "external": {"mode": "cluster"}}},
            "redis.external.mode cluster needs redis.mode external",
        ),
        (
            {"redis": {"mode": "none", "external": {"mode": "sentinel"}}},
            "redis.external.mode sentinel needs redis.mode external",
        ),
    ],
)
def test_contradictory_topology_values_fail_the_render(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(values)


# --- the rendered config against real Redis topologies -----------------------------------------------


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisClusterProcesses]:
    processes = RedisClusterProcesses().start()
    yield processes
    processes.stop()


async def _quota_holds(state: StateConfig, accounts: list[str]) -> None:
    """Two requests a minute per account, decided in the store the rendered config names."""
    store = create_store(state)
    try:
        h = await harness(store, {"requests_per_minute": 2})
        for account in accounts:
            for _ in range(2):
                exchange = h.exchange("chat.completions", chat(), account=account)
                await h.request(exchange)
                ended(exchange)
                await h.after(exchange)
            with pytest.raises(RateLimitError):
                await h.request(h.exchange("chat.completions", chat(), account=account))
    finally:
        await store.close()


async def test_rendered_cluster_config_decides_quotas_on_a_real_cluster(
    redis_cluster: RedisClusterProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    policy = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    policy["state"] = {"key_prefix": prefix}
    values = {**external("cluster", existingSecret="rc"), "policy": {"yaml": yaml.safe_dump(policy)}}
    state = rendered_state(values, {"rc": {"redis-url": redis_cluster.url}}, monkeypatch)
    accounts = [f"acct-{n}" for n in range(8)]
    await _quota_holds(state, accounts)
    store = create_store(state)
    try:
        owners = {redis_cluster.port_of_slot(store.slot(store.tagged(a, "x"))) for a in accounts}
    finally:
        await store.close()
    assert len(owners) > 1, "the accounts' keys should spread over the cluster's masters"


async def test_rendered_sentinel_config_decides_quotas_through_a_real_sentinel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topology = SentinelProcesses().start()
    try:
        state = rendered_state(sentinel_values(topology.sentinels, topology.service), {}, monkeypatch)
        await _quota_holds(state, ["acct-a", "acct-b"])
    finally:
        topology.stop()
