"""The Helm chart renders with default and full-featured values; what it renders is valid and does its job."""

from __future__ import annotations

import copy
import json
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from gateway.config.loader import load_config_text
from tests.deploy.chart_rendering import (
    CHART,
    KUBERNETES_VERSIONS,
    ROOT,
    Manifest,
    env_of,
    full_values,
    gateway_container,
    manifests,
    of_kind,
    one,
    render,
    validate,
)

VALUE_SETS = {"default": {}, "full": full_values()}
DEFAULT_KINDS = sorted(
    [
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
        "Service",
        "StatefulSet",
        "ServiceAccount",
        "Pod",
    ]
)
FULL_KINDS = sorted([*DEFAULT_KINDS, "ServiceMonitor", "NetworkPolicy", "NetworkPolicy"])


def docs_for(values: dict[str, Any] | None = None) -> list[Manifest]:
    return manifests(render(values))


def policy_of(docs: list[Manifest]) -> str:
    configmap = one(docs, "ConfigMap", "dg-distillguard-policy")
    return str(configmap["data"]["policy.yaml"])


def test_chart_policy_is_the_shipped_default_policy() -> None:
    # Helm cannot read files outside the chart, so the chart carries a copy; it must not drift.
    assert (CHART / "files" / "policy.yaml").read_bytes() == (ROOT / "policies" / "default.yaml").read_bytes()


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_helm_lint_is_clean(value_set: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[value_set], strict=True, kube_version=f"v{KUBERNETES_VERSIONS[0]}")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_rendered_manifest_validates(value_set: str, version: str) -> None:
    docs = docs_for(VALUE_SETS[value_set])
    assert sorted(doc["kind"] for doc in docs) == (FULL_KINDS if value_set == "full" else DEFAULT_KINDS)
    for doc in docs:
        validate(doc, version)


