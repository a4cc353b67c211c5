"""``bench.pipeline`` still runs every policy of the shipped preset (a smoke test; speed is not asserted)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.pipeline import SECRETS, main_async, preset_policies

ROOT = Path(__file__).resolve().parents[2]


def test_every_policy_of_the_default_preset_is_measured(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SECRETS:
        monkeypatch.setenv(name, "test-secret-" + name.lower())
    preset = ROOT / "policies" / "default.yaml"
    asyncio.run(main_async(preset, requests=20, rounds=1))
    out = capsys.readouterr().out
    names = [name for name, _ in preset_policies(preset)]
    assert {"detector", "reasoning", "logprobs", "quota", "watermark"} <= set(names)
    rows = {line.split()[0] for line in out.splitlines()[3:]}
    assert set(names) | {"(empty", "all,"} <= rows
