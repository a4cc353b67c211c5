"""Rendering the Helm chart offline (Helm's Go SDK through helm-python-sdk) and validating what it renders."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "distillguard"
FULL_VALUES = CHART / "ci" / "full-values.yaml"
SCHEMAS = Path(__file__).resolve().parent / "schemas"

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a current release.
KUBERNETES_VERSIONS = ("1.27.0", "1.33.0")
RELEASE = "dg"
NAMESPACE = "ai"

Manifest = dict[str, Any]


def full_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(FULL_VALUES.read_text())
    return values


# The value sets that chart tests run against: the chart's defaults and every optional feature on.
VALUE_SETS = {"default": {}, "full": full_values()}


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` would produce (schema-checked values)."""
    with helm.Chart.load(CHART) as chart:
        return chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)


def manifests(rendered: dict[str, str]) -> list[Manifest]:
    """Every Kubernetes object in the rendered templates (NOTES.txt and empty documents left out)."""
    docs: list[Manifest] = []
    for path, text in sorted(rendered.items()):
        if not path.endswith(".yaml"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def of_kind(docs: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [doc for doc in of_kind(docs, kind) if name is None or doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def validate(doc: Manifest, version: str) -> None:
    """Kubernetes' own schemas for built-in kinds (strict: unknown fields fail); ours for CRDs."""
    if doc["apiVersion"] == "monitoring.coreos.com/v1":
        schema = json.loads((SCHEMAS / f"{doc['kind'].lower()}-v1.json").read_text())
        jsonschema.Draft7Validator(schema).validate(doc)
        return
    kubernetes_validate.validate(doc, version, strict=True)


def gateway_container(docs: Iterable[Manifest]) -> Manifest:
    deployment = one(docs, "Deployment")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "gateway")


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def docs_for(values: dict[str, Any] | None = None) -> list[Manifest]:
    """Every object the chart renders with ``values``."""
    return manifests(render(values))


def policy_of(docs: list[Manifest]) -> str:
    """The policy.yaml that the rendered policy ConfigMap carries."""
    configmap = one(docs, "ConfigMap", "dg-distillguard-policy")
    return str(configmap["data"]["policy.yaml"])
