"""``bench.watchdog`` runs and prints the watchdog's cost against its baseline (a smoke test, no speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_watchdog_bench_prints_its_figures() -> None:
    command = [sys.executable, "-m", "bench.watchdog", "--exchanges", "500", "--rounds", "1", "--held", "100"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("500 exchanges") and "100 other watchdogs armed" in lines[0]
    assert float(lines[2].split(":")[1].split()[0]) > 0
    assert "x baseline" in lines[3]
