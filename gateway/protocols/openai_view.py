"""Request views of the OpenAI-compatible operations: Chat Completions, legacy Completions, Responses.

Field meanings, from the OpenAI API reference and vLLM's ``protocol.py``:

* chat: ``logprobs: true`` returns the sampled token's log-probability, ``top_logprobs: k`` its
  k alternatives (with ``logprobs: true``); ``n`` samples; ``max_completion_tokens`` (or the older
  ``max_tokens``) caps each sample; ``logit_bias`` maps token ids to a bias;
* completions: ``logprobs: k`` returns the sampled token and k alternatives (``0``: the sampled
  token only); ``echo`` with ``logprobs`` returns the prompt's log-probabilities too; ``n`` and
  ``best_of`` samples;
* responses: ``include: ["message.output_text.logprobs"]`` returns output log-probabilities,
  ``top_logprobs: k`` k alternatives; ``max_output_tokens``;
* vLLM, chat and completions: ``prompt_logprobs: k`` (``0``: each prompt token's own) and
  ``logprob_token_ids`` (the log-probabilities of the listed tokens).
"""

from __future__ import annotations

from typing import Any

from gateway.protocols.conversation import last_user_and_turns, system_from_messages, text_of, tool_results
from gateway.protocols.openai_response import REASONING_FIELDS
from gateway.protocols.openai_response import SEALED_FIELD as SEALED_REASONING_FIELD
from gateway.protocols.request_view import (
    BudgetAsk,
    EffortAsk,
    LogprobsAsk,
    RequestView,
    _int,
    assistant_turns,
    lower_to_ceiling,
    raise_to_floor,
    tool_choice_of,
)
from gateway.protocols.sealed import MalformedSealError, ReasoningOpener

RESPONSES_LOGPROBS_INCLUDE = "message.output_text.logprobs"
ENCRYPTED_REASONING_INCLUDE = "reasoning.encrypted_content"
# Chat reasoning: besides the string fields (openai_response.REASONING_FIELDS) and the gateway's own
# field for a sealed blob (SEALED_FIELD), OpenRouter's list of reasoning items.
REASONING_DETAILS_FIELD = "reasoning_details"


def _is_fields_payload(payload: Any) -> bool:
    """What the chat responses seal (a message's reasoning fields and details)."""
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("fields"), dict)
        and isinstance(payload.get("details"), list)
    )


def _efforts(body: dict[str, Any], top_level: bool) -> list[EffortAsk]:
    """The effort parameters: `reasoning_effort` (chat) and `reasoning.effort` (chat, Responses)."""
    if "reasoning" not in body and "reasoning_effort" not in body:
        return []
    asks = []
    if top_level and isinstance(body.get("reasoning_effort"), str):
        asks.append(EffortAsk("reasoning_effort", body["reasoning_effort"]))
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        asks.append(EffortAsk("reasoning.effort", reasoning["effort"]))
    return asks


_JSON_FORMATS = frozenset({"json_object", "json_schema"})
# The DRY settings a client could only weaken the gateway's penalty with; the server's defaults apply.
_DRY_WEAKENERS = ("dry_base", "dry_penalty_last_n", "dry_sequence_breakers")


class _BiasedView(RequestView):
    """Chat and completions carry ``logit_bias`` (and ``response_format``)."""

    __slots__ = ()

    @property
    def structured_output(self) -> bool:
        response_format = self.body.get("response_format")
        return isinstance(response_format, dict) and response_format.get("type") in _JSON_FORMATS

    @property
    def logit_bias(self) -> dict[str, float] | None:
        bias = self.body.get("logit_bias")
        return bias if isinstance(bias, dict) and bias else None

    @property
    def accepts_logit_bias(self) -> bool:
        return True

    def set_logit_bias(self, bias: dict[str, float]) -> None:
        self.body["logit_bias"] = bias

    def raise_repetition_penalties(self, presence: float, frequency: float) -> None:
        # OpenAI's fields, which llama.cpp and vLLM honour.
        raise_to_floor(self.body, "presence_penalty", presence)
        raise_to_floor(self.body, "frequency_penalty", frequency)

    def penalise_repeated_phrases(self, multiplier: float, allowed_length: int) -> None:
        # llama.cpp's DRY sampler (params_from_json_cmpl); vLLM ignores fields it does not know.
        if multiplier <= 0:
            return
        for field in _DRY_WEAKENERS:  # a low base, a short window, breakers everywhere
            self.body.pop(field, None)
        raise_to_floor(self.body, "dry_multiplier", multiplier)
        lower_to_ceiling(self.body, "dry_allowed_length", allowed_length)


