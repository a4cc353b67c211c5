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
)
from gateway.plugins.services import PolicyServices, SharedObjects

__all__ = [
    "RISK_LEVELS",
    "Account",
    "Exchange",
    "Outcome",
    "Policy",
    "PolicyConfig",
    "PolicyContext",
    "PolicyMode",
    "PolicyServices",
    "RiskLevel",
    "SharedObjects",
    "StreamFilter",
]
