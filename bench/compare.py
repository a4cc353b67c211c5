"""distillguard against its peers, in one run: the table of the performance issue, rerunnable.

    python -m bench.compare [--duration 10] [--connections 32] [--threads 2] [--skip litellm]

Every target answers the same small chat completion from the same mock upstream (one worker or
process each), driven by ``wrk`` (keep-alive HTTP/1.1) from this machine:

* ``upstream direct``: the mock itself, the ceiling;
* ``nginx pass-through``: nginx proxying to the mock, the limit of proxying here;
* ``LiteLLM proxy``: ``litellm --num_workers 1`` with the mock as an OpenAI-compatible model;
* ``distillguard, no policies``: the engine alone;
* ``distillguard, default preset``: ``policies/default.yaml``, the bench account's quota raised so
  that nothing is refused (every policy still runs).

Prints req/s, p50 and p99 per target, then, with each distillguard gateway still up, its streaming
cost (gateway CPU per streamed event over whole answers of the mock: 66 events, concurrency 1) and
its added p50 at concurrency 1 (against the upstream direct, measured alternately in the same run),
and last one table of the performance issue's targets as ratios and figures of this run (this
machine is shared and noisy: compare ratios, not absolute figures, across runs). Time to first token
through a real model and idle-stream memory have their own commands (``bench.llamacpp``,
``bench.idle_streams``).

Needs ``wrk`` and ``nginx`` on PATH (``apt-get install nginx wrk``) and LiteLLM in a virtualenv of
its own (created on first use in ``.bench-venvs/litellm`` with ``pip install 'litellm[proxy]'``;
``--litellm-venv`` names another; ``--skip litellm`` leaves it out). Nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import uvloop

from bench.gateway import (
    BODY,
    KEY,
    ROOT,
    bare_config,
    load,
    start_gateway_process,
)
from bench.processes import bench_env, cpu_seconds, wait_ready

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream model {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://model;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""

LITELLM_CONFIG = """
model_list:
  - model_name: mock-small
    litellm_params:
      model: openai/mock-small
      api_base: http://127.0.0.1:{upstream}/v1
      api_key: not-needed
litellm_settings:
  telemetry: false
  set_verbose: false
general_settings:
  master_key: {master_key}
  disable_spend_logs: true
"""


@dataclass
class GatewayCosts:
    """A distillguard gateway's streaming CPU per event and its added latency at concurrency 1."""

    stream_cpu_us_per_event: float
    events_per_answer: int
    added_p50_ms: float


# bench.gateway's headers: the mock answers without reasoning (58 words, 66 stream events).
LOAD_HEADERS = {"authorization": f"Bearer {KEY}", "x-mock-reasoning": "none"}


def gateway_costs(gateway_pid: int, port: int, upstream: int, path: str, seconds: float) -> GatewayCosts:
    """Streaming CPU per event (whole answers, concurrency 1) and added p50 at concurrency 1 (JSON)."""
    answer = httpx.post(
        f"http://127.0.0.1:{port}{path}", json={**BODY, "stream": True}, headers=LOAD_HEADERS, timeout=30
    )
    events = answer.content.count(b"data: ")
    before = cpu_seconds(gateway_pid)
    streamed = uvloop.run(load(port, path, BODY, True, 1, seconds, LOAD_HEADERS))
    cpu_per_answer = (cpu_seconds(gateway_pid) - before) / max(1, streamed.requests)
    direct: list[float] = []
    through: list[float] = []
    for _ in range(2):  # alternated, so that a burst of load elsewhere hits both
        direct += uvloop.run(load(upstream, path, BODY, False, 1, seconds / 4, LOAD_HEADERS)).latencies
        through += uvloop.run(load(port, path, BODY, False, 1, seconds / 4, LOAD_HEADERS)).latencies
    added = (statistics.median(through) - statistics.median(direct)) * 1000
    return GatewayCosts(cpu_per_answer * 1e6 / max(1, events), events, added)


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    from tests.support import free_port as pick

    return pick()


def run_wrk(
    port: int, path: str, duration: float, connections: int, threads: int, workdir: Path, key: str = KEY
) -> WrkResult:
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=orjson.dumps(BODY).decode(), key=key))
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{int(duration)}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return WrkResult(rps, _percentile(out, "50%"), _percentile(out, "99%"), errors)