class ChatView(_BiasedView):
    operation = "chat.completions"
    prompt_fields = ("messages", "tools", "functions")
    sample_params = ("n",)
    max_output_tokens_params = ("max_completion_tokens", "max_tokens")
    alternatives_param = "top_logprobs"

    __slots__ = ()

    @property
    def logprobs(self) -> LogprobsAsk:
        body = self.body
        top = _int(body.get("top_logprobs")) or 0
        prompt, token_ids = self._vllm_prompt_logprobs()
        return LogprobsAsk(
            sampled=body.get("logprobs") is True or top > 0,
            alternatives=top,
            prompt_logprobs=prompt,
            token_ids=token_ids,
        )

    def reasoning_efforts(self) -> list[EffortAsk]:
        return _efforts(self.body, top_level=True)

    @property
    def reasoning_budget(self) -> BudgetAsk | None:
        reasoning = self.body.get("reasoning")
        tokens = _int(reasoning.get("max_tokens")) if isinstance(reasoning, dict) else None
        return BudgetAsk("reasoning.max_tokens", tokens) if tokens is not None else None

    def limit_reasoning_budget(self, limit: int) -> str:
        self.body["reasoning"]["max_tokens"] = limit
        return "clamped:reasoning.max_tokens"

    def conversation(self, budget: int) -> tuple[str, str, int]:
        messages = self.body.get("messages")
        user, turns = last_user_and_turns(messages, budget)
        return user, system_from_messages(messages, budget), turns

    @property
    def tool_count(self) -> int:
        body = self.body
        tools = body.get("tools")  # the base view's count, read here (no super() per request)
        return (len(tools) if isinstance(tools, list) else 0) + len(body.get("functions") or ())

    @property
    def tool_choice(self) -> str | None:
        body = self.body
        return tool_choice_of(body["tool_choice"] if "tool_choice" in body else body.get("function_call"))

    def tool_results(self) -> tuple[int, int]:
        return tool_results(self.body.get("messages"))

    def restore_sealed_reasoning(self, opener: ReasoningOpener) -> int:
        """Assistant messages: a blob in ``sealed_reasoning`` or a reasoning field (the original fields
        and details come back), inline spans in ``content`` (a string or text parts).
        ``sealed_reasoning`` is the gateway's own field: never forwarded upstream."""
        for m_index, message in assistant_turns(self.body.get("messages")):
            for name in (SEALED_REASONING_FIELD, *REASONING_FIELDS):
                blob = message.get(name)
                if isinstance(blob, str) and opener.is_sealed(blob):
                    param = f"messages[{m_index}].{name}"
                    payload = opener.open("fields", blob, param)
                    if not _is_fields_payload(payload):
                        raise MalformedSealError(param)
                    for field in (SEALED_REASONING_FIELD, *REASONING_FIELDS, REASONING_DETAILS_FIELD):
                        message.pop(field, None)
                    message.update(payload["fields"])
                    if payload["details"]:
                        message[REASONING_DETAILS_FIELD] = payload["details"]
                    break
            message.pop(SEALED_REASONING_FIELD, None)
            content = message.get("content")
            if isinstance(content, str):
                message["content"] = opener.open_text(content, f"messages[{m_index}].content")
            elif isinstance(content, list):
                for p_index, part in enumerate(content):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        where = f"messages[{m_index}].content[{p_index}].text"
                        part["text"] = opener.open_text(part["text"], where)
        return 0

    def set_alternatives(self, count: int) -> None:
        if _int(self.body.get("top_logprobs")) is not None:
            self.body["top_logprobs"] = count

    def drop_sampled_logprobs(self) -> None:
        self.body.pop("logprobs", None)
        self.body.pop("top_logprobs", None)

    def drop_logprobs(self) -> None:
        self.drop_sampled_logprobs()
        super().drop_logprobs()


