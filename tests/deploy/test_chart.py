"""The Helm chart renders with default and full-featured values; what it renders is valid and hangs together.

The other test_chart_* modules check what the rendered objects do, one topic each.
"""

from __future__ import annotations

import copy
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.chart_rendering import (
    CHART,
    KUBERNETES_VERSIONS,
    VALUE_SETS,
    docs_for,
    full_values,
    of_kind,
    one,
    render,
    validate,
)

DEFAULT_KINDS = sorted(
    [
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
        "Service",
        "Service",  # <release>-operator: the pods' /metrics and /admin port, for the ServiceMonitor
        "StatefulSet",
        "ServiceAccount",
        "Pod",
    ]
)
FULL_KINDS = sorted([*DEFAULT_KINDS, "ServiceMonitor", "NetworkPolicy", "NetworkPolicy"])


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
