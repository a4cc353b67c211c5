"""Gateway CPU per streamed answer and per event, code before against code after, on a shared noisy machine.

    python -m bench.ab_gateway --base /tmp/base [--config policies/default.yaml | --engine]
        [--rounds 15] [--answers 80] [--concurrency 1] [--delay-ms 0]

``--base`` is another checkout of this repository (``git worktree add /tmp/base <commit>``). One
mock upstream and two gateways, one run from each tree with the same policy (the bench account's
quota raised, as ``bench.gateway`` does; ``--engine``: every policy removed), stay up together and
are driven alternately in short bursts of ``--answers`` streamed answers (the order flips every
round), so that load from elsewhere on the machine falls on both alike; a run one after the other
moves by more than most changes here. Prints each gateway's CPU time per answer and per upstream
event (``/proc/<pid>/stat``, user + system) and the ratio after / before. ``--delay-ms`` spaces the
mock's events (each then reaches the gateway on its own, as a model's tokens do).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import uvloop

from bench.gateway import BODY, KEY, _one, bare_config, bench_config, start_mock
from bench.processes import bench_env, cpu_seconds, wait_ready
from gateway.auth.keys import digest

ROOT = Path(__file__).resolve().parent.parent


def start_gateway(
    tree: Path, policy: Path, keys: Path, upstream: str, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """``distillguard serve`` from the source tree ``tree``; returns the process and its port."""
    from tests.support import free_port

    port = free_port()
    command = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(policy), "--port", str(port)]
    command += ["--host", "127.0.0.1", "--upstream", upstream, "--keys-file", str(keys)]
    command += ["--operator-port", str(free_port())]
    env = {**bench_env(), "PYTHONPATH": str(tree)}
    process = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    wait_ready(f"http://127.0.0.1:{port}/readyz", process, log)
    return process, port


def chat_request(headers: dict[str, str], *, stream: bool) -> bytes:
    """The bench's chat completion as raw HTTP/1.1 bytes, ``headers`` added."""
    payload = orjson.dumps({**BODY, "stream": stream})
    head = "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + f"content-length: {len(payload)}\r\n\r\n").encode() + payload


def add_pair_arguments(parser: argparse.ArgumentParser, rounds: int) -> None:
    """The options every before/after bench takes: the base tree, the config, the rounds."""
    parser.add_argument("--base", required=True, help="a checkout of the code before (a git worktree)")
    parser.add_argument("--config", default=str(ROOT / "policies" / "default.yaml"))
    parser.add_argument(
        "--base-config",
        help="the before tree's own config, where it refuses keys --config has (by default --config)",
    )
    parser.add_argument("--engine", action="store_true", help="the config with every policy removed")
    parser.add_argument("--rounds", type=int, default=rounds)


@dataclass
class PairSetup:
    """The two trees, each one's bench policy, the keys in a work directory, and a running mock upstream."""

    trees: dict[str, Path]
    work: Path
    policies: dict[str, Path]
    keys: Path
    mock_port: int
    mock: subprocess.Popen[bytes]


def prepare_pair(args: argparse.Namespace) -> PairSetup:
    """What ``add_pair_arguments``' options ask for; the caller terminates ``mock``."""
    from tests.support import free_port

    trees = {"before": Path(args.base).resolve(), "after": ROOT}
    work = Path(tempfile.mkdtemp())
    policies: dict[str, Path] = {}
    for label, given in (("after", args.config), ("before", args.base_config or args.config)):
        (work / label).mkdir()
        config = bare_config(Path(given), work / label) if args.engine else Path(given)
        schema = trees[label] / "gateway" / "config" / "schema.py"
        policies[label] = bench_config(config, work / label, "forward_headers" in schema.read_text())
    keys = work / "keys.jsonl"
    keys.write_bytes(orjson.dumps({"sha256": digest(KEY), "account": "bench", "tier": None}) + b"\n")
    mock_port = free_port()
    return PairSetup(trees, work, policies, keys, mock_port, start_mock(mock_port))


async def burst(port: int, request: bytes, answers: int, concurrency: int) -> int:
    """``answers`` streamed answers over ``concurrency`` kept-alive connections; returns how many."""
    each = max(1, answers // concurrency)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(each):
            await _one(reader, writer, request, True)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return each * concurrency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_pair_arguments(parser, rounds=15)
    parser.add_argument("--answers", type=int, default=80, help="streamed answers per burst")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="the mock's pause between stream events")
    args = parser.parse_args()
    setup = prepare_pair(args)
    trees, work, policies, keys = setup.trees, setup.work, setup.policies, setup.keys
    mock_port, mock = setup.mock_port, setup.mock
    gateways: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        upstream = f"http://127.0.0.1:{mock_port}"
        for label, tree in trees.items():
            gateways[label] = start_gateway(tree, policies[label], keys, upstream, work / f"{label}.log")
        headers = {"authorization": f"Bearer {KEY}", "x-mock-reasoning": "none"}
        if args.delay_ms:
            headers["x-mock-delay-ms"] = str(args.delay_ms)
        events = httpx.post(
            f"{upstream}/v1/chat/completions", json={**BODY, "stream": True}, headers=headers, timeout=30
        ).content.count(b"data: ")
        request = chat_request(headers, stream=True)
        for _, port in gateways.values():  # warm-up: lazily built tables, the first connections
            uvloop.run(burst(port, request, max(args.concurrency, args.answers // 2), args.concurrency))
        cpu = dict.fromkeys(gateways, 0.0)
        answers = dict.fromkeys(gateways, 0)
        loads: list[float] = []
        for round_ in range(args.rounds):
            order = list(gateways) if round_ % 2 == 0 else list(reversed(gateways))
            for label in order:
                process, port = gateways[label]
                before = cpu_seconds(process.pid)
                answers[label] += uvloop.run(burst(port, request, args.answers, args.concurrency))
                cpu[label] += cpu_seconds(process.pid) - before
            loads.append(os.getloadavg()[0])
    finally:
        for process, _ in gateways.values():
            process.terminate()
        mock.terminate()
    spacing = f"{args.delay_ms} ms apart" if args.delay_ms else "sent at once"
    print(
        f"{'engine alone' if args.engine else args.config}; {args.rounds} alternated rounds x {args.answers} "
        f"answers, concurrency {args.concurrency}; {events} events per answer, {spacing}; "
        f"load average {min(loads):.1f}-{max(loads):.1f}"
    )
    per_answer = {label: cpu[label] / max(1, answers[label]) * 1e6 for label in gateways}
    for label, tree in trees.items():
        print(
            f"  {label:<7} {tree}: {per_answer[label]:8.0f} us CPU per answer, "
            f"{per_answer[label] / max(1, events):6.1f} per event"
        )
    print(f"  after / before: {per_answer['after'] / per_answer['before']:.3f}")


if __name__ == "__main__":
    main()
