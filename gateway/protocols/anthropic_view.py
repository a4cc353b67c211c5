"""Request view of Anthropic's Messages API: no sampling count, no log-probabilities, no logit bias.

Reasoning: ``output_config.effort`` (lowest value ``low``); ``thinking: {type: "enabled", budget_tokens}``
(at least 1024, below ``max_tokens``) or ``{type: "adaptive"}`` (no budget); ``display: "omitted"``
asks for signed thinking blocks without their text (``anthropic`` SDK ``thinking_config_*_param``).
"""

from __future__ import annotations

from typing import Any

from gateway.protocols.conversation import last_user_and_turns, text_of, tool_results
from gateway.protocols.request_view import BudgetAsk, EffortAsk, RequestView, _int, assistant_turns
from gateway.protocols.sealed import MalformedSealError, ReasoningOpener

MIN_THINKING_BUDGET = 1024  # thinking_config_enabled_param.py: "Must be >= 1024"
REASONING_BLOCKS = ("thinking", "redacted_thinking")


class MessagesView(RequestView):
    operation = "messages"
    prompt_fields = ("system", "messages", "tools")
    max_output_tokens_params = ("max_tokens",)

    __slots__ = ()

    def conversation(self, budget: int) -> tuple[str, str, int]:
        user, turns = last_user_and_turns(self.body.get("messages"), budget)
        system: list[str] = []
        text_of(self.body.get("system"), budget, system)
        return user, " ".join(system), turns

    def tool_results(self) -> tuple[int, int]:
        return tool_results(self.body.get("messages"))

    def reasoning_efforts(self) -> list[EffortAsk]:
        config = self.body.get("output_config")
        if isinstance(config, dict) and isinstance(config.get("effort"), str):
            return [EffortAsk("output_config.effort", config["effort"], lowest="low")]
        return []

    @property
    def reasoning_budget(self) -> BudgetAsk | None:
        thinking = self.body.get("thinking")
        if not isinstance(thinking, dict):
            return None
        kind = thinking.get("type")
        if kind == "enabled":
            tokens = _int(thinking.get("budget_tokens"))
            return BudgetAsk("thinking.budget_tokens", tokens) if tokens is not None else None
        if kind == "adaptive":
            return BudgetAsk("thinking.type", None)
        return None

    def limit_reasoning_budget(self, limit: int) -> str:
        thinking = self.body["thinking"]
        budget = limit
        max_tokens = _int(self.body.get("max_tokens"))
        if max_tokens is not None:
            budget = min(budget, max_tokens - 1)  # the API wants budget_tokens < max_tokens
        if budget < MIN_THINKING_BUDGET:
            self.body["thinking"] = {"type": "disabled"}
            return "clamped:thinking.disabled"
        clamped: dict[str, Any] = {"type": "enabled", "budget_tokens": budget}
        if "display" in thinking:
            clamped["display"] = thinking["display"]
        self.body["thinking"] = clamped
        return "clamped:thinking.budget_tokens"

    def hide_upstream_reasoning(self) -> bool:
        thinking = self.body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
            self.body["thinking"] = {**thinking, "display": "omitted"}
            return True
        return False

    def restore_sealed_reasoning(self, opener: ReasoningOpener) -> int:
        """Assistant ``thinking`` blocks whose ``signature`` is a blob and ``redacted_thinking`` blocks
        whose ``data`` is one: the original block comes back, so the upstream's signature verifies.
        Thinking blocks with an empty signature (placeholders the gateway wrote) are removed: no
        upstream can verify them."""
        removed = 0
        for m_index, message in assistant_turns(self.body.get("messages")):
            content = message.get("content")
            if not isinstance(content, list):
                continue
            kept = []
            for b_index, block in enumerate(content):
                if not isinstance(block, dict):
                    kept.append(block)
                    continue
                kind = block.get("type")
                where = f"messages[{m_index}].content[{b_index}]"
                if kind == "thinking" and opener.is_sealed(block.get("signature")):
                    block = _opened_block(opener, block["signature"], f"{where}.signature")
                elif kind == "redacted_thinking" and opener.is_sealed(block.get("data")):
                    block = _opened_block(opener, block["data"], f"{where}.data")
                elif kind == "thinking" and block.get("signature") == "":
                    removed += 1
                    continue
                kept.append(block)
            message["content"] = kept
        return removed


def _opened_block(opener: ReasoningOpener, blob: str, param: str) -> Any:
    block = opener.open("block", blob, param)
    if not (isinstance(block, dict) and block.get("type") in REASONING_BLOCKS):
        raise MalformedSealError(param)
    return block
