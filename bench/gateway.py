"""Gateway overhead: direct-to-upstream against through-the-gateway, measured in the same run.

    python -m bench.gateway [--duration 5] [--concurrency 1,32] [--config policies/default.yaml]
        [--delay-ms 0] [--modes json,stream]

Starts the mock upstream and the gateway (one worker, the given policy, default
policies on) as separate processes, then drives each with a keep-alive HTTP/1.1
load generator at fixed concurrency, non-streaming and streaming. Prints req/s,
p50/p99 latency, time to first event, the gateway's added latency and peak RSS,
and the gateway's figures as ratios of the direct baseline (this machine is
shared and noisy: compare ratios, not absolute numbers, across runs). Streamed
rows also give the gateway's CPU per stream event (per answer / events in it).

``--delay-ms`` makes the mock pause between stream events (its ``x-mock-delay-ms``
hook), so that each event reaches the gateway on its own as a model's tokens do,
instead of the whole answer in one read; ``--modes stream`` skips the JSON rows.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import uvloop
import yaml

from bench.processes import bench_env, cpu_seconds, peak_rss_mb, wait_ready
from gateway.auth.keys import digest
from gateway.mock.server import HOOK_HEADERS

ROOT = Path(__file__).resolve().parent.parent
KEY = "dg-bench-key"
BODY = {
    "model": "mock-small",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Explain caching."}],
}


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]
    ttfts: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, stream: bool
) -> tuple[float, float, bool]:
    """Send one request on a kept-alive connection; return (latency, ttft, ok)."""
    started = time.perf_counter()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    ok = head.startswith(b"HTTP/1.1 200")
    headers = head.lower()
    ttft = 0.0
    if b"transfer-encoding: chunked" in headers:
        first = True
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.strip(), 16)
            if first:
                ttft = time.perf_counter() - started
                first = False
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        length = int(headers.split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        ttft = time.perf_counter() - started
    return time.perf_counter() - started, ttft, ok


async def load(
    port: int, path: str, body: dict, stream: bool, concurrency: int, duration: float, headers: dict[str, str]
) -> Result:
    payload = orjson.dumps({**body, "stream": stream})
    head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (head + f"content-length: {len(payload)}\r\n\r\n").encode() + payload
    latencies: list[float] = []
    ttfts: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(20):  # warm-up
            await _one(reader, writer, request, stream)
        while time.perf_counter() < deadline:
            latency, ttft, ok = await _one(reader, writer, request, stream)
            latencies.append(latency)
            ttfts.append(ttft)
            errors += not ok
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(len(latencies), time.perf_counter() - started, latencies, ttfts, errors)


UNLIMITED_QUOTA = {
    "requests_per_minute": 10**9,
    "tokens_per_minute": 10**9,
    "tokens_per_day": 10**12,
    "max_concurrent": 10**5,
    "reasoning_tokens_per_day": 10**12,
    "logprob_responses_per_day": 10**9,
    "distinct_prompts_per_day": 10**6,
}


def bench_config(config: Path, workdir: Path, forward_hooks: bool = True) -> Path:
    """The policy with the bench account's quota raised, so quota is measured but never rejects,
    and the mock's test hooks (``x-mock-reasoning``) forwarded to it (``forward_hooks``: code from
    before ``forward_headers`` existed forwarded every client header and refuses the key)."""
    data = yaml.safe_load(config.read_text())
    for upstream in data["upstreams"] if forward_hooks else ():
        upstream.setdefault("forward_headers", []).append(HOOK_HEADERS)
    tier = data.get("default_tier", "default")
    names = {p["name"] for p in data["tiers"][tier]["policies"]}
    overrides = {"quota": UNLIMITED_QUOTA} if "quota" in names else {}
    data.setdefault("accounts", {})["bench"] = {"tier": tier, "overrides": overrides}
    data.setdefault("reload", {})["watch"] = False
    path = workdir / "bench-policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _free_port() -> int:
    from tests.support import free_port

    return free_port()


def start_gateway_process(
    config: Path,
    upstream_url: str,
    port: int,
    workdir: Path,
    module: str = "gateway.cli",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``distillguard serve`` of ``config`` (bench account unlimited) in front of ``upstream_url``;
    ``module`` runs it (a wrapper such as ``bench.traced_gateway``), with ``env`` added."""
    keys = workdir / "keys.jsonl"
    keys.write_bytes(orjson.dumps({"sha256": digest(KEY), "account": "bench", "tier": None}) + b"\n")
    log_path = workdir / "gateway.log"
    command = [
        sys.executable,
        "-m",
        module,
        "serve",
        "--config",
        str(bench_config(config, workdir)),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--upstream",
        upstream_url,
        "--keys-file",
        str(keys),
        "--operator-port",
        str(_free_port()),  # the operator listener's default (9090) may be taken on a shared machine
    ]
    # Access logs stay on, as in production; into a file, never a pipe that could fill up.
    environment = {**bench_env(), **(env or {})}
    gateway = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=log_path.open("wb")
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", gateway, log_path)
    except BaseException:
        gateway.kill()  # not left running when it did not come up in time
        raise
    return gateway


def start_mock(port: int) -> subprocess.Popen[bytes]:
    """The built-in mock model on ``port``; returns once it answers."""
    mock = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "mock-upstream", "--port", str(port)],
        cwd=ROOT,
        env=bench_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}/v1/models", mock)
    return mock


def start_servers(config: Path, mock_port: int, gw_port: int) -> tuple[subprocess.Popen[bytes], ...]:
    mock = start_mock(mock_port)
    workdir = Path(tempfile.mkdtemp())
    gateway = start_gateway_process(config, f"http://127.0.0.1:{mock_port}", gw_port, workdir)
    if semantic_active(config):
        wait_semantic_ready(gw_port, workdir / "gateway.log", gateway)
    return mock, gateway


