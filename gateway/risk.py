"""Account risk levels, as the engine keeps them.

A detection policy raises or lowers an account's level through
``services.risk``; the engine reads the level at each request to pick the
pipeline (the YAML's ``risk_levels`` overrides) and to block ``critical``
accounts when configured. Other policies read ``exchange.risk_level``; none
imports the detector.

Operators can pin a level (``pin``), which wins over what detection says.
Changes are announced to listeners (the audit trail, metrics).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeGuard

RiskLevel = Literal["none", "elevated", "high", "critical"]
RISK_LEVELS: tuple[RiskLevel, ...] = ("none", "elevated", "high", "critical")

_RANK = {level: rank for rank, level in enumerate(RISK_LEVELS)}


def is_risk_level(value: object) -> TypeGuard[RiskLevel]:
    """Whether ``value`` names a risk level (narrows a string read from a store or a request)."""
    return value in _RANK


@dataclass(frozen=True, slots=True)
class RiskChange:
    account: str
    previous: RiskLevel
    level: RiskLevel
    reason: str
    source: str  # "detector", "operator", ...
    at: float


Listener = Callable[[RiskChange], None]


class RiskBoard:
    """The current level of every account that is not at ``none`` (bounded by that)."""

    def __init__(self) -> None:
        self._levels: dict[str, RiskLevel] = {}
        self._pinned: dict[str, RiskLevel] = {}
        self._listeners: list[Listener] = []

    def level(self, account: str) -> RiskLevel:
        pinned = self._pinned.get(account)
        if pinned is not None:
            return pinned
        return self._levels.get(account, "none")

    def set(self, account: str, level: RiskLevel, *, reason: str, source: str = "detector") -> None:
        previous = self.level(account)
        if level == "none":
            self._levels.pop(account, None)
        else:
            self._levels[account] = level
        current = self.level(account)
        if current != previous:
            self._announce(RiskChange(account, previous, current, reason, source, time.time()))

    def pin(self, account: str, level: RiskLevel | None, *, reason: str, source: str = "operator") -> None:
        """Fix an account's level regardless of detection (None removes the pin)."""
        previous = self.level(account)
        if level is None:
            self._pinned.pop(account, None)
        else:
            self._pinned[account] = level
        current = self.level(account)
        if current != previous:
            self._announce(RiskChange(account, previous, current, reason, source, time.time()))

    def pinned(self, account: str) -> RiskLevel | None:
        return self._pinned.get(account)

    def pins(self) -> dict[str, RiskLevel]:
        """A copy of every operator pin (for sharing pins between replicas)."""
        return dict(self._pinned)

    def accounts_at(self) -> dict[RiskLevel, int]:
        counts: dict[RiskLevel, int] = dict.fromkeys(RISK_LEVELS, 0)
        for account in set(self._levels) | set(self._pinned):
            counts[self.level(account)] += 1
        return counts

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _announce(self, change: RiskChange) -> None:
        for listener in self._listeners:
            listener(change)

    @staticmethod
    def higher(a: RiskLevel, b: RiskLevel) -> RiskLevel:
        return a if _RANK[a] >= _RANK[b] else b
