"""``bench.ab_gateway`` drives two gateways from two source trees and compares their CPU (a smoke test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_both_gateways_answer_and_the_ratio_is_printed() -> None:
    # The same tree on both sides: what is checked is that each gateway served the bursts
    # (a gateway that failed them would have no CPU per answer to compare), not any speed.
    command = [sys.executable, "-m", "bench.ab_gateway", "--base", str(ROOT), "--engine"]
    command += ["--rounds", "2", "--answers", "60"]  # enough CPU for /proc's 10 ms ticks
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "67 events per answer" in lines[0]
    assert lines[1].lstrip().startswith("before") and lines[2].lstrip().startswith("after")
    assert all(float(line.split(":")[1].split()[0]) > 0 for line in lines[1:3])
    assert lines[3].strip().startswith("after / before:")
