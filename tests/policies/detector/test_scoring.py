"""Score composition and hysteresis."""

from __future__ import annotations

from policies.detector.classifier import CATEGORY_INDEX
from policies.detector.config import DetectorConfig
from policies.detector.features import AccountState
from policies.detector.scoring import decide, score_account

SETTINGS = DetectorConfig()


def _account(requests: int, cot: float, dup: bool, single: bool, category: str = "other") -> AccountState:
    state = AccountState("a", 0.0)
    for i in range(requests):
        state.update(
            alpha=1 / 32,
            mono=i * 1.0,
            wall=i * 1.0,
            cot=cot,
            rubric=0.0,
            logprobs=False,
            dup=dup,
            single=single,
            max_reasoning=False,
            new_model=False,
            category=CATEGORY_INDEX[category],
            extraction=cot,
        )
    return state


def test_behaviour_alone_stays_below_elevated() -> None:
    """A templated, single-turn, high-volume batch job is not a distiller by that alone."""
    batch = _account(500, cot=0.0, dup=True, single=True)
    score = score_account(batch, SETTINGS, 500.0)
    assert score.value < SETTINGS.thresholds.elevated
    assert score.value <= SETTINGS.weights.behaviour_floor + 1e-9


def test_harvester_scores_high_with_explanation() -> None:
    harvester = _account(60, cot=0.9, dup=True, single=True, category="math")
    score = score_account(harvester, SETTINGS, 60.0)
    assert score.value >= SETTINGS.thresholds.high
    explained = score.explain()
    assert explained["top_reasons"][0] == "cot_elicitation"
    assert set(explained["signals"]) >= {"cot_elicitation", "template_reuse", "single_turn", "cluster"}


def test_own_score_waits_for_min_requests_but_cluster_does_not() -> None:
    young = _account(5, cot=1.0, dup=True, single=True)
    assert score_account(young, SETTINGS, 5.0).value == 0.0
    clustered = score_account(young, SETTINGS, 5.0, cluster=1.0, cluster_id="infra:x")
    assert clustered.value >= SETTINGS.thresholds.high and clustered.cluster_id == "infra:x"


def test_raise_is_immediate_and_may_jump() -> None:
    assert decide("none", 0.0, 0.7, 50, 1.0, SETTINGS) == "high"
    assert decide("none", 0.0, 0.45, 50, 1.0, SETTINGS) == "elevated"


def test_critical_needs_enough_own_requests() -> None:
    assert decide("none", 0.0, 0.95, 50, 1.0, SETTINGS) == "high"
    assert decide("none", 0.0, 0.95, SETTINGS.hysteresis.critical_min_requests, 1.0, SETTINGS) == "critical"


def test_lowering_needs_hold_time_and_margin_and_goes_one_step() -> None:
    hold = SETTINGS.hysteresis.min_hold_seconds
    assert decide("high", 0.0, 0.1, 50, hold - 1, SETTINGS) == "high"  # too soon
    assert decide("high", 0.0, 0.55, 50, hold + 1, SETTINGS) == "high"  # within the margin
    assert decide("high", 0.0, 0.1, 50, hold + 1, SETTINGS) == "elevated"  # one step
    assert decide("elevated", 0.0, 0.1, 50, hold + 1, SETTINGS) == "none"


def test_critical_is_never_lowered_automatically() -> None:
    assert decide("critical", 0.0, 0.0, 500, 1e9, SETTINGS) == "critical"


def test_no_flapping_around_a_threshold() -> None:
    level, since = "elevated", 0.0
    changes = []
    for step in range(2000):
        score = 0.6 + (0.03 if step % 2 else -0.03)  # oscillates around the high threshold
        new = decide(level, since, score, 100, float(step), SETTINGS)  # type: ignore[arg-type]
        if new != level:
            changes.append((level, new))
            level, since = new, float(step)
    assert changes == [("elevated", "high")]
