"""Memory of idle streams: one worker holding thousands of streams whose upstream has gone quiet.

    python -m bench.idle_streams [--streams 10000] [--hold 5] [--config policies/default.yaml]
        [--only engine|preset] [--trace 40 [--trace-depth 1]]

A model that thinks for a minute before its next token leaves the gateway holding the stream: the
client's connection, the upstream's, and whatever the engine and the policies keep per stream. This
starts one gateway worker (``distillguard serve``; the engine alone, then the given preset with the
bench account's quota raised) in front of an upstream of its own that answers each streaming request
with its response head and one event, then sends nothing more. It opens ``--streams`` streams through
the gateway (each client reads the head and the first event), holds them ``--hold`` seconds, and prints
the gateway's resident memory before, while holding (VmRSS) and its peak (VmHWM), and the memory per
held stream: (held - before) / streams. The issue's target: 10,000 streams under 300 MB.

The upstream runs in a child process and the clients in this one; the gateway holds two sockets per
stream. Where the open-file limit (raised to the hard limit) cannot give the gateway 2 x 10,000 sockets,
the run holds as many streams as it can and also prints the resident memory extrapolated to 10,000.

``--trace N`` runs the gateway under tracemalloc (``bench.traced_gateway``; slower, and its RSS is not
the figure to read) and prints the N lines of code whose allocations grew most while the streams were
held, in bytes per stream: what each held stream keeps (1,000 streams are enough).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import signal
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import cast

import orjson
import uvloop
import yaml

from bench.gateway import BODY, KEY, ROOT, bare_config, start_gateway_process
from tests.support import QuietUpstream

FIRST_EVENT = {
    "id": "chatcmpl-idle",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "mock-small",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Thinking. "}, "finish_reason": None}],
}
_EVENT = b"data: " + orjson.dumps(FIRST_EVENT) + b"\n\n"
RESPONSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n"
    + f"{len(_EVENT):x}\r\n".encode()
    + _EVENT
    + b"\r\n"
)


class StreamClient(asyncio.Protocol):
    """Sends one streaming request; ``ready`` is set once the head and the first event are in."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.received = b""
        self.ready = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.ready.done():
            return
        self.received += data
        if b"\r\n\r\n" in self.received and b"data: " in self.received:
            status = self.received.split(b" ", 2)[1]
            self.ready.set_result(status)
            self.received = b""

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_result(b"closed")


