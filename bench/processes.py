"""The processes of a benchmark run: their environment, their readiness, their CPU time and memory."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx


def bench_env() -> dict[str, str]:
    """This environment for a bench's child servers: unbuffered, with test keys for the policies' secrets."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("DISTILLGUARD_WATERMARK_KEY", "DISTILLGUARD_SEAL_KEY", "DISTILLGUARD_LOGPROB_NOISE_KEY"):
        env.setdefault(name, "bench-secret-" + name.lower())
    return env


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path | None = None) -> None:
    """Return once ``url`` answers below 500; exit with the log's tail if ``process`` ends first."""
    deadline = time.monotonic() + 120  # a traced or loaded gateway may take a while to start
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text()[-2000:] if log else ""
            raise SystemExit(f"server exited with status {process.returncode}\n{tail}")
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory of process ``pid`` in MiB (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and of its live children (the detector's embedding
    process works for the gateway: its CPU is the gateway's), from /proc/<pid>/stat."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total
