"""``bench.stream_events`` measures what it says: each stream policy of the preset filters the answer."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from bench.pipeline import SECRETS
from bench.stream_events import measure

ROOT = Path(__file__).resolve().parents[2]


def test_each_stream_policy_of_the_default_preset_runs_its_filter(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A variant whose filter is never opened (its request phase skipped: no per-exchange state)
    # would measure the engine alone under a policy's name.
    for name in SECRETS:
        monkeypatch.setenv(name, "test-secret-" + name.lower())
    preset = str(ROOT / "policies" / "default.yaml")
    args = argparse.Namespace(config=preset, answers=3, rounds=1, profile=None)
    asyncio.run(measure(args))
    out = capsys.readouterr().out
    rows = {line[:22].strip(): line[22:].split() for line in out.splitlines()[3:] if line.strip()}
    assert {label: int(cells[0]) for label, cells in rows.items()} == {
        "engine alone": 0,
        "reasoning": 1,
        "logprobs": 1,
        "watermark": 1,
        "preset, default tier": 3,
    }
    assert all(float(cells[1]) > 0 for cells in rows.values())
