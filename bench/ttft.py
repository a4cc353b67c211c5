"""Added time to first token against the mock, which streams one token per --delay-ms: where it goes.

    python -m bench.ttft [--delay-ms 20] [--requests 15] [--config policies/default.yaml]
                         [--without watermark]

Starts the mock upstream and, one after the other, gateways of the engine alone, the given policy (quota
raised) and the policy without the ``--without`` policies (default: the watermark). For each it asks
for the same streamed answer alternately direct and through the gateway and prints the median time until
the first event that carries content, and the difference. A policy that holds output back shows as a
multiple of the mock's token interval; the rest is the request phase. Unlike ``bench.llamacpp`` it needs
no model and stays readable on a busy machine (the interval is fixed, not the model's speed).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from bench.gateway import BODY, KEY, ROOT, bare_config, start_servers
from bench.llamacpp import without


def first_content_seconds(port: int, delay_ms: float) -> float:
    """Seconds from sending a streamed request to the first event carrying content."""
    headers = {"authorization": f"Bearer {KEY}", "x-mock-reasoning": "none", "x-mock-delay-ms": str(delay_ms)}
    body = {**BODY, "stream": True, "max_tokens": 8}
    started = time.perf_counter()
    with httpx.stream(
        "POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        received = b""
        for chunk in response.iter_raw():
            received += chunk
            for line in received.split(b"\n"):
                if not line.startswith(b"data: {"):
                    continue
                for choice in orjson.loads(line[6:]).get("choices") or []:
                    if (choice.get("delta") or {}).get("content"):
                        return time.perf_counter() - started
    raise SystemExit("the stream carried no content")


def measure(config: Path, requests: int, delay_ms: float) -> tuple[float, float]:
    """Median seconds to the first content token, (direct, through a gateway of ``config``)."""
    from tests.support import free_port

    mock_port, gateway_port = free_port(), free_port()
    mock, gateway = start_servers(config, mock_port, gateway_port)
    try:
        for _ in range(3):  # warm-up
            first_content_seconds(mock_port, delay_ms)
            first_content_seconds(gateway_port, delay_ms)
        direct, through = [], []
        for _ in range(requests):
            direct.append(first_content_seconds(mock_port, delay_ms))
            through.append(first_content_seconds(gateway_port, delay_ms))
    finally:
        gateway.terminate()
        mock.terminate()
        gateway.wait()
        mock.wait()
    return statistics.median(direct), statistics.median(through)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--config", default=str(ROOT / "policies" / "default.yaml"))
    parser.add_argument("--without", action="append", default=[], metavar="POLICY")
    args = parser.parse_args()
    names = args.without or ["watermark"]
    preset, workdir = Path(args.config), Path(tempfile.mkdtemp())
    configs = {
        "engine alone": bare_config(preset, workdir),
        "policies": preset,
        "without " + ",".join(names): without(preset, names, workdir),
    }
    print(
        f"config: {args.config}; the mock streams one token per {args.delay_ms:g} ms; "
        f"medians of {args.requests}"
    )
    print(f"{'gateway':<26}{'ttft direct':>12}{'ttft gateway':>14}{'added':>10}")
    for label, config in configs.items():
        direct, through = measure(config, args.requests, args.delay_ms)
        print(
            f"{label:<26}{direct * 1e3:>9.2f} ms{through * 1e3:>11.2f} ms{(through - direct) * 1e3:>7.2f} ms"
        )


if __name__ == "__main__":
    main()