def _percentile(out: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


@contextmanager
def process(command: list[str], ready: str, log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env or bench_env(), stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    try:
        wait_ready(ready, proc, log)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def litellm_binary(venv: Path) -> Path:
    binary = venv / "bin" / "litellm"
    if not binary.exists():
        print(f"creating {venv} with litellm[proxy] (first run only)...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True)
    return binary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cell-seconds", type=float, default=5.0, help="per streaming / latency cell")
    parser.add_argument("--litellm-venv", default=str(ROOT / ".bench-venvs" / "litellm"))
    parser.add_argument("--skip", action="append", default=[], choices=["litellm", "nginx"])
    args = parser.parse_args()
    for tool in ("wrk", *(() if "nginx" in args.skip else ("nginx",))):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH: apt-get install nginx wrk")
    workdir = Path(tempfile.mkdtemp(prefix="dg-compare-"))
    upstream = free_port()
    path = "/v1/chat/completions"
    results: dict[str, WrkResult] = {}
    costs: dict[str, GatewayCosts] = {}

    def measure(label: str, port: int, key: str = KEY) -> None:
        results[label] = run_wrk(port, path, args.duration, args.connections, args.threads, workdir, key)
        r = results[label]
        print(f"  {label}: {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms", file=sys.stderr, flush=True)

    mock = [sys.executable, "-m", "gateway.cli", "mock-upstream", "--port", str(upstream)]
    with process(mock, f"http://127.0.0.1:{upstream}/v1/models", workdir / "mock.log"):
        measure("upstream direct", upstream)
        if "nginx" not in args.skip:
            port = free_port()
            conf = workdir / "nginx.conf"
            conf.write_text(NGINX_CONF.format(dir=workdir, upstream=upstream, port=port))
            nginx = ["nginx", "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"]
            with process(nginx, f"http://127.0.0.1:{port}/v1/models", workdir / "nginx.log"):
                measure("nginx pass-through", port)
        if "litellm" not in args.skip:
            port = free_port()
            conf = workdir / "litellm.yaml"
            master_key = "sk-" + secrets.token_hex(16)  # LiteLLM refuses to start without one
            conf.write_text(LITELLM_CONFIG.format(upstream=upstream, master_key=master_key))
            binary = litellm_binary(Path(args.litellm_venv))
            env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
            command = [str(binary), "--config", str(conf), "--port", str(port), "--num_workers", "1"]
            with process(command, f"http://127.0.0.1:{port}/health/liveliness", workdir / "litellm.log", env):
                measure("LiteLLM proxy", port, master_key)
        preset = ROOT / "policies" / "default.yaml"
        for label, config in (
            ("distillguard, no policies", bare_config(preset, workdir)),
            ("distillguard, default preset", preset),
        ):
            port = free_port()
            gateway = start_gateway_process(
                config, f"http://127.0.0.1:{upstream}", port, Path(tempfile.mkdtemp())
            )
            try:
                measure(label, port)
                costs[label] = gateway_costs(gateway.pid, port, upstream, path, args.cell_seconds)
                c = costs[label]
                print(
                    f"  {label}: {c.stream_cpu_us_per_event:.1f} us CPU per streamed event, "
                    f"added p50 {c.added_p50_ms:.3f} ms at concurrency 1",
                    file=sys.stderr,
                    flush=True,
                )
            finally:
                gateway.terminate()
                gateway.wait()
    report(results, costs, args)


ENGINE, PRESET = "distillguard, no policies", "distillguard, default preset"


def report(results: dict[str, WrkResult], costs: dict[str, GatewayCosts], args: argparse.Namespace) -> None:
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{int(args.duration)}s, one small chat completion "
        f"(mock upstream), one worker each, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(f"{'target':<30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for label, r in results.items():
        print(f"{label:<30} {r.rps:>9,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7}")

    def ratio(a: str, b: str) -> float | None:
        return results[a].rps / results[b].rps if a in results and b in results else None

    rows: list[tuple[str, float | None, str, float, bool]] = []  # (what, value, unit, goal, at most)
    for ours, short in ((PRESET, "default preset"), (ENGINE, "engine")):
        rows.append((f"{short} / LiteLLM req/s", ratio(ours, "LiteLLM proxy"), "x", 40.0, False))
        rows.append((f"{short} / nginx req/s", ratio(ours, "nginx pass-through"), "x", 0.25, False))
    for ours, short, goal in ((ENGINE, "engine", 8.0), (PRESET, "default preset", 15.0)):
        cost = costs.get(ours)
        value = cost.stream_cpu_us_per_event if cost else None
        rows.append((f"{short}: stream CPU per event", value, "us", goal, True))
    for ours, short in ((PRESET, "default preset"), (ENGINE, "engine")):
        cost = costs.get(ours)
        rows.append(
            (f"{short}: added p50, concurrency 1", cost.added_p50_ms if cost else None, "ms", 0.5, True)
        )
    events = next((c.events_per_answer for c in costs.values()), 0)
    print()
    print(f"The performance issue's targets (stream: {events} events per answer, concurrency 1):")
    print(f"{'measure':<40} {'this run':>10} {'target':>10}  met")
    for what, value, unit, goal, at_most in rows:
        if value is None:
            print(f"{what:<40} {'n/a':>10} {'':>10}")
            continue
        met = value <= goal if at_most else value >= goal
        shown = f"{value:.3g}x" if unit == "x" else f"{value:.2f} {unit}"
        target = f"{'<=' if at_most else '>='} {goal:g}{'x' if unit == 'x' else ' ' + unit}"
        print(f"{what:<40} {shown:>10} {target:>10}  {'yes' if met else 'no'}")


if __name__ == "__main__":
    main()
