"""The ``reasoning`` policy: reasoning-trace stripping (drop, redact, summary, seal, allow), all formats.

Modules: ``config`` (schema), ``policy`` (the phases), ``chat`` / ``responses`` / ``messages`` (one
API format each, whole bodies and streams), ``think`` and ``inline`` (inline ``<think>`` spans),
``seal`` (AES-GCM blobs), ``history`` (unsealing on the way in), ``limits`` (request-side caps),
``withhold`` (what the modes put in place of reasoning, and the accounting).
"""

from policies.reasoning.config import ReasoningConfig
from policies.reasoning.policy import ReasoningPolicy

__all__ = ["ReasoningConfig", "ReasoningPolicy"]
