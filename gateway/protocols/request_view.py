"""A format-neutral reading of one request, owned by the protocol adapters.

Policies ask the view what a request asks for (how many choices, how many output tokens, which
log-probabilities, what logit bias, how much reasoning) and edit it through the view (clamp,
drop, set) without knowing the field names of any API. Each question has exactly one
definition here, per operation; the view reads and writes the request body itself, so what a
policy leaves is what the upstream receives.

The answers' types and the readers the family views share are in
:mod:`gateway.protocols.request_asks`, re-exported here; this module holds the base view.

Bodies reach the view after :mod:`gateway.protocols.params` has checked their types, so the
readers trust the declared JSON types; they stay defensive about absent fields only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from gateway.protocols.request_asks import MEDIA_PART_TYPES as MEDIA_PART_TYPES  # re-exported: the view's API
from gateway.protocols.request_asks import NO_LOGPROBS as NO_LOGPROBS
from gateway.protocols.request_asks import BudgetAsk as BudgetAsk
from gateway.protocols.request_asks import EffortAsk as EffortAsk
from gateway.protocols.request_asks import InputSize as InputSize
from gateway.protocols.request_asks import LogprobsAsk as LogprobsAsk
from gateway.protocols.request_asks import ToolUse as ToolUse
from gateway.protocols.request_asks import assistant_turns as assistant_turns
from gateway.protocols.request_asks import lower_to_ceiling as lower_to_ceiling
from gateway.protocols.request_asks import raise_to_floor as raise_to_floor
from gateway.protocols.request_asks import tool_choice_of as tool_choice_of

if TYPE_CHECKING:
    from gateway.protocols.base import OperationName
    from gateway.protocols.sealed import ReasoningOpener


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RequestView:
    """The base view: an operation with none of the optional capabilities (override per operation).

    Reading: ``model``, ``stream``, ``samples``, ``sample_params``, ``max_output_tokens`` (and
    ``max_output_tokens_param``), ``logprobs``, ``alternatives_param``, ``logit_bias``,
    ``prompt_fields``, ``tool_count``, ``tool_use``. Editing: ``set_sample_count``, ``set_alternatives``,
    ``drop_logprobs``, ``drop_prompt_logprobs``, ``set_prompt_alternatives``, ``drop_token_ids``,
    ``drop_echo``, ``set_logit_bias``, ``drop_logit_bias``; reasoning: ``set_reasoning_effort``,
    ``limit_reasoning_budget``, ``drop_encrypted_reasoning``, ``hide_upstream_reasoning``,
    ``restore_sealed_reasoning``. An edit of something the operation cannot carry is a no-op.
    """

    operation: OperationName = "passthrough"
    prompt_fields: tuple[str, ...] = ()
    prompt_param = "messages"  # the parameter to name when the prompt is at fault
    message_fields: frozenset[str] = frozenset({"messages", "input"})
    token_id_fields: frozenset[str] = frozenset()
    sample_params: tuple[str, ...] = ()
    max_output_tokens_params: tuple[str, ...] = ()
    alternatives_param = ""
    # The parameter and value that ask for the provider's encrypted reasoning (for messages).
    encrypted_reasoning_param = ""
    encrypted_reasoning_value = ""

    __slots__ = ("body",)

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    # -- reading -----------------------------------------------------------------------------------

    @property
    def model(self) -> str | None:
        model = self.body.get("model")
        return model if isinstance(model, str) else None

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    def sample_counts(self) -> Iterator[tuple[str, int]]:
        """Each parameter asking for several samples, with its value (``n``, ``best_of``)."""
        for param in self.sample_params:
            value = _int(self.body.get(param))
            if value is not None:
                yield param, value

    @property
    def samples(self) -> int:
        """How many samples the upstream will generate for this request (at least 1)."""
        most = 1
        for param in self.sample_params:
            value = self.body.get(param)
            if type(value) is int and value > most:
                most = value
        return most

    @property
    def max_output_tokens(self) -> int | None:
        """The output-token cap the client asked for (per sample), if any."""
        for param in self.max_output_tokens_params:
            value = _int(self.body.get(param))
            if value is not None and value > 0:
                return value
        return None

    @property
    def max_output_tokens_param(self) -> str:
        """The parameter that sets the output cap, as the client wrote it (for messages)."""
        for param in self.max_output_tokens_params:
            if param in self.body:
                return param
        return self.max_output_tokens_params[-1] if self.max_output_tokens_params else "max_tokens"

    @property
    def logprobs(self) -> LogprobsAsk:
        return NO_LOGPROBS

    @property
    def logprobs_param(self) -> str:
        """The parameter that asks for output log-probabilities (for messages)."""
        return "logprobs"

    @property
    def logit_bias(self) -> dict[str, float] | None:
        """The client's logit bias (token id -> bias), or None."""
        return None

    def prompt(self) -> dict[str, Any]:
        """The prompt fields of the body (what "the same prompt" means), as sent."""
        body = self.body
        return {name: body[name] for name in self.prompt_fields if name in body}

    def input_size(self) -> InputSize:
        """The size of the prompt fields (see :class:`InputSize`); O(prompt), C-speed string operations."""
        size = InputSize()
        for name in self.prompt_fields:
            value = self.body.get(name)
            if value is None:
                continue
            if name in self.message_fields and isinstance(value, list):
                size.messages += len(value)
            ids = name in self.token_id_fields
            stack = [value]
            while stack:
                item = stack.pop()
                if isinstance(item, str):
                    if item.isascii():
                        size.text_bytes += len(item)
                    else:
                        size.text_bytes += 2 * len(item.encode("utf-8", "replace")) - len(item)
                elif isinstance(item, dict):
                    if self.is_media(item):
                        size.media_parts += 1
                    else:
                        stack.extend(item.values())
                elif isinstance(item, list):
                    stack.extend(item)
                elif ids and isinstance(item, int) and not isinstance(item, bool):
                    size.token_ids += 1
        return size

    def is_media(self, part: dict[str, Any]) -> bool:
        """Whether an object of the prompt is an image, audio or file part (counted, not walked)."""
        return part.get("type") in MEDIA_PART_TYPES

    def conversation(self, budget: int) -> tuple[str, str, int]:
        """(last user text, system text, user turns), each text bounded by ``budget`` characters."""
        return "", "", 1

    @property
    def tool_count(self) -> int:
        tools = self.body.get("tools")
        return len(tools) if isinstance(tools, list) else 0

    @property
    def tool_choice(self) -> str | None:
        """The tool choice the request sets, normalised (see :class:`ToolUse`), or None."""
        return tool_choice_of(self.body.get("tool_choice"))

    def tool_results(self) -> tuple[int, int]:
        """(tool-result turns, those since the last turn a person wrote); O(messages)."""
        return 0, 0

    def tool_use(self) -> ToolUse:
        """How the request uses tools (see :class:`ToolUse`)."""
        results, depth = self.tool_results()
        return ToolUse(self.tool_count, self.tool_choice, results, depth)

    def reasoning_efforts(self) -> list[EffortAsk]:
        """Each reasoning-effort parameter the request sets."""
        return []

    @property
    def reasoning_budget(self) -> BudgetAsk | None:
        """The reasoning-token budget the request sets, if any."""
        return None

    @property
    def structured_output(self) -> bool:
        """Whether the client asked for JSON output (a JSON mode or schema)."""
        return False

    @property
    def echoed_prompt_chars(self) -> int:
        """How many characters of the answer's text are the client's own prompt, echoed back."""
        return 0

    @property
    def asks_encrypted_reasoning(self) -> bool:
        """Whether the response would carry the provider's encrypted reasoning (Responses ``include``)."""
        return False

    # -- editing -----------------------------------------------------------------------------------

    def set_reasoning_effort(self, param: str, value: str) -> None:
        """Set the effort parameter ``param`` (as named by :meth:`reasoning_efforts`)."""
        holder, _, key = param.rpartition(".")
        target = self.body.get(holder) if holder else self.body
        if isinstance(target, dict) and key in target:
            target[key] = value

    def limit_reasoning_budget(self, limit: int) -> str:
        """Lower the reasoning budget to ``limit`` by the API's rules; returns what was done."""
        return ""

    def drop_encrypted_reasoning(self) -> None:
        """Do not ask for the provider's encrypted reasoning."""

    def hide_upstream_reasoning(self) -> bool:
        """Ask the upstream not to return its reasoning text, where the API can (returns whether it did)."""
        return False

    def restore_sealed_reasoning(self, opener: ReasoningOpener) -> int:
        """Open the sealed reasoning the client sent back in earlier turns; put the originals back.

        Blobs are looked for where the adapter's responses put them (see
        :mod:`gateway.protocols.sealed`); one that does not open, or opens to the wrong shape
        (:class:`~gateway.protocols.sealed.MalformedSealError`), rejects the request. Also removes
        what the gateway itself added and no upstream takes. Returns how many reasoning parts of
        the history were removed because no upstream could verify them.
        """
        return 0

    def set_sample_count(self, param: str, count: int) -> None:
        if param in self.sample_params:
            self.body[param] = count

    def set_alternatives(self, count: int) -> None:
        """Lower the alternatives per position to ``count``."""

    def drop_logprobs(self) -> None:
        """Ask for no log-probability of any kind."""
        self.drop_prompt_logprobs()
        self.drop_token_ids()

    def drop_sampled_logprobs(self) -> None:
        """Ask for no log-probability of output tokens (prompt ones are separate)."""

    def drop_prompt_logprobs(self) -> None:
        self.body.pop("prompt_logprobs", None)

    def set_prompt_alternatives(self, count: int) -> None:
        if _int(self.body.get("prompt_logprobs")) is not None:
            self.body["prompt_logprobs"] = count

    def drop_token_ids(self) -> None:
        self.body.pop("logprob_token_ids", None)

    def drop_echo(self) -> None:
        """No echo of the prompt (completions)."""

    @property
    def accepts_logit_bias(self) -> bool:
        """Whether the operation carries a logit bias the upstream applies (a generation-time mark)."""
        return False

    def set_logit_bias(self, bias: dict[str, float]) -> None:
        """Replace the logit bias (operations that carry one)."""

    def raise_repetition_penalties(self, presence: float, frequency: float) -> None:
        """Raise the presence and frequency penalties to these floors (operations that take them).

        Anything that is not a number at least the floor (missing, smaller, a string, a boolean,
        NaN) is replaced, so a client cannot ask for the repetition a floor exists to prevent; a
        floor of 0 leaves the field as sent.
        """

    def penalise_repeated_phrases(self, multiplier: float, allowed_length: int) -> None:
        """Penalise extending a phrase that already occurred in the context, at least this much
        (operations whose server has such a sampler: llama.cpp's DRY).

        ``multiplier`` is a floor and ``allowed_length`` (the longest repeat left unpenalised) a
        ceiling; the client's other settings of that sampler, which could only weaken it, are
        dropped for the server's defaults. A multiplier of 0 leaves the request as sent.
        """

    def drop_logit_bias(self) -> None:
        self.body.pop("logit_bias", None)

    # -- shared readers ----------------------------------------------------------------------------

    def _vllm_prompt_logprobs(self) -> tuple[int | None, bool]:
        return _int(self.body.get("prompt_logprobs")), self.body.get("logprob_token_ids") is not None
