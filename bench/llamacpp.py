"""Through a real model: time to first token and tokens/s, direct to llama.cpp against through the gateway.

    python -m bench.llamacpp [--requests 12] [--max-tokens 128] [--config policies/default.yaml]
                             [--without watermark]

Starts llama.cpp's server with SmolLM2-135M and its own chat template (tests/llamacpp/server.py; the
tests' reasoning template would put the whole answer in an unclosed think block) and, one after the
other, two gateways in front of it: the engine alone (the config with no policies) and the given policy
(every default policy on; the bench account's quota raised so that it never rejects). For each it sends
the same streaming chat requests alternately direct and through the gateway and prints median TTFT,
decode tokens/s, and the gateway's figures as differences and ratios of the direct ones. Requests are
the same both ways (no llama.cpp-only parameter: the gateway refuses ``reasoning_format``, which the
reasoning policy relies on). ``--without NAME`` adds a third gateway: the policy without the named
policies (repeatable), to tell which policy the added time to first token comes from.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import openai
import yaml

from bench.gateway import KEY, ROOT, bare_config, start_gateway_process
from tests.llamacpp.server import LlamaServer
from tests.support import free_port

PROMPTS = [
    "Explain why the sky is blue.",
    "Describe how a bicycle works.",
    "Give three tips for learning a language.",
    "Why do leaves change colour in autumn?",
]


def run(client: openai.OpenAI, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    """(ttft seconds, decode tokens/s, tokens) of one streamed answer."""
    started = time.perf_counter()
    first = None
    chunks = 0
    stream = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        stream=True,
        temperature=0,
        seed=1,
    )
    for chunk in stream:
        if chunk.choices and (chunk.choices[0].delta.content or ""):
            chunks += 1
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    assert first is not None, "no content streamed"
    rate = (chunks - 1) / (end - first) if chunks > 1 and end > first else float("nan")
    return first - started, rate, chunks


def without(config: Path, names: list[str], workdir: Path) -> Path:
    """``config`` with the policies ``names`` removed from every tier and risk level."""
    data = yaml.safe_load(config.read_text())
    for tier in data["tiers"].values():
        tier["policies"] = [p for p in tier.get("policies", []) if p["name"] not in names]
    for level in (data.get("risk_levels") or {}).values():
        overrides = level.get("overrides") or {}
        for name in names:
            overrides.pop(name, None)
    path = workdir / "without.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def measure(
    server: LlamaServer, config: Path, requests: int, max_tokens: int
) -> dict[str, list[tuple[float, float, int]]]:
    """(ttft, tokens/s, tokens) of ``requests`` answers each, direct and through a gateway of ``config``."""
    gateway_port = free_port()
    gateway = start_gateway_process(config, server.url, gateway_port, Path(tempfile.mkdtemp()))
    try:
        direct = openai.OpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0, timeout=300)
        through = openai.OpenAI(
            base_url=f"http://127.0.0.1:{gateway_port}/v1", api_key=KEY, max_retries=0, timeout=300
        )
        run(direct, PROMPTS[0], 8)  # warm-up (model load, prompt cache)
        run(through, PROMPTS[0], 8)
        results: dict[str, list[tuple[float, float, int]]] = {"direct": [], "gateway": []}
        for index in range(requests):
            prompt = PROMPTS[index % len(PROMPTS)]
            # llama-server reuses the KV cache of the slot's last prompt: prime it, so that neither
            # measured request pays the prompt's processing (otherwise whichever runs first does)
            run(direct, prompt, 1)
            order = [("direct", direct), ("gateway", through)]
            for name, client in order if index % 2 == 0 else reversed(order):
                results[name].append(run(client, prompt, max_tokens))
        return results
    finally:
        gateway.terminate()
        gateway.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--config", default=str(ROOT / "policies" / "default.yaml"))
    parser.add_argument("--without", action="append", default=[], metavar="POLICY")
    args = parser.parse_args()
    preset = Path(args.config)
    workdir = Path(tempfile.mkdtemp())
    configs = {"engine alone": bare_config(preset, workdir), "policies": preset}
    if args.without:
        configs["without " + ",".join(args.without)] = without(preset, args.without, workdir)
    server = LlamaServer(free_port(), reasoning=False).wait_ready()  # plain answers: content streams
    try:
        measured = {
            label: measure(server, config, args.requests, args.max_tokens)
            for label, config in configs.items()
        }
    finally:
        server.stop()
    print(
        f"config: {args.config}; {args.requests} streamed answers each, max_tokens {args.max_tokens}, "
        f"alternating direct and through the gateway"
    )
    print(
        f"{'gateway':<22}{'ttft direct':>12}{'ttft gateway':>13}{'added ttft':>11}"
        f"{'tok/s direct':>13}{'tok/s gateway':>14}{'ratio':>7}"
    )
    for label, results in measured.items():
        ttft = {k: statistics.median(r[0] for r in v) * 1000 for k, v in results.items()}
        rate = {k: statistics.median(r[1] for r in v) for k, v in results.items()}
        print(
            f"{label:<22}{ttft['direct']:>9.1f} ms{ttft['gateway']:>10.1f} ms"
            f"{ttft['gateway'] - ttft['direct']:>8.1f} ms{rate['direct']:>13.1f}{rate['gateway']:>14.1f}"
            f"{rate['gateway'] / rate['direct']:>7.3f}"
        )


if __name__ == "__main__":
    main()
