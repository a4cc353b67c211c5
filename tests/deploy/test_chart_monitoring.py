"""The chart's monitoring and network objects: ServiceMonitor, dashboard ConfigMap, NetworkPolicies."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.deploy.chart_rendering import CHART, docs_for, full_values, of_kind, one


def test_service_monitor_scrapes_the_operator_port_only() -> None:
    docs = docs_for(full_values())
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service", "dg-distillguard-operator")
    public = one(docs, "Service", "dg-distillguard")
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ai"]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert not monitor["spec"]["selector"]["matchLabels"].items() <= public["metadata"]["labels"].items()
    assert [p["targetPort"] for p in public["spec"]["ports"]] == ["http"], "the API's Service has no metrics"
    assert service["spec"]["clusterIP"] == "None"
    assert of_kind(docs_for(), "ServiceMonitor") == []


def test_pods_bind_the_operator_listener_beside_the_public_port() -> None:
    docs = docs_for()
    pod = one(docs, "Deployment")["spec"]["template"]
    container = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "operator": 9090}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["DISTILLGUARD_OPERATOR_HOST"], env["DISTILLGUARD_OPERATOR_PORT"]) == ("0.0.0.0", "9090")
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9090"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "http", "probes stay on the public port"
    policy = yaml.safe_load(one(docs, "ConfigMap", "dg-distillguard-policy")["data"]["policy.yaml"])
    assert policy["operator"] == {"host": "0.0.0.0", "port": 9090}
    with pytest.raises(Exception, match="operatorPort must differ"):
        docs_for({"gateway": {"port": 9000, "operatorPort": 9000}})


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
    assert len(gateway_policy["ingress"][0]["from"]) == 1
    # /metrics and /admin: only the monitoring namespace, on the operator port.
    assert gateway_policy["ingress"][1]["ports"] == [{"port": "operator", "protocol": "TCP"}]
    assert gateway_policy["ingress"][1]["from"] == full_values()["networkPolicy"]["operatorFrom"]
    assert len(gateway_policy["ingress"]) == 2
    closed = one(docs_for({"networkPolicy": {"enabled": True}}), "NetworkPolicy", "dg-distillguard")["spec"]
    assert [rule["ports"][0]["port"] for rule in closed["ingress"]] == ["http"], (
        "no one reaches the operator port"
    )
    egress_ports = [p["port"] for rule in gateway_policy["egress"] for p in rule.get("ports", [])]
    assert egress_ports == [53, 53, 6379, 8000, 443]
    redis_policy = one(docs, "NetworkPolicy", "dg-distillguard-redis")["spec"]
    gateway_pods = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    allowed = redis_policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert allowed.items() <= gateway_pods.items()
