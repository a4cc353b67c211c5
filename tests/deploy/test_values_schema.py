"""values.schema.json: wrong values fail at install time, with the path of the fault."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.deploy.chart_rendering import CHART, full_values, render


def check(values: dict[str, Any]) -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)


@pytest.mark.parametrize(
    "values",
    [
        {},
        full_values(),
        {"redis": {"mode": "none"}, "autoscaling": {"enabled": False}, "replicaCount": 1},
        {"podDisruptionBudget": {"minAvailable": "50%"}},
        {"gateway": {"upstreamURL": "https://api.example.com"}},
    ],
)
def test_good_values_pass(values: dict[str, Any]) -> None:
    check(values)


def test_the_charts_own_values_file_passes() -> None:
    check(yaml.safe_load((CHART / "values.yaml").read_text()))


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"replicaCount": -1}, "/replicaCount"),
        ({"replicas": 3}, "replicas"),  # a typo of replicaCount
        ({"gateway": {"port": 70000}}, "/gateway/port"),
        ({"gateway": {"workers": -2}}, "/gateway/workers"),
        ({"gateway": {"drainTimeoutSeconds": "2m"}}, "/gateway/drainTimeoutSeconds"),
        ({"gateway": {"upstreamURL": "vllm:8000"}}, "/gateway/upstreamURL"),
        ({"gateway": {"drainTimeout": 30}}, "drainTimeout"),
        ({"redis": {"mode": "cluster"}}, "/redis/mode"),
        ({"redis": {"external": {"url": "http://cache:6379"}}}, "/redis/external/url"),
        ({"redis": {"bundled": {"maxmemoryPolicy": "lru"}}}, "/redis/bundled/maxmemoryPolicy"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"image": {"pullPolicy": "always"}}, "/image/pullPolicy"),
        ({"secrets": {"existingSecret": "Not_A_Name"}}, "/secrets/existingSecret"),
        ({"secrets": {"env": {"bad-name": {"key": "x"}}}}, "bad-name"),
        ({"secrets": {"env": {"UPSTREAM_API_KEY": {"name": "x"}}}}, "/secrets/env/UPSTREAM_API_KEY"),
        ({"podAntiAffinity": "always"}, "/podAntiAffinity"),
        ({"probes": {"readiness": {"requireStateBackend": "yes"}}}, "/probes/readiness/requireStateBackend"),
        ({"autoscaling": {"maxReplicas": 0}}, "/autoscaling/maxReplicas"),
        ({"podDisruptionBudget": {"maxUnavailable": "half"}}, "/podDisruptionBudget/maxUnavailable"),
        ({"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "/metrics/serviceMonitor/interval"),
        ({"resources": {"limits": {"cpu": "two"}}}, "/resources/limits/cpu"),
        ({"service": {"type": "Ingress"}}, "/service/type"),
        ({"dashboard": {"labels": {"grafana_dashboard": 1}}}, "/dashboard/labels/grafana_dashboard"),
    ],
)
def test_bad_values_fail_naming_the_key(values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        check(values)
    assert where in str(caught.value)
    # The same check runs when the chart renders (helm install / upgrade / template).
    with pytest.raises(helm.HelmError):
        render(values)
