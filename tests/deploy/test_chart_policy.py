"""The chart's policy ConfigMap: a config the gateway accepts, overlaid with the deployment's parts.

Also: the chart's copy of the shipped policy does not drift, and the policy is mounted so that hot
reload sees changes.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gateway.config.loader import load_config_text
from tests.deploy.chart_rendering import (
    CHART,
    ROOT,
    VALUE_SETS,
    docs_for,
    env_of,
    full_values,
    gateway_container,
    one,
    policy_of,
)


def test_chart_policy_is_the_shipped_default_policy() -> None:
    # Helm cannot read files outside the chart, so the chart carries a copy; it must not drift.
    assert (CHART / "files" / "policy.yaml").read_bytes() == (ROOT / "policies" / "default.yaml").read_bytes()


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_policy_configmap_is_a_config_the_gateway_accepts(value_set: str) -> None:
    loaded = load_config_text(policy_of(docs_for(VALUE_SETS[value_set])))
    cfg = loaded.gateway
    assert (cfg.listen.host, cfg.listen.port) == ("0.0.0.0", 8080)
    assert cfg.state.backend == "redis"
    assert cfg.state.url is None and cfg.state.url_env == "DISTILLGUARD_REDIS_URL"


def test_full_values_overlay_keeps_the_policy_and_sets_the_deployment_parts() -> None:
    cfg = load_config_text(policy_of(docs_for(full_values()))).gateway
    assert cfg.state.key_prefix == "dgprod" and cfg.state.timeout_seconds == 0.25
    assert {u.url for u in cfg.upstreams} == {"http://vllm.models.svc.cluster.local:8000"}
    assert [u.models for u in cfg.upstreams] == [["llama-*"], []]
    assert cfg.admin.token_env == "DISTILLGUARD_ADMIN_TOKEN"
    assert cfg.reload.interval_seconds == 5
    assert cfg.risk_levels["high"].block is True


def test_default_policy_keeps_its_upstreams_and_has_no_admin_token_without_secrets() -> None:
    cfg = load_config_text(policy_of(docs_for())).gateway
    shipped = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    assert [u.url for u in cfg.upstreams] == [u["url"] for u in shipped["upstreams"]]
    # No secret wires DISTILLGUARD_ADMIN_TOKEN by default, so the chart leaves the policy's admin alone.
    assert cfg.admin.token_env == (shipped.get("admin") or {}).get("token_env")


def test_policy_admin_token_env_is_kept_when_the_policy_sets_one() -> None:
    policy = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    policy["admin"] = {"token_env": "MY_ADMIN_TOKEN"}
    values = {"policy": {"yaml": yaml.safe_dump(policy)}, "secrets": {"existingSecret": "s"}}
    assert load_config_text(policy_of(docs_for(values))).gateway.admin.token_env == "MY_ADMIN_TOKEN"


def test_policy_without_overlay_is_mounted_verbatim() -> None:
    text = "# my policy, comments and all\n" + (ROOT / "policies" / "default.yaml").read_text()
    rendered = policy_of(docs_for({"policy": {"yaml": text, "overlay": False}}))
    assert rendered.endswith(text.rstrip("\n") + "\n")
    # redis.mode is not applied to the policy, but the URL variable is still there to point state.url_env at.
    assert load_config_text(rendered).gateway.state == load_config_text(text).gateway.state
    assert "DISTILLGUARD_REDIS_URL" in env_of(gateway_container(docs_for({"policy": {"overlay": False}})))


def test_config_change_rolls_pods_only_when_asked() -> None:
    def annotations(values: dict[str, Any]) -> dict[str, str]:
        return dict(one(docs_for(values), "Deployment")["spec"]["template"]["metadata"]["annotations"])

    assert not any(key.startswith("checksum/") for key in annotations({}))  # default: hot reload
    first = annotations({"policy": {"rollOnChange": True}})["checksum/policy"]
    edited = yaml.safe_load((CHART / "files" / "policy.yaml").read_text())
    edited["default_tier"] = sorted(edited["tiers"])[-1]
    second = annotations({"policy": {"rollOnChange": True, "yaml": yaml.safe_dump(edited)}})[
        "checksum/policy"
    ]
    assert len(first) == 64 and first != second
    assert annotations({"policy": {"rollOnChange": True}})["checksum/policy"] == first  # stable


def test_policy_is_mounted_as_a_directory_so_updates_reach_the_pod() -> None:
    container = gateway_container(docs_for(full_values()))
    for mount in container["volumeMounts"]:
        assert "subPath" not in mount, (
            "kubelet never updates subPath mounts: hot reload would not see changes"
        )
    paths = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    env = env_of(container)
    assert env["DISTILLGUARD_CONFIG"]["value"] == paths["policy"] + "/policy.yaml"
    assert env["DISTILLGUARD_KEYS_FILE"]["value"] == paths["keys"] + "/keys.jsonl"
