"""Per-account features: bias-corrected averages, rate, regularity, bounded memory."""

from __future__ import annotations

from policies.detector import features as F
from policies.detector.classifier import CATEGORY_INDEX
from policies.detector.features import AccountState, remember_infra


def _update(state: AccountState, mono: float, cot: float = 0.0, single: bool = True) -> None:
    state.update(
        alpha=1 / 32,
        mono=mono,
        wall=mono,
        cot=cot,
        rubric=0.0,
        logprobs=False,
        dup=False,
        single=single,
        max_reasoning=False,
        new_model=False,
        category=CATEGORY_INDEX["math"],
        extraction=cot,
    )


def test_first_requests_are_plain_averages() -> None:
    state = AccountState("a", 0.0)
    _update(state, 0.0, cot=1.0)
    assert state.mean(F.COT) == 1.0  # not pulled towards 0 by the empty start
    _update(state, 1.0, cot=0.0)
    assert 0.45 < state.mean(F.COT) < 0.55


def test_averages_forget_old_requests() -> None:
    state = AccountState("a", 0.0)
    for i in range(200):
        _update(state, float(i), cot=1.0)
    for i in range(200, 400):
        _update(state, float(i), cot=0.0)
    assert state.mean(F.COT) < 0.01


def test_rate_reads_as_requests_per_minute() -> None:
    state = AccountState("a", 0.0)
    for i in range(600):
        _update(state, i * 0.5)  # 120 per minute, for five minutes
    assert 100 < state.rate_per_minute(300.0) < 125
    assert state.rate_per_minute(300.0 + 600) < 1  # ten quiet minutes later


def test_regularity_separates_clockwork_from_random_gaps() -> None:
    import random

    clockwork, bursty = AccountState("a", 0.0), AccountState("b", 0.0)
    rng = random.Random(1)
    t = 0.0
    for i in range(100):
        _update(clockwork, i * 2.0)
        t += rng.expovariate(0.5)
        _update(bursty, t)
    assert clockwork.regularity() > 0.95
    assert bursty.regularity() < 0.4


def test_capability_focus_and_snapshot() -> None:
    state = AccountState("a", 0.0)
    for i in range(50):
        _update(state, float(i))
    focus, category = state.capability_focus()
    assert category == "math" and focus > 0.99
    snapshot = state.snapshot(50.0)
    assert snapshot["requests"] == 50 and snapshot["capabilities"]["math"] > 0.99


def test_infra_keys_are_bounded() -> None:
    state = AccountState("a", 0.0)
    for i in range(10):
        remember_infra(state, f"k{i}")
    assert len(state.infra) == F.MAX_INFRA and state.infra[-1] == "k9"
    assert not remember_infra(state, "k9")
