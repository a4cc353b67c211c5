"""The chart's secret references and its Redis modes (bundled, with auth and persistence, external, none)."""

from __future__ import annotations

from gateway.config.loader import load_config_text
from tests.deploy.chart_rendering import (
    CHART,
    docs_for,
    env_of,
    full_values,
    gateway_container,
    of_kind,
    one,
    policy_of,
)


def test_no_secret_is_referenced_by_default() -> None:
    container = gateway_container(docs_for())
    assert not [e for e in container["env"] if "valueFrom" in e]
    assert "DISTILLGUARD_KEYS_FILE" not in env_of(container)


def test_secret_references() -> None:
    container = gateway_container(docs_for(full_values()))
    env = env_of(container)
    expected = {
        "UPSTREAM_API_KEY": ("distillguard-secrets", "upstream-api-key", False),
        "ANTHROPIC_API_KEY": ("anthropic", "api-key", True),
        "DISTILLGUARD_WATERMARK_KEY": ("distillguard-secrets", "watermark-key", True),
        "DISTILLGUARD_SEAL_KEY": ("distillguard-secrets", "seal-key", True),
        "DISTILLGUARD_LOGPROB_NOISE_KEY": ("distillguard-secrets", "logprob-noise-key", True),
        "DISTILLGUARD_ADMIN_TOKEN": ("distillguard-secrets", "admin-token", True),
        "JWT_SECRET": ("jwt", "hmac", True),
    }
    for name, (secret, key, optional) in expected.items():
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"], ref["optional"]) == (secret, key, optional), name
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), "an env var is defined twice"
    keys_volume = next(
        v
        for v in one(docs_for(full_values()), "Deployment")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "keys"
    )
    assert keys_volume["secret"] == {
        "secretName": "distillguard-keys",
        "items": [{"key": "keys.jsonl", "path": "keys.jsonl"}],
    }


def test_bundled_redis_without_auth() -> None:
    docs = docs_for()
    env = env_of(gateway_container(docs))
    assert env["DISTILLGUARD_REDIS_URL"]["value"] == "redis://dg-distillguard-redis.ai.svc:6379/0"
    redis = one(docs, "StatefulSet")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--requirepass" not in args
    assert args[args.index("--appendonly") + 1] == "no"
    assert "volumeClaimTemplates" not in redis["spec"]


def test_bundled_redis_with_auth_and_persistence() -> None:
    docs = docs_for(full_values())
    container = gateway_container(docs)
    names = [e["name"] for e in container["env"]]
    # Kubernetes expands $(VAR) only from variables defined earlier in the list.
    assert names.index("DISTILLGUARD_REDIS_PASSWORD") < names.index("DISTILLGUARD_REDIS_URL")
    env = env_of(container)
    assert env["DISTILLGUARD_REDIS_URL"]["value"] == (
        "redis://:$(DISTILLGUARD_REDIS_PASSWORD)@dg-distillguard-redis.ai.svc:6379/0"
    )
    redis = one(docs, "StatefulSet")["spec"]
    server = redis["template"]["spec"]["containers"][0]
    assert server["args"][server["args"].index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert server["args"][server["args"].index("--appendonly") + 1] == "yes"
    claim = redis["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "fast-ssd" and claim["resources"]["requests"]["storage"] == "2Gi"


def test_external_redis() -> None:
    by_url = docs_for({"redis": {"mode": "external", "external": {"url": "rediss://cache.internal:6380/2"}}})
    assert of_kind(by_url, "StatefulSet") == []
    assert (
        env_of(gateway_container(by_url))["DISTILLGUARD_REDIS_URL"]["value"]
        == "rediss://cache.internal:6380/2"
    )
    by_secret = docs_for({"redis": {"mode": "external", "external": {"existingSecret": "redis-conn"}}})
    ref = env_of(gateway_container(by_secret))["DISTILLGUARD_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("redis-conn", "redis-url")


def test_redis_mode_none_leaves_the_policy_state_alone() -> None:
    docs = docs_for({"redis": {"mode": "none"}})
    assert of_kind(docs, "StatefulSet") == []
    assert "DISTILLGUARD_REDIS_URL" not in env_of(gateway_container(docs))
    shipped = load_config_text((CHART / "files" / "policy.yaml").read_text()).gateway
    assert load_config_text(policy_of(docs)).gateway.state == shipped.state


def test_secret_env_entries_can_be_added_and_removed() -> None:
    # A null drops a default entry (Helm removes null keys when it merges values).
    values = {
        "secrets": {
            "existingSecret": "s",
            "env": {"ANTHROPIC_API_KEY": None, "DISTILLGUARD_SEAL_KEY_2": {"key": "seal-key-2"}},
        }
    }
    env = env_of(gateway_container(docs_for(values)))
    assert "ANTHROPIC_API_KEY" not in env
    assert env["DISTILLGUARD_SEAL_KEY_2"]["valueFrom"]["secretKeyRef"]["key"] == "seal-key-2"
    assert env["DISTILLGUARD_SEAL_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "seal-key"
