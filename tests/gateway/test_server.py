"""`distillguard serve` as its users run it: a separate process, several workers, metrics aggregated."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from tests.support import (
    MockHandle,
    base_config,
    free_port,
    metric_value,
    ops_url,
    spawn_gateway,
    wait_for,
)

CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}


def test_serve_with_two_workers_aggregates_metrics(mock_upstream: MockHandle, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(base_config(mock_upstream.url)))
    port = free_port()
    process = spawn_gateway(path, port, "--workers", "2")
    try:
        with httpx.Client(headers={"authorization": "Bearer dg-test-free-key"}) as client:
            for _ in range(20):
                assert (
                    client.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT).status_code == 200
                )

        # The worker answering the scrape includes all of its own updates; the other worker's
        # reach its file within a second (metric updates are applied in batches).
        def counted() -> float:
            text = httpx.get(f"{ops_url(port)}/metrics").text
            return metric_value(text, "distillguard_requests_total", route="chat.completions", status="200")

        wait_for(lambda: counted() == 20, timeout=5, interval=0.1)
        assert counted() == 20
    finally:
        process.terminate()
        process.wait(timeout=30)
