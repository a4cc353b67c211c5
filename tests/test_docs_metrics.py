"""Every metric the documentation names is one the running gateway exposes.

The docs (README.md, docs/*.md) tell operators what to alert on and graph
(``distillguard_quota_backend_errors_total``, ``distillguard_config_reloads_total{result="rejected"}``...);
a renamed or dropped family would leave them watching a series that never comes. The shipped
default preset (every policy, in every tier) is served by ``distillguard serve`` in one process with a
real Redis, a request goes through it, and each documented name must be a series of a family
``/metrics`` then declares (its ``# TYPE`` line; a labelled family with no sample yet is declared too).
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.auth.keys import append_key
from tests.support import ROOT, MockHandle, RedisProcess, free_port, ops_url, spawn_gateway

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NAME = re.compile(r"\bdistillguard_[a-z0-9_]*[a-z0-9]\b")
SECRET_ENV = ("DISTILLGUARD_SEAL_KEY", "DISTILLGUARD_WATERMARK_KEY", "DISTILLGUARD_LOGPROB_NOISE_KEY")
# Series each family kind exposes, by suffix (prometheus_client's text format).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("", "_bucket", "_sum", "_count", "_created"),
}


def documented() -> dict[str, list[str]]:
    """Metric name -> the documents that name it."""
    found: dict[str, list[str]] = {}
    for path in DOCUMENTS:
        for name in sorted(set(NAME.findall(path.read_text()))):
            found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def exposed(metrics_text: str) -> set[str]:
    """Every series name the families declared in an exposition text can have."""
    series: set[str] = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            if kind == "counter":  # declared with or without _total, depending on the client version
                family = family.removesuffix("_total")
            series |= {family + suffix for suffix in SUFFIXES.get(kind, ("",))}
    return series


def test_the_docs_name_metrics_at_all() -> None:
    names = documented()
    # the operations guide's alerts and the dashboard's topics are documented by name
    assert {"distillguard_quota_backend_errors_total", "distillguard_config_reloads_total"} <= set(names)
    assert len(names) >= 20


@pytest.fixture(scope="module")
def served_metrics(tmp_path_factory: pytest.TempPathFactory) -> str:
    """/metrics of the default preset in one ``serve`` process, after a chat request."""
    directory = tmp_path_factory.mktemp("docs-metrics")
    mock = MockHandle().start()
    redis = RedisProcess().start()
    policy = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    policy["state"] = {"backend": "redis", "url": redis.url}
    policy["admin"] = {"token_env": "DISTILLGUARD_ADMIN_TOKEN"}
    config = directory / "policy.yaml"
    config.write_text(yaml.safe_dump(policy))
    keys = directory / "keys.jsonl"
    key, _ = append_key(keys, "acme", policy["default_tier"])
    port = free_port()
    env = {name: f"docs-metrics-{name.lower()}" for name in (*SECRET_ENV, "DISTILLGUARD_ADMIN_TOKEN")}
    process = spawn_gateway(
        config, port, "--workers", "1", "--keys-file", str(keys), "--upstream", mock.url, env=env
    )
    try:
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={
                "model": "mock-small",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "hello"}],
            },
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        return httpx.get(f"{ops_url(port)}/metrics", timeout=10).text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        redis.stop()
        mock.stop()


def test_every_documented_metric_is_exposed(served_metrics: str) -> None:
    series = exposed(served_metrics)
    assert "distillguard_requests_total" in series  # the scrape is the gateway's
    missing = {name: where for name, where in documented().items() if name not in series}
    assert not missing, f"documented metrics the gateway does not expose: {missing}"


def test_a_misnamed_metric_in_a_document_would_be_caught(served_metrics: str) -> None:
    # The check itself: a plausible wrong name (the quota errors without their kind suffix) is not a series.
    series = exposed(served_metrics)
    assert "distillguard_quota_backend_errors" not in series
    assert "distillguard_quota_backend_errors_total" in series
    assert (
        "distillguard_quota_backend_seconds_bucket" in series and "distillguard_in_flight_requests" in series
    )


def test_exposition_parsing() -> None:
    text = "# HELP a_total x\n# TYPE a counter\n# TYPE b_total counter\n# TYPE h histogram\n# TYPE g gauge\n"
    assert exposed(text) == {
        *("a_total", "a_created", "b_total", "b_created"),
        *("h", "h_bucket", "h_sum", "h_count", "h_created", "g"),
    }
    assert Path(DOCUMENTS[0]).name == "README.md"
