"""The ``reasoning`` policy: reasoning-trace stripping (drop, redact, summary, seal, allow), all formats.

Modules: ``config`` (schema), ``policy`` (the phases), ``withhold`` (the treatment the adapters'
reasoning rewriters ask for: modes, placeholder, seal, accounting), ``think`` and ``inline``
(inline ``<think>`` spans in text), ``seal`` (AES-GCM blobs), ``history`` (opening blobs the
request view finds on the way in), ``limits`` (request-side caps). Where each API format keeps
reasoning is the adapters' knowledge (``gateway/protocols/*_reasoning.py``).
"""

from policies.reasoning.config import ReasoningConfig
from policies.reasoning.policy import ReasoningPolicy

__all__ = ["ReasoningConfig", "ReasoningPolicy"]