class CompletionsView(_BiasedView):
    operation = "completions"
    prompt_fields = ("prompt", "suffix")
    prompt_param = "prompt"
    token_id_fields = frozenset({"prompt"})
    sample_params = ("n", "best_of")
    max_output_tokens_params = ("max_tokens",)
    alternatives_param = "logprobs"

    __slots__ = ()

    @property
    def logprobs(self) -> LogprobsAsk:
        body = self.body
        count = _int(body.get("logprobs"))
        prompt, token_ids = self._vllm_prompt_logprobs()
        return LogprobsAsk(
            sampled=count is not None,
            alternatives=count or 0,
            prompt_logprobs=prompt,
            echo=count is not None and body.get("echo") is True,
            token_ids=token_ids,
        )

    def conversation(self, budget: int) -> tuple[str, str, int]:
        out: list[str] = []
        text_of(self.body.get("prompt"), budget, out)
        return " ".join(out), "", 1

    def set_alternatives(self, count: int) -> None:
        if _int(self.body.get("logprobs")) is not None:
            self.body["logprobs"] = count

    def drop_sampled_logprobs(self) -> None:
        self.body.pop("logprobs", None)  # echo alone then returns the prompt's text, no log-probabilities

    def drop_logprobs(self) -> None:
        self.drop_sampled_logprobs()
        self.drop_echo()
        super().drop_logprobs()

    def drop_echo(self) -> None:
        self.body.pop("echo", None)

    @property
    def echoed_prompt_chars(self) -> int:
        prompt = self.body.get("prompt")
        return len(prompt) if self.body.get("echo") is True and isinstance(prompt, str) else 0


class ResponsesView(RequestView):
    operation = "responses"
    prompt_fields = ("instructions", "input", "tools")
    prompt_param = "input"
    encrypted_reasoning_param = "include"
    encrypted_reasoning_value = ENCRYPTED_REASONING_INCLUDE
    max_output_tokens_params = ("max_output_tokens",)
    alternatives_param = "top_logprobs"

    __slots__ = ()

    def conversation(self, budget: int) -> tuple[str, str, int]:
        body = self.body
        raw = body.get("input")
        instructions: list[str] = []
        text_of(body.get("instructions"), budget, instructions)
        if isinstance(raw, str):
            user, turns = raw[:budget], 1
        else:
            user, turns = last_user_and_turns(raw, budget)
            if not instructions:
                instructions.append(system_from_messages(raw, budget))
        if body.get("previous_response_id"):
            turns += 1
        return user, " ".join(instructions), turns

    def reasoning_efforts(self) -> list[EffortAsk]:
        return _efforts(self.body, top_level=False)

    def tool_results(self) -> tuple[int, int]:
        return tool_results(self.body.get("input"))

    @property
    def structured_output(self) -> bool:
        text = self.body.get("text")
        output_format = text.get("format") if isinstance(text, dict) else None
        return isinstance(output_format, dict) and output_format.get("type") in _JSON_FORMATS

    @property
    def asks_encrypted_reasoning(self) -> bool:
        include = self.body.get("include")
        return isinstance(include, list) and ENCRYPTED_REASONING_INCLUDE in include

    def drop_encrypted_reasoning(self) -> None:
        include = self.body.get("include")
        if isinstance(include, list):
            self.body["include"] = [entry for entry in include if entry != ENCRYPTED_REASONING_INCLUDE]

    def restore_sealed_reasoning(self, opener: ReasoningOpener) -> int:
        """A reasoning ``input`` item whose ``encrypted_content`` is a blob: the whole original item
        comes back (the upstream's own ``encrypted_content`` and raw text included)."""
        items = self.body.get("input")
        if not isinstance(items, list):
            return 0
        for index, item in enumerate(items):
            if isinstance(item, dict) and item.get("type") == "reasoning":
                blob = item.get("encrypted_content")
                if isinstance(blob, str) and opener.is_sealed(blob):
                    param = f"input[{index}].encrypted_content"
                    payload = opener.open("item", blob, param)
                    if not (isinstance(payload, dict) and payload.get("type") == "reasoning"):
                        raise MalformedSealError(param)
                    items[index] = payload
        return 0

    def _listed(self) -> bool:
        include = self.body.get("include")
        return isinstance(include, list) and RESPONSES_LOGPROBS_INCLUDE in include

    @property
    def logprobs(self) -> LogprobsAsk:
        top = _int(self.body.get("top_logprobs"))
        return LogprobsAsk(sampled=self._listed() or top is not None, alternatives=top or 0)

    @property
    def logprobs_param(self) -> str:
        return "include" if self._listed() else "top_logprobs"

    def set_alternatives(self, count: int) -> None:
        if _int(self.body.get("top_logprobs")) is not None:
            self.body["top_logprobs"] = count

    def drop_sampled_logprobs(self) -> None:
        include: Any = self.body.get("include")
        if isinstance(include, list):
            self.body["include"] = [item for item in include if item != RESPONSES_LOGPROBS_INCLUDE]
        self.body.pop("top_logprobs", None)

    def drop_logprobs(self) -> None:
        self.drop_sampled_logprobs()
