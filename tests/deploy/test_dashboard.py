"""The Grafana dashboard: well-formed, covers the issue's list, queries only metrics the code registers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from gateway.metrics import PREFIX, GatewayMetrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "helm" / "distillguard" / "dashboards" / "distillguard.json"
SCRAPE_LABELS = {"namespace", "job", "pod", "instance", "le"}

# Families the policy issues register (issues 3 to 7), built on other branches at the time of writing:
# name -> (kind, labels). While a name is not in the code its kind comes from here; once the code
# registers it, the code's kind is used, so a dashboard query with the wrong suffix fails.
PARALLEL_BRANCH_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "quota_decisions_total": ("counter", ("tier", "limit", "decision")),
    "quota_tokens_total": ("counter", ("tier", "kind")),
    "quota_backend_seconds": ("histogram", ("backend",)),
    "quota_backend_errors_total": ("counter", ("backend", "mode")),
    "reasoning_withheld_tokens_total": ("counter", ("mode", "format")),
    "reasoning_unseal_failures_total": ("counter", ("reason",)),
    "logprobs_alternatives_withheld_total": ("counter", ("route",)),
    "logprobs_requests_clamped_total": ("counter", ("param", "action")),
    "watermark_responses_total": ("counter", ("scheme",)),
    "watermark_substitutions_total": ("counter", ("scheme",)),
    "watermark_canaries_total": ("counter", ()),
    "risk_accounts": ("gauge", ("level",)),
    "risk_transitions_total": ("counter", ("from", "to")),
    "detector_seconds": ("histogram", ()),
    "detector_clusters": ("gauge", ()),
}

# What the issue asks the dashboard to show -> metric families that must be queried for it.
REQUIRED_TOPICS = {
    "traffic": ["requests_total", "tokens_total", "in_flight_requests"],
    "gateway overhead against upstream latency": ["gateway_overhead_seconds", "upstream_duration_seconds"],
    "quota rejections": ["quota_decisions_total"],
    "reasoning withheld": ["reasoning_withheld_tokens_total"],
    "logprobs clamped": ["logprobs_requests_clamped_total"],
    "watermarked responses": ["watermark_responses_total"],
    "accounts by risk level": ["risk_accounts"],
    "detector latency": ["detector_seconds"],
    "plugin failures": ["policy_failures_total"],
    "config reloads": ["config_reloads_total"],
}


def registered_in_code() -> dict[str, str]:
    """Family name (no prefix) -> kind, from every ``.counter/.histogram/.gauge("name", ...)`` call."""
    call = re.compile(r"\.(counter|histogram|gauge)\(\s*\"([a-z][a-z0-9_]*)\"", re.S)
    found: dict[str, str] = {}
    for folder in ("gateway", "policies"):
        for source in (ROOT / folder).rglob("*.py"):
            for kind, name in call.findall(source.read_text()):
                found[name.removesuffix("_total") if kind == "counter" else name] = kind
    return found


def exposed_series(families: dict[str, str]) -> set[str]:
    """The series names Prometheus scrapes for these families (counters get _total, histograms three)."""
    series = set()
    for name, kind in families.items():
        full = PREFIX + name
        if kind == "counter":
            series.add(full + "_total")
        elif kind == "histogram":
            series |= {full + "_bucket", full + "_sum", full + "_count"}
        else:
            series.add(full)
    return series


def known_families() -> dict[str, str]:
    families = {
        (name.removesuffix("_total") if kind == "counter" else name): kind
        for name, (kind, _) in PARALLEL_BRANCH_FAMILIES.items()
    }
    families.update(registered_in_code())
    return families


def engine_labels() -> dict[str, set[str]]:
    """Series name -> label names, from the engine's real metric families."""
    GatewayMetrics()
    labels: dict[str, set[str]] = {}
    for full, family in GatewayMetrics._families.items():
        names = set(family._labelnames)
        for series in exposed_series({full.removeprefix(PREFIX): _kind(family)}):
            labels[series] = names
    for name, (kind, names_) in PARALLEL_BRANCH_FAMILIES.items():
        family = name.removesuffix("_total") if kind == "counter" else name
        for series in exposed_series({family: kind}):
            labels.setdefault(series, set(names_))
    return labels


