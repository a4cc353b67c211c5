"""``bench.ab_gateway`` (streamed) and ``bench.ab_request`` (non-streamed) drive two gateways from two
source trees and compare them (smoke tests).

The same tree on both sides: what is checked is that each gateway served every burst (an error answer
stops the run, and a gateway that failed would have no CPU to compare) and both figures were measured,
not any speed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _printed(module: str, *options: str, timeout: float) -> list[str]:
    command = [sys.executable, "-m", module, "--base", str(ROOT), "--engine", "--rounds", "2", *options]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_streamed_both_gateways_answer_and_the_ratio_is_printed() -> None:
    lines = _printed("bench.ab_gateway", "--answers", "60", timeout=120)  # enough CPU for /proc's ticks
    assert "67 events per answer" in lines[0]
    assert lines[1].lstrip().startswith("before") and lines[2].lstrip().startswith("after")
    assert all(float(line.split(":")[1].split()[0]) > 0 for line in lines[1:3])
    assert lines[3].strip().startswith("after / before:")


def test_non_streamed_both_gateways_answer_and_the_ratios_are_printed() -> None:
    lines = _printed("bench.ab_request", "--requests", "120", timeout=180)
    assert "concurrency 1, non-streamed" in lines[0]
    assert lines[1].strip().startswith("direct p50")
    assert lines[2].lstrip().startswith("before") and lines[3].lstrip().startswith("after")
    assert all(float(line.split(":")[1].split()[0]) > 0 for line in lines[2:4])
    assert lines[4].strip().startswith("after / before: CPU")
