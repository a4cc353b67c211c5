"""The plugin interface: what a policy is, how it is found, and what the engine offers it."""

from gateway.plugins.base import (
    RISK_LEVELS,
    Account,
    Exchange,
    Outcome,
    Policy,
    PolicyConfig,
    PolicyContext,
    PolicyMode,
    RiskLevel,
    StreamFilter,
    is_risk_level,
)
from gateway.plugins.services import PolicyServices, SharedObjects
from gateway.plugins.strictness import (
    FALSE_IS_STRICTER,
    HIGHER_IS_STRICTER,
    KEYED,
    LOWER_IS_STRICTER,
    NEUTRAL,
    SUPERSET_IS_STRICTER,
    TRUE_IS_STRICTER,
    Ranked,
    Strictness,
)
from gateway.risk import RiskBoard, RiskChange

__all__ = [
    "FALSE_IS_STRICTER",
    "HIGHER_IS_STRICTER",
    "KEYED",
    "LOWER_IS_STRICTER",
    "NEUTRAL",
    "RISK_LEVELS",
    "SUPERSET_IS_STRICTER",
    "TRUE_IS_STRICTER",
    "Account",
    "Exchange",
    "Outcome",
    "Policy",
    "PolicyConfig",
    "PolicyContext",
    "PolicyMode",
    "PolicyServices",
    "Ranked",
    "RiskBoard",
    "RiskChange",
    "RiskLevel",
    "SharedObjects",
    "StreamFilter",
    "Strictness",
    "is_risk_level",
]