def semantic_active(config: Path) -> bool:
    """Whether a detector of ``config`` runs the semantic signals (an embedding process to start)."""
    from policies.detector.embedding import available

    data = yaml.safe_load(config.read_text())
    for tier in (data.get("tiers") or {}).values():
        for entry in tier.get("policies") or []:
            if entry.get("name") != "detector":
                continue
            shared = (entry.get("config") or {}).get("shared") or {}
            enabled = (shared.get("semantic") or {}).get("enabled", "auto")
            if enabled == "on" or (enabled == "auto" and available()):
                return True
    return False


def wait_semantic_ready(port: int, log: Path, gateway: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Send requests until the detector's embedding process has loaded its model.

    It starts on the first batch of prompts and loads the model in a few seconds of CPU: a
    one-off cost of each worker that would otherwise fall inside the first measured cell (and
    compete with it for this machine's cores), not a cost per request.
    """
    deadline = time.monotonic() + timeout
    headers = {"authorization": f"Bearer {KEY}", "x-mock-reasoning": "none"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
        while "started (model loaded" not in log.read_text(errors="replace"):
            if gateway.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the embedding process did not start; see {log}")
            client.post("/v1/chat/completions", json=BODY)
            time.sleep(0.05)


def bare_config(config: Path, workdir: Path) -> Path:
    """The same config with no policies: the engine alone."""
    data = yaml.safe_load(config.read_text())
    for tier in data["tiers"].values():
        tier["policies"] = []
    data["risk_levels"] = {}
    path = workdir / "bare-policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--config", default=str(ROOT / "policies" / "default.yaml"))
    parser.add_argument("--delay-ms", type=float, default=0.0, help="the mock's pause between stream events")
    parser.add_argument("--modes", default="json,stream")
    args = parser.parse_args()
    from tests.support import free_port

    configs = {
        "policies": Path(args.config),
        "engine": bare_config(Path(args.config), Path(tempfile.mkdtemp())),
    }
    headers = {"authorization": f"Bearer {KEY}", "x-mock-reasoning": "none"}
    if args.delay_ms:
        headers["x-mock-delay-ms"] = str(args.delay_ms)
    modes = [mode == "stream" for mode in args.modes.split(",")]
    events = 0
    rows = []
    rss: dict[str, float] = {}
    for label, config in configs.items():
        mock_port, gw_port = free_port(), free_port()
        mock, gateway = start_servers(config, mock_port, gw_port)
        try:
            if not events:  # the upstream's events per answer (what the per-event figures divide by)
                answer = httpx.post(
                    f"http://127.0.0.1:{mock_port}/v1/chat/completions",
                    json={**BODY, "stream": True},
                    headers=headers,
                    timeout=30,
                )
                events = answer.content.count(b"data: ")
            for stream in modes:
                for concurrency in (int(c) for c in args.concurrency.split(",")):
                    direct = uvloop.run(
                        load(
                            mock_port,
                            "/v1/chat/completions",
                            BODY,
                            stream,
                            concurrency,
                            args.duration,
                            headers,
                        )
                    )
                    before = cpu_seconds(gateway.pid)
                    through = uvloop.run(
                        load(
                            gw_port, "/v1/chat/completions", BODY, stream, concurrency, args.duration, headers
                        )
                    )
                    cpu_us = (cpu_seconds(gateway.pid) - before) / max(1, through.requests) * 1e6
                    rows.append((label, stream, concurrency, direct, through, cpu_us))
        finally:
            rss[label] = peak_rss_mb(gateway.pid)
            gateway.terminate()
            mock.terminate()
            gateway.wait()
            mock.wait()
    print(
        f"config: {args.config}; {args.duration}s per cell; peak RSS: policies {rss['policies']:.0f} MiB, "
        f"engine alone {rss['engine']:.0f} MiB; {events} events per streamed answer"
        + (f", {args.delay_ms} ms apart" if args.delay_ms else " (the mock sends them at once)")
    )
    print(
        "'cpu us/req' is the gateway process's CPU time per request; 'per core' = 1e6 / that, the req/s one"
    )
    print("worker sustains on a core of its own (the load generator and mock share this machine's cores).")
    print(
        f"{'gateway':<9}{'mode':<7}{'conc':>5} | {'direct rps':>10} {'p50 ms':>7} | {'gateway rps':>11} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'ttft p50':>8} | {'rps ratio':>9} {'added p50':>9} | "
        f"{'cpu us/req':>10} {'per core':>8} {'us/event':>8} {'errors':>6}"
    )
    for label, stream, concurrency, d, g, cpu_us in rows:
        added = (statistics.median(g.latencies) - statistics.median(d.latencies)) * 1000
        mode = "stream" if stream else "json"
        direct = f"{d.rps:>10.0f} {d.pct(d.latencies, 0.5) * 1e3:>7.2f}"
        through = (
            f"{g.rps:>11.0f} {g.pct(g.latencies, 0.5) * 1e3:>7.2f} {g.pct(g.latencies, 0.99) * 1e3:>7.2f}"
        )
        ttft = g.pct(g.ttfts, 0.5) * 1e3
        per_event = f"{cpu_us / events:.1f}" if stream and events else "-"
        print(
            f"{label:<9}{mode:<7}{concurrency:>5} | {direct} | {through} {ttft:>8.2f} | {g.rps / d.rps:>9.2f}"
            f" {added:>9.3f} | {cpu_us:>10.0f} {1e6 / cpu_us:>8.0f} {per_event:>8} {d.errors + g.errors:>6}"
        )


if __name__ == "__main__":
    main()
