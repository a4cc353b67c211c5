"""What a request asks for, as the request view answers it, and the readers the family views share.

The answers' types (:class:`LogprobsAsk`, :class:`EffortAsk`, :class:`BudgetAsk`, :class:`InputSize`,
:class:`ToolUse`) and the helpers every family's view reads or edits a body with
(:func:`tool_choice_of`, :func:`assistant_turns`, :func:`raise_to_floor`). The base view is in
:mod:`gateway.protocols.request_view`, which re-exports all of these.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)  # not frozen: built per request, and a frozen dataclass costs several times more
class LogprobsAsk:
    """What a request asks of token log-probabilities.

    ``sampled``: the log-probability of each output token; ``alternatives``: how many of the most
    likely other tokens per position; ``prompt_logprobs``: vLLM's prompt-token log-probabilities
    with that many alternatives (None: not asked); ``echo``: the prompt echoed with its
    log-probabilities (legacy completions); ``token_ids``: log-probabilities of tokens the client
    names (vLLM's ``logprob_token_ids``).
    """

    sampled: bool = False
    alternatives: int = 0
    prompt_logprobs: int | None = None
    echo: bool = False
    token_ids: bool = False

    @property
    def prompt(self) -> bool:
        """Whether the response will carry log-probabilities of prompt tokens."""
        return self.prompt_logprobs is not None or self.echo

    @property
    def any(self) -> bool:
        """Whether the response will carry any log-probability: the one answer to "does it ask"."""
        return self.sampled or self.prompt or self.token_ids


NO_LOGPROBS = LogprobsAsk()

# Content-part types that carry media (OpenAI chat and Responses, Anthropic): a fixed token cost each,
# never the length of their base64.
MEDIA_PART_TYPES = frozenset(
    {"image_url", "input_image", "image", "input_audio", "audio", "file", "input_file", "document"}
)


@dataclass(frozen=True, slots=True)
class EffortAsk:
    """A reasoning-effort parameter the request sets: its name, its value, the API's lowest value."""

    param: str
    value: str
    lowest: str | None = None  # the lowest value the API accepts (None: any)


@dataclass(frozen=True, slots=True)
class BudgetAsk:
    """The reasoning-token budget the request sets; ``tokens`` None: a mode with no budget (adaptive)."""

    param: str
    tokens: int | None


@dataclass(slots=True)
class InputSize:
    """How big a request's prompt is, before any tokenizer.

    ``text_bytes``: UTF-8 bytes of the prompt's text, each byte beyond the first of a character
    counted twice (non-Latin scripts tokenize worse than English); ``token_ids``: prompt tokens
    given as ids; ``media_parts``: image, audio and file parts; ``messages``: conversation turns.
    """

    text_bytes: int = 0
    token_ids: int = 0
    media_parts: int = 0
    messages: int = 0


@dataclass(slots=True)  # not frozen: built per request (the detector reads one on every request)
class ToolUse:
    """How a request uses tools: definitions, the choice it forces, and the agent loop it carries.

    ``tools``: tool (function) definitions; ``choice``: the tool choice, normalised across APIs to
    ``"auto"``, ``"none"``, ``"required"`` (some tool must be called) or ``"named"`` (this one
    tool), None when not set; ``results``: tool-result turns in the conversation (the outputs of
    earlier tool calls the client sends back); ``depth``: tool-result turns since the last turn a
    person wrote (how many steps into an agent loop the request is).
    """

    tools: int = 0
    choice: str | None = None
    results: int = 0
    depth: int = 0

    @property
    def forced(self) -> bool:
        """Whether the request forces a tool call (some tool, or a named one)."""
        return self.choice in ("required", "named")


# OpenAI's and Anthropic's tool_choice values, to the normalised names of ToolUse.choice.
_CHOICE_NAMES = {"auto": "auto", "none": "none", "required": "required", "any": "required", "tool": "named"}


def tool_choice_of(value: Any) -> str | None:
    """The normalised tool choice of a ``tool_choice`` (or legacy ``function_call``) value."""
    if isinstance(value, str):
        return _CHOICE_NAMES.get(value, "named" if value else None)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "allowed_tools":  # Responses: a subset of the tools, in a mode
            mode = value.get("mode")
            return "required" if mode == "required" else "auto"
        if isinstance(kind, str) and kind in _CHOICE_NAMES:
            return _CHOICE_NAMES[kind]
        return "named"  # {"type": "function", ...}, a hosted tool, or legacy {"name": ...}
    return None


def assistant_turns(messages: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, message) of each assistant message of a message list."""
    if isinstance(messages, list):
        for index, message in enumerate(messages):
            if isinstance(message, dict) and message.get("role") == "assistant":
                yield index, message


def lower_to_ceiling(body: dict[str, Any], field: str, ceiling: int) -> None:
    """Set ``body[field]`` to ``ceiling`` unless it already is an integer at most ``ceiling``."""
    current = body.get(field)
    if isinstance(current, bool) or not isinstance(current, int) or not current <= ceiling:
        body[field] = ceiling


def raise_to_floor(body: dict[str, Any], field: str, floor: float) -> None:
    """Set ``body[field]`` to ``floor`` unless it already is a number at least ``floor`` (no-op at 0)."""
    if floor <= 0:
        return
    current = body.get(field)
    if isinstance(current, bool) or not isinstance(current, int | float) or not current >= floor:
        body[field] = floor
