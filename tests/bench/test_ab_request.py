"""``bench.ab_request`` drives two gateways from two source trees, non-streamed (a smoke test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_both_gateways_answer_and_the_ratios_are_printed() -> None:
    # The same tree on both sides: what is checked is that each gateway served every request
    # (an error answer stops the run) and both figures were measured, not any speed.
    command = [sys.executable, "-m", "bench.ab_request", "--base", str(ROOT), "--engine"]
    command += ["--rounds", "2", "--requests", "120"]  # enough CPU for /proc's 10 ms ticks
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "concurrency 1, non-streamed" in lines[0]
    assert lines[1].strip().startswith("direct p50")
    assert lines[2].lstrip().startswith("before") and lines[3].lstrip().startswith("after")
    assert all(float(line.split(":")[1].split()[0]) > 0 for line in lines[2:4])
    assert lines[4].strip().startswith("after / before: CPU")
