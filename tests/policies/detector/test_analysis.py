"""The analysis mixin's sweeps: members of a newly flagged group are re-evaluated only when it counts."""

from __future__ import annotations

from typing import Any

from gateway.metrics import GatewayMetrics
from gateway.plugins.services import PolicyServices, SharedObjects
from gateway.risk import RiskBoard
from gateway.state.memory import MemoryStore
from policies.detector.config import DetectorConfig
from policies.detector.core import DetectorCore
from policies.detector.index import TEMPLATE


def _core() -> DetectorCore:
    core = DetectorCore()
    services = PolicyServices(MemoryStore("test"), GatewayMetrics(), RiskBoard(), SharedObjects())
    core.attach(DetectorConfig(), services)
    return core


def test_a_sweep_re_evaluates_only_members_whose_cluster_term_reads_the_group() -> None:
    core = _core()
    assert core.settings is not None
    for number in range(6):
        core.index.touch(42, TEMPLATE, f"m{number}", 0.9, 0.0)
    group = core.index.get(42)
    assert group is not None
    states = {f"m{number}": core.account(f"m{number}", 0.0) for number in range(6)}
    states["m0"].templates[42] = [2.0, 1.8]  # remembers its extraction use of the template
    states["m1"].infra.append(42)  # (an infra key, for the sake of the test)
    evaluated: list[str] = []
    original = core.evaluate

    def evaluate(state: Any, *args: Any, **kwargs: Any) -> Any:
        evaluated.append(state.account)
        return original(state, *args, **kwargs)

    core.evaluate = evaluate  # type: ignore[method-assign]
    core._rescore(group, core.settings)
    assert group.flagged
    while core.run_sweeps():
        pass
    assert sorted(evaluated) == ["m0", "m1"]
    assert not core._sweeps
