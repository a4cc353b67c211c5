"""What the engine offers policies besides the phases: shared state, risk levels, metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.metrics import GatewayMetrics
from gateway.risk import RiskBoard
from gateway.state.base import StateStore

T = TypeVar("T")


@dataclass
class SharedObjects:
    """Objects that outlive a config reload (a detector's sketches, a key cache).

    Keyed by a name the policy chooses; the factory runs once per process.
    """

    _objects: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, factory: Callable[[], T]) -> T:
        if key not in self._objects:
            self._objects[key] = factory()
        return self._objects[key]  # type: ignore[no-any-return]


@dataclass
class PolicyServices:
    """Handed to every policy at construction (``self.services``)."""

    store: StateStore
    metrics: GatewayMetrics
    risk: RiskBoard
    shared: SharedObjects
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("distillguard.policy"))