def test_validation_is_strict() -> None:
    docs = docs_for()
    deployment = copy.deepcopy(one(docs, "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, KUBERNETES_VERSIONS[-1])
    monitor = copy.deepcopy(one(docs_for(full_values()), "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor, KUBERNETES_VERSIONS[-1])
    monitor["spec"]["endpoints"][0].pop("intervall")
    monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor, KUBERNETES_VERSIONS[-1])


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_selectors_match_the_pods_they_select(value_set: str) -> None:
    docs = docs_for(VALUE_SETS[value_set])
    for workload in of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet"):
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    pods = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    gateway_service = one(docs, "Service", "dg-distillguard")
    assert gateway_service["spec"]["selector"].items() <= pods.items()
    assert one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= pods.items()
    redis_pods = one(docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert one(docs, "Service", "dg-distillguard-redis")["spec"]["selector"].items() <= redis_pods.items()
    assert not gateway_service["spec"]["selector"].items() <= redis_pods.items()


# --- the policy ConfigMap ----------------------------------------------------------------------------


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


# --- the Deployment --------------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_graceful_termination_outlasts_the_drain(value_set: str) -> None:
    values = VALUE_SETS[value_set]
    docs = docs_for(values)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    container = gateway_container(docs)
    with helm.Chart.load(CHART) as chart:
        merged = chart.merge_values(values)["gateway"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop == ["sleep", str(merged["preStopSleepSeconds"])]
    drain = int(env_of(container)["DISTILLGUARD_DRAIN_TIMEOUT"]["value"])
    assert drain == merged["drainTimeoutSeconds"]
    assert pod["terminationGracePeriodSeconds"] > merged["preStopSleepSeconds"] + drain


def test_no_pre_stop_hook_when_its_sleep_is_zero() -> None:
    assert "lifecycle" not in gateway_container(docs_for({"gateway": {"preStopSleepSeconds": 0}}))


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_probes_resources_and_security(value_set: str) -> None:
    docs = docs_for(VALUE_SETS[value_set])
    container = gateway_container(docs)
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    readiness = container["readinessProbe"]["httpGet"]["path"]
    assert readiness == ("/readyz" if value_set == "full" else "/readyz?state=optional")
    assert container["resources"]["limits"]["cpu"] and container["resources"]["requests"]["memory"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert "emptyDir" in tmp  # multiprocess metrics need a writable /tmp under a read-only root
    assert container["args"][0] == "serve"


@pytest.mark.parametrize(
    ("mode", "rule"),
    [
        ("soft", "preferredDuringSchedulingIgnoredDuringExecution"),
        ("hard", "requiredDuringSchedulingIgnoredDuringExecution"),
        ("none", None),
    ],
)
def test_pod_anti_affinity(mode: str, rule: str | None) -> None:
    pod = one(docs_for({"podAntiAffinity": mode}), "Deployment")["spec"]["template"]["spec"]
    if rule is None:
        assert "affinity" not in pod
    else:
        assert list(pod["affinity"]["podAntiAffinity"]) == [rule]


def test_custom_affinity_replaces_the_preset() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}
    pod = one(docs_for({"affinity": affinity}), "Deployment")["spec"]["template"]["spec"]
    assert pod["affinity"] == affinity


def test_autoscaling_owns_the_replica_count() -> None:
    on = docs_for()
    assert "replicas" not in one(on, "Deployment")["spec"]
    hpa = one(on, "HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "dg-distillguard"}
    assert hpa["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    off = docs_for({"autoscaling": {"enabled": False}, "replicaCount": 4})
    assert of_kind(off, "HorizontalPodAutoscaler") == []
    assert one(off, "Deployment")["spec"]["replicas"] == 4
    full = one(docs_for(full_values()), "HorizontalPodAutoscaler")["spec"]
    assert [m["type"] for m in full["metrics"]] == ["Resource", "Resource", "Pods"]


def test_pod_disruption_budget() -> None:
    assert one(docs_for(), "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    spec = one(docs_for(full_values()), "PodDisruptionBudget")["spec"]
    assert spec["minAvailable"] == 2 and "maxUnavailable" not in spec
    assert of_kind(docs_for({"podDisruptionBudget": {"enabled": False}}), "PodDisruptionBudget") == []


# --- secrets and Redis -----------------------------------------------------------------------------


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


# --- monitoring, network policy --------------------------------------------------------------------


def test_service_monitor_scrapes_the_gateway_service() -> None:
    docs = docs_for(full_values())
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service", "dg-distillguard")
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ai"]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert of_kind(docs_for(), "ServiceMonitor") == []


def test_dashboard_configmap_carries_the_dashboard_for_the_sidecar() -> None:
    configmap = one(docs_for(), "ConfigMap", "dg-distillguard-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "distillguard.json").read_text())
    assert json.loads(configmap["data"]["distillguard.json"]) == shipped
    full = one(docs_for(full_values()), "ConfigMap", "dg-distillguard-dashboard")
    assert full["metadata"]["namespace"] == "monitoring"
    assert full["metadata"]["annotations"] == {"grafana_folder": "distillguard"}


def test_network_policies() -> None:
    docs = docs_for(full_values())
    gateway_policy = one(docs, "NetworkPolicy", "dg-distillguard")["spec"]
    assert gateway_policy["policyTypes"] == ["Ingress", "Egress"]
    assert gateway_policy["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert len(gateway_policy["ingress"][0]["from"]) == 2
    egress_ports = [p["port"] for rule in gateway_policy["egress"] for p in rule.get("ports", [])]
    assert egress_ports == [53, 53, 6379, 8000, 443]
    redis_policy = one(docs, "NetworkPolicy", "dg-distillguard-redis")["spec"]
    gateway_pods = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    allowed = redis_policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert allowed.items() <= gateway_pods.items()


# --- template-time checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"redis": {"mode": "external"}}, "redis.mode external needs"),
        ({"policy": {"yaml": "upstreams: [unclosed"}}, "policy.yaml is not valid YAML"),
        ({"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}, "minReplicas must not exceed"),
        ({"autoscaling": {"targetCPUUtilizationPercentage": None}}, "autoscaling needs a target"),
    ],
)
def test_contradictory_values_fail_the_render(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(values)


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
