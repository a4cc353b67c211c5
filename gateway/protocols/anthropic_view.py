"""Request view of Anthropic's Messages API: no sampling count, no log-probabilities, no logit bias."""

from __future__ import annotations

from gateway.protocols.conversation import last_user_and_turns, text_of
from gateway.protocols.request_view import RequestView


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
