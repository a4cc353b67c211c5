"""Hot reload: on file change and SIGHUP, all or nothing, and no request dropped while it happens."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from tests.support import (
    GatewayHandle,
    MockHandle,
    base_config,
    free_port,
    metric_value,
    spawn_gateway,
    wait_for,
)

UPPER = "tests.sample_policies:UppercasePolicy"
CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}


def _marker(gw: GatewayHandle) -> str | None:
    r = httpx.post(
        f"{gw.url}/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {gw.key()}"}
    )
    assert r.status_code == 200, r.text
    return r.headers.get("x-test-marker")


def _config(mock: MockHandle, marker: str, watch: bool = True) -> dict:
    cfg = base_config(mock.url, reload={"watch": watch, "interval_seconds": 0.1})
    cfg["tiers"]["free"]["policies"] = [{"name": UPPER, "config": {"marker": marker}}]
    return cfg


def test_file_change_is_applied_and_a_bad_file_refused(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = start_gateway(_config(mock_upstream, "one"))
    assert _marker(gw) == "one"
    gw.write(_config(mock_upstream, "two"))
    wait_for(lambda: _marker(gw) == "two", timeout=5)
    broken = _config(mock_upstream, "three")
    broken["tiers"]["free"]["policies"][0]["config"]["marker"] = {"not": "a string"}
    gw.write(broken)
    wait_for(lambda: metric_value(gw.metrics(), "distillguard_config_reloads_total", result="rejected") >= 1)
    assert _marker(gw) == "two", "the old config keeps serving"
    gw.config_path.write_text("tiers: [this is: not valid")
    wait_for(lambda: metric_value(gw.metrics(), "distillguard_config_reloads_total", result="rejected") >= 2)
    assert _marker(gw) == "two"
    gw.write(_config(mock_upstream, "four"))
    wait_for(lambda: _marker(gw) == "four", timeout=5)


def test_reload_under_traffic_drops_no_request(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = start_gateway(_config(mock_upstream, "v0"))
    failures: list[str] = []
    markers: set[str] = set()
    stop = threading.Event()

    def hammer(stream: bool) -> None:
        with httpx.Client(headers={"authorization": f"Bearer {gw.key()}"}, timeout=10) as client:
            while not stop.is_set():
                try:
                    r = client.post(f"{gw.url}/v1/chat/completions", json={**CHAT, "stream": stream})
                    body = r.text
                    if r.status_code != 200 or (stream and "[DONE]" not in body):
                        failures.append(f"{r.status_code} {body[:200]}")
                    markers.add(r.headers.get("x-test-marker", "?"))
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=hammer, args=(i % 2 == 0,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for version in range(1, 8):
        gw.write(_config(mock_upstream, f"v{version}"))
        wait_for(lambda v=version: f"v{v}" in markers, timeout=5)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert metric_value(gw.metrics(), "distillguard_config_reloads_total", result="applied") >= 7


def test_sighup_reloads_a_served_process(mock_upstream: MockHandle, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(_config(mock_upstream, "before", watch=False)))
    port = free_port()
    process = spawn_gateway(path, port)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        headers = {"authorization": "Bearer dg-test-free-key"}
        assert httpx.post(url, json=CHAT, headers=headers).headers["x-test-marker"] == "before"
        path.write_text(yaml.safe_dump(_config(mock_upstream, "after", watch=False)))
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: httpx.post(url, json=CHAT, headers=headers).headers["x-test-marker"] == "after")
    finally:
        process.terminate()
        process.wait(timeout=10)
