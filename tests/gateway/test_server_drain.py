"""``distillguard serve`` as a real process: SIGTERM drains streams in flight within --drain-timeout."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support import TEST_KEYS, MockHandle, base_config, free_port, spawn_gateway

CHUNK_DELAY_MS = 150
MAX_TOKENS = 24  # about 24 chunks, 3.6 s of streaming


def _start(tmp_path: Path, mock_upstream: MockHandle, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    config = tmp_path / "policy.yaml"
    config.write_text(yaml.safe_dump(base_config(mock_upstream.url)))
    port = free_port()
    return spawn_gateway(config, port, *extra), port


class StreamReader(threading.Thread):
    """Reads one slow streamed chat completion; records the events and whether it ended cleanly."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.first_event = threading.Event()
        self.events: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        body: dict[str, Any] = {
            "model": "mock-small",
            "stream": True,
            "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": "Tell me about caches."}],
        }
        headers = {
            "authorization": f"Bearer {TEST_KEYS['free']}",
            "x-mock-delay-ms": str(CHUNK_DELAY_MS),
            "x-mock-reasoning": "none",
        }
        try:
            with httpx.stream(
                "POST",
                f"http://127.0.0.1:{self.port}/v1/chat/completions",
                json=body,
                headers=headers,
                timeout=30,
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(line[6:])
                        self.first_event.set()
        except httpx.HTTPError as exc:
            self.error = exc
        finally:
            self.first_event.set()

    @property
    def completed(self) -> bool:
        return bool(self.events) and self.events[-1] == "[DONE]"


def _terminate_mid_stream(process: subprocess.Popen[bytes], port: int) -> tuple[StreamReader, float]:
    reader = StreamReader(port)
    reader.start()
    assert reader.first_event.wait(10), "the stream never started"
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    return reader, started


def test_sigterm_lets_streams_in_flight_finish(tmp_path: Path, mock_upstream: MockHandle) -> None:
    process, port = _start(tmp_path, mock_upstream, "--drain-timeout", "20")
    try:
        reader, _ = _terminate_mid_stream(process, port)
        time.sleep(0.3)
        # The listening socket is closed at once: new connections are refused while the stream drains.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        reader.join(15)
        assert reader.error is None
        assert reader.completed, reader.events[-3:]
        assert len(reader.events) > 3
        # uvicorn re-raises the signal once drained, so the exit status is "terminated by SIGTERM".
        assert process.wait(15) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_drain_timeout_bounds_how_long_a_stream_may_keep_the_process(
    tmp_path: Path, mock_upstream: MockHandle
) -> None:
    process, port = _start(tmp_path, mock_upstream, "--drain-timeout", "1")
    try:
        reader, started = _terminate_mid_stream(process, port)
        process.wait(15)
        elapsed = time.monotonic() - started
        reader.join(10)
        assert not reader.completed, "a 3.6 s stream cannot finish within a 1 s drain"
        assert elapsed < 3.0, f"the process took {elapsed:.1f}s to stop with a 1 s drain timeout"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("flag", ["--drain-timeout", "--stop-timeout"])
def test_drain_and_stop_timeouts_must_not_be_negative(tmp_path: Path, flag: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--config",
            str(tmp_path / "x.yaml"),
            flag,
            "-1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert flag in result.stderr and "must be 0 or more" in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_stop_that_hangs_ends_after_the_stop_timeout_with_the_stacks_logged(
    tmp_path: Path, mock_upstream: MockHandle, workers: str
) -> None:
    tiers: dict[str, Any] = {tier: {"policies": []} for tier in TEST_KEYS}
    tiers["free"] = {"policies": [{"name": "tests.gateway.stuck_policy:StuckAtShutdownPolicy"}]}
    config = tmp_path / "policy.yaml"
    config.write_text(yaml.safe_dump(base_config(mock_upstream.url, tiers=tiers)))
    port = free_port()
    process = spawn_gateway(config, port, "--workers", workers, "--drain-timeout", "1", "--stop-timeout", "2")
    try:
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(20)
        elapsed = time.monotonic() - started
        assert elapsed < 10, f"a 1 s drain and a 2 s stop timeout took {elapsed:.1f}s"
        log = config.with_name(f"gateway-{port}.log").read_text()
        assert "Timeout (0:00:02)!" in log and "in shutdown" in log, log[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
