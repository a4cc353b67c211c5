"""The chart's monitoring and network objects: ServiceMonitor, dashboard ConfigMap, NetworkPolicies."""

from __future__ import annotations

import json

from tests.deploy.chart_rendering import CHART, docs_for, full_values, of_kind, one


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