def _kind(family: Any) -> str:
    return str(family._type)  # "counter", "histogram" or "gauge"


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expressions() -> Iterator[tuple[str, str]]:
    for panel in panels():
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def as_promql(expr: str) -> str:
    """Grafana's interval variables are not PromQL; substitute what Grafana would."""
    return expr.replace("$__rate_interval", "5m").replace("$__range", "6h")


def selectors(expr: str) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(as_promql(expr)), visit)
    return found


def grouping_labels(expr: str) -> set[str]:
    return {label.strip() for group in re.findall(r"\bby \(([^)]*)\)", expr) for label in group.split(",")}


def test_dashboard_is_well_formed() -> None:
    data = dashboard()
    assert data["uid"] and data["title"] == "distillguard" and data["schemaVersion"] >= 36
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    occupied: set[tuple[int, int]] = set()
    for panel in data["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        cells = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not cells & occupied, f"panel '{panel['title']}' overlaps another"
        occupied |= cells
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        assert panel["title"] and panel["fieldConfig"]["defaults"]["unit"]


@pytest.mark.parametrize(("title", "expr"), list(expressions()))
def test_every_query_parses_and_is_scoped_to_the_dashboard_variables(title: str, expr: str) -> None:
    found = selectors(expr)
    assert found, f"{title}: no metric selected"
    for selector in found:
        matchers = str(selector.matchers)
        assert 'namespace=~"$namespace"' in matchers and 'job=~"$job"' in matchers, f"{title}: {selector}"


def test_queries_use_only_metrics_the_code_registers() -> None:
    exposed = exposed_series(known_families())
    used = {selector.name for _, expr in expressions() for selector in selectors(expr)}
    for variable in dashboard()["templating"]["list"]:
        used |= set(re.findall(r"\b(distillguard_[a-z0-9_]+)", str(variable.get("query", ""))))
    unknown = sorted(used - exposed)
    assert not unknown, f"the dashboard queries series nothing registers: {unknown}"


def test_grouping_labels_exist_on_the_metrics_grouped() -> None:
    labels = engine_labels()
    for title, expr in expressions():
        for selector in selectors(expr):
            grouped = grouping_labels(expr) - SCRAPE_LABELS
            assert grouped <= labels.get(selector.name, set()), f"{title}: {selector.name} has no {grouped}"


def test_parallel_branch_families_are_either_pending_or_registered_as_declared() -> None:
    in_code = registered_in_code()
    for name, (kind, _) in PARALLEL_BRANCH_FAMILIES.items():
        family = name.removesuffix("_total") if kind == "counter" else name
        if family in in_code:
            assert in_code[family] == kind, f"{name} is a {in_code[family]} in the code, not a {kind}"


def test_engine_families_are_found_by_the_code_scan() -> None:
    # The scan is what keeps the dashboard honest; it must see what the engine really registers.
    GatewayMetrics()
    scanned = registered_in_code()
    for full, family in GatewayMetrics._families.items():
        name = full.removeprefix(PREFIX)
        assert scanned.get(name) == _kind(family), name


@pytest.mark.parametrize("topic", REQUIRED_TOPICS)
def test_dashboard_covers_the_topics_the_issue_lists(topic: str) -> None:
    used = {selector.name for _, expr in expressions() for selector in selectors(expr)}
    for family in REQUIRED_TOPICS[topic]:
        assert any(name.startswith(PREFIX + family) for name in used), f"{topic}: nothing queries {family}"


def test_overhead_and_upstream_latency_share_a_panel() -> None:
    for panel in panels():
        text = " ".join(t["expr"] for t in panel["targets"])
        if "gateway_overhead_seconds_bucket" in text and "upstream_duration_seconds_bucket" in text:
            return
    pytest.fail("no panel plots gateway overhead against upstream latency")
