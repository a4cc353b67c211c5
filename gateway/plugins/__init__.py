"""The plugin interface: what a policy is, how it is found, and what the engine offers it.

This is the whole public surface a policy may import from the engine (``__all__``); the
policies' import test (``tests/test_imports.py``) holds them to it. Everything else under
``gateway`` is the engine's own and may change without notice.
"""

from gateway.errors import (
    ConfigError,
    GatewayError,
    InvalidRequestError,
    PermissionDeniedError,
    PolicyViolationError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamError,
)
from gateway.metrics import OVERHEAD_BUCKETS, GatewayMetrics
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
from gateway.plugins.tasks import stop_task
from gateway.plugins.tools import AdminContext, deep_merge, key_file_line, load_config, load_keys_file
from gateway.protocols import OPERATION_NAMES, ProtocolAdapter
from gateway.protocols.ratelimit import go_duration
from gateway.protocols.readers import response_texts
from gateway.protocols.reasoning import (
    InlineText,
    Interval,
    ReasoningRewriter,
    ReasoningSource,
    ReasoningStream,
    ReasoningTreatment,
    SealDelivery,
    WithholdMode,
)
from gateway.protocols.request_view import BudgetAsk, EffortAsk, InputSize, LogprobsAsk, RequestView
from gateway.protocols.response_view import (
    PART_KINDS,
    Anchor,
    Block,
    EventView,
    LogprobsPart,
    Part,
    PartKey,
    PartKind,
    ResponseView,
    StreamView,
)
from gateway.protocols.sealed import PLACE_NAMES, MalformedSealError, ReasoningOpener, SealPlace
from gateway.risk import RiskBoard, RiskChange
from gateway.sse import StreamEvent
from gateway.state.base import MemoryLike, Script, StateStore, StoreUnavailableError

__all__ = [
    "FALSE_IS_STRICTER",
    "HIGHER_IS_STRICTER",
    "KEYED",
    "LOWER_IS_STRICTER",
    "NEUTRAL",
    "OPERATION_NAMES",
    "OVERHEAD_BUCKETS",
    "PART_KINDS",
    "PLACE_NAMES",
    "RISK_LEVELS",
    "SUPERSET_IS_STRICTER",
    "TRUE_IS_STRICTER",
    "Account",
    "AdminContext",
    "Anchor",
    "Block",
    "BudgetAsk",
    "ConfigError",
    "EffortAsk",
    "EventView",
    "Exchange",
    "GatewayError",
    "GatewayMetrics",
    "InlineText",
    "InputSize",
    "Interval",
    "InvalidRequestError",
    "LogprobsAsk",
    "LogprobsPart",
    "MalformedSealError",
    "MemoryLike",
    "Outcome",
    "Part",
    "PartKey",
    "PartKind",
    "PermissionDeniedError",
    "Policy",
    "PolicyConfig",
    "PolicyContext",
    "PolicyMode",
    "PolicyServices",
    "PolicyViolationError",
    "ProtocolAdapter",
    "Ranked",
    "RateLimitError",
    "ReasoningOpener",
    "ReasoningRewriter",
    "ReasoningSource",
    "ReasoningStream",
    "ReasoningTreatment",
    "RequestView",
    "ResponseView",
    "RiskBoard",
    "RiskChange",
    "RiskLevel",
    "Script",
    "SealDelivery",
    "SealPlace",
    "ServiceUnavailableError",
    "SharedObjects",
    "StateStore",
    "StoreUnavailableError",
    "StreamEvent",
    "StreamFilter",
    "StreamView",
    "Strictness",
    "UpstreamError",
    "WithholdMode",
    "deep_merge",
    "go_duration",
    "is_risk_level",
    "key_file_line",
    "load_config",
    "load_keys_file",
    "response_texts",
    "stop_task",
]