def raise_open_files() -> int:
    """Raise the open-file limit to the hard limit (children inherit it); return it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def serve_quiet_upstream(port: int) -> None:
    """The quiet upstream on ``port`` until killed (a child process: its sockets are its own)."""

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(
            lambda: QuietUpstream(RESPONSE_HEAD), "127.0.0.1", port, backlog=8192
        )
        await server.serve_forever()

    uvloop.run(serve())


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values["VmRSS"], values["VmHWM"]


def idle_config(config: Path, streams: int, workdir: Path) -> Path:
    """``config`` with its upstream pool sized for ``streams`` and idle timeouts past the hold."""
    data = yaml.safe_load(config.read_text())
    for upstream in data["upstreams"]:
        upstream["max_connections"] = streams + 64
        upstream["timeouts"] = {"connect": 30, "first_byte": 600, "idle": 600, "total": 1200}
    data.setdefault("limits", {})["keep_alive_seconds"] = 600
    path = workdir / f"idle-{config.name}"
    path.write_text(yaml.safe_dump(data))
    return path


async def hold_streams(gateway_port: int, count: int, batch: int) -> list[asyncio.Transport]:
    """Open ``count`` streams through the gateway, ``batch`` at a time; return their transports."""
    loop = asyncio.get_running_loop()
    payload = orjson.dumps({**BODY, "stream": True})
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {KEY}\r\ncontent-length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    transports: list[asyncio.Transport] = []
    for start in range(0, count, batch):
        pairs = await asyncio.gather(
            *(
                loop.create_connection(lambda: StreamClient(request), "127.0.0.1", gateway_port)
                for _ in range(min(batch, count - start))
            )
        )
        statuses = await asyncio.wait_for(asyncio.gather(*(p.ready for _, p in pairs)), 120)
        bad = [s for s in statuses if s != b"200"]
        if bad:
            raise SystemExit(f"{len(bad)} streams were not opened (status {bad[0]!r})")
        transports.extend(t for t, _ in pairs)
    return transports


async def snapshot(gateway_pid: int, trace_dir: Path | None) -> None:
    """With ``trace_dir``: have the traced gateway dump its next tracemalloc snapshot, and wait for it."""
    if trace_dir is None:
        return
    number = len(list(trace_dir.glob("snapshot-*.done"))) + 1  # noqa: ASYNC240 (a few files, at rest)
    os.kill(gateway_pid, signal.SIGUSR1)
    done = trace_dir / f"snapshot-{number}.done"
    for _ in range(6000):
        if done.exists():
            return
        await asyncio.sleep(0.05)
    raise SystemExit("the traced gateway wrote no snapshot")


async def measure(
    gateway_pid: int, gateway_port: int, streams: int, hold: float, trace_dir: Path | None = None
) -> dict[str, float]:
    warm = await hold_streams(gateway_port, 200, 200)  # the code paths and pools, before the baseline
    for transport in warm:
        transport.close()
    await asyncio.sleep(2.0)
    await snapshot(gateway_pid, trace_dir)
    before, _ = rss_mb(gateway_pid)
    started = time.perf_counter()
    transports = await hold_streams(gateway_port, streams, 500)
    opened = time.perf_counter() - started
    await asyncio.sleep(hold)
    held, peak = rss_mb(gateway_pid)
    await snapshot(gateway_pid, trace_dir)
    for transport in transports:
        transport.close()
    await asyncio.sleep(3.0)
    after, _ = rss_mb(gateway_pid)
    return {"before": before, "held": held, "peak": peak, "after": after, "open_s": opened}


def run_one(
    config: Path, streams: int, hold: float, trace_dir: Path | None = None, trace_depth: int = 1
) -> dict[str, float]:
    upstream_port = _free_port()
    upstream = multiprocessing.get_context("spawn").Process(
        target=serve_quiet_upstream, args=(upstream_port,), daemon=True
    )
    upstream.start()

    async def main() -> dict[str, float]:
        workdir = Path(tempfile.mkdtemp(prefix="dg-idle-"))
        gateway_port = _free_port()
        traced = {"DG_TRACE_DIR": str(trace_dir), "DG_TRACE_DEPTH": str(trace_depth)} if trace_dir else None
        gateway = await asyncio.to_thread(
            start_gateway_process,
            idle_config(config, streams, workdir),
            f"http://127.0.0.1:{upstream_port}",
            gateway_port,
            workdir,
            "bench.traced_gateway" if trace_dir else "gateway.cli",
            traced,
        )
        try:
            return await measure(gateway.pid, gateway_port, streams, hold, trace_dir)
        finally:
            gateway.terminate()
            await asyncio.to_thread(gateway.wait)

    try:
        return uvloop.run(main())
    finally:
        upstream.terminate()
        upstream.join()


def print_trace(label: str, trace_dir: Path, streams: int, top: int) -> None:
    """The lines of code whose allocations grew most between the two snapshots, per held stream."""
    before = tracemalloc.Snapshot.load(str(trace_dir / "snapshot-1.trace"))
    held = tracemalloc.Snapshot.load(str(trace_dir / "snapshot-2.trace"))
    stats = held.compare_to(before, "traceback" if before.traceback_limit > 1 else "lineno")
    total = sum(stat.size_diff for stat in stats)
    print(f"{label}: {total / streams:,.0f} bytes of Python objects per held stream (tracemalloc); largest:")
    for stat in stats[:top]:
        frames = " < ".join(f"{_short(frame.filename)}:{frame.lineno}" for frame in stat.traceback)
        print(f"{stat.size_diff / streams:>9,.0f} B {stat.count_diff / streams:>6.1f} objects  {frames}")
    print(f"{label}: by file")
    for stat in held.compare_to(before, "filename")[:top]:
        print(
            f"{stat.size_diff / streams:>9,.0f} B {stat.count_diff / streams:>6.1f} objects  "
            f"{_short(stat.traceback[0].filename)}"
        )


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3", str(ROOT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _free_port() -> int:
    from tests.support import free_port

    return free_port()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--config", default=str(ROOT / "policies" / "default.yaml"))
    parser.add_argument("--only", choices=["engine", "preset"], help="measure one gateway, not both")
    parser.add_argument(
        "--trace", type=int, default=0, metavar="N", help="print the N largest allocation sites"
    )
    parser.add_argument(
        "--trace-depth", type=int, default=1, help="frames per allocation site (with --trace)"
    )
    args = parser.parse_args()
    limit = raise_open_files()
    streams = min(args.streams, (limit - 128) // 2)  # the gateway's two sockets per stream, and its own
    if streams < args.streams:
        print(f"the open-file limit ({limit}) lets one process hold {streams} streams, not {args.streams}")
    workdir = Path(tempfile.mkdtemp(prefix="dg-idle-"))
    preset = Path(args.config)
    configs = {
        "engine alone": bare_config(preset, workdir),
        "default preset": preset,
    }
    if args.only:
        configs = {label: path for label, path in configs.items() if args.only in label}
    rows = {}
    for label, config in configs.items():
        trace_dir = Path(tempfile.mkdtemp(prefix="dg-trace-")) if args.trace else None
        rows[label] = run_one(config, streams, args.hold, trace_dir, args.trace_depth)
        if trace_dir is not None:
            print_trace(label, trace_dir, streams, args.trace)
    print(f"{streams} idle streams held {args.hold:g} s by one worker (config {args.config})")
    print(
        f"{'gateway':<16}{'RSS before':>11}{'RSS held':>10}{'peak':>8}{'after':>8}"
        f"{'per stream':>12}{'at 10,000':>11}{'opened in':>11}"
    )
    for label, r in rows.items():
        per_stream = (r["held"] - r["before"]) / streams
        at_10k = r["before"] + 10_000 * per_stream
        print(
            f"{label:<16}{r['before']:>8.0f} MiB{r['held']:>6.0f} MiB{r['peak']:>4.0f} MiB"
            f"{r['after']:>4.0f} MiB{per_stream * 1024:>8.1f} KiB{at_10k:>7.0f} MiB{r['open_s']:>9.1f} s"
        )
    print("target: 10,000 streams held under 300 MB (286 MiB) of resident memory")


if __name__ == "__main__":
    main()
