"""The chart's gateway Deployment: draining, probes, security, scheduling, scaling, disruption budget."""

from __future__ import annotations

import helm_python as helm
import pytest

from gateway.app import STOP_DEADLINE_SECONDS
from tests.deploy.chart_rendering import (
    CHART,
    VALUE_SETS,
    docs_for,
    env_of,
    full_values,
    gateway_container,
    of_kind,
    one,
)


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
    stopping = merged["preStopSleepSeconds"] + drain + STOP_DEADLINE_SECONDS
    assert pod["terminationGracePeriodSeconds"] > stopping


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
