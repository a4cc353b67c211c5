"""Request view of Gemini's ``generateContent`` and ``streamGenerateContent``.

Field meanings, from the ``google-genai`` SDK (``types.GenerationConfig``, ``ThinkingConfig``,
``ToolConfig``, ``Content``/``Part``) and the REST reference:

* the model is the ``{model}`` of the path, never a body field; streaming is the verb
  (``:streamGenerateContent``), never a body field;
* ``generationConfig.candidateCount`` samples; ``maxOutputTokens`` caps each;
* ``generationConfig.responseLogprobs: true`` returns the chosen token's log-probability per step
  (``logprobsResult.chosenCandidates``), ``generationConfig.logprobs: k`` k alternatives per step
  (``topCandidates``; the API takes it only with ``responseLogprobs``);
* ``generationConfig.thinkingConfig``: ``thinkingBudget`` (tokens; ``-1`` dynamic, ``0`` off),
  ``thinkingLevel`` (``MINIMAL``, ``LOW``, ``MEDIUM``, ``HIGH``: an effort, read here in lower case as
  the other APIs write efforts), ``includeThoughts`` (thought summaries in the response);
* ``contents[]`` are turns (``role`` ``user`` or ``model``) of ``parts[]``: ``text``, ``inlineData`` /
  ``fileData`` (media), ``functionCall`` / ``functionResponse`` (a tool loop: a user turn made only of
  function responses is a step of it, not a person writing); ``systemInstruction`` is a Content;
* ``tools[]`` entries hold ``functionDeclarations[]`` (each a tool) or one hosted tool
  (``codeExecution``, ``googleSearch``...); ``toolConfig.functionCallingConfig.mode`` is ``AUTO``,
  ``ANY`` (some call; one named one with a single ``allowedFunctionNames``), ``NONE``, ``VALIDATED``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.protocols.conversation import text_of
from gateway.protocols.gemini_response import sealed_blob
from gateway.protocols.request_view import (
    BudgetAsk,
    EffortAsk,
    LogprobsAsk,
    RequestView,
    _int,
)
from gateway.protocols.sealed import MalformedSealError, ReasoningOpener

if TYPE_CHECKING:
    from gateway.protocols.base import OperationName

GENERATION_CONFIG = "generationConfig"
CANDIDATE_COUNT = "generationConfig.candidateCount"
MAX_OUTPUT_TOKENS = "generationConfig.maxOutputTokens"
RESPONSE_LOGPROBS = "generationConfig.responseLogprobs"
LOGPROBS = "generationConfig.logprobs"
THINKING_LEVEL = "generationConfig.thinkingConfig.thinkingLevel"
THINKING_BUDGET = "generationConfig.thinkingConfig.thinkingBudget"

# Google's JSON reader takes the proto's snake_case names too; below the declared levels the gateway
# does not rename (field names inside contents and tools are partly the client's own), so the view reads
# both spellings of the fields it uses.
_MEDIA_KEYS = ("inlineData", "fileData", "inline_data", "file_data")
_JSON_MIME_TYPES = frozenset({"application/json", "text/x.enum"})
_FUNCTION_MODES = {"AUTO": "auto", "VALIDATED": "auto", "NONE": "none", "ANY": "required"}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _parts(content: Any) -> list[Any]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


def _function_responses(parts: list[Any]) -> int:
    return sum(
        1
        for part in parts
        if isinstance(part, dict) and ("functionResponse" in part or "function_response" in part)
    )


def either(holder: dict[str, Any], camel: str, snake: str) -> Any:
    """``holder[camel]``, else ``holder[snake]`` (None when neither)."""
    value = holder.get(camel)
    return holder.get(snake) if value is None else value


class GenerateContentView(RequestView):
    """``generateContent``: the model from the path, the options in ``generationConfig``."""

    operation: OperationName = "generateContent"
    streaming = False
    prompt_fields = ("systemInstruction", "contents", "tools")
    prompt_param = "contents"
    message_fields = frozenset({"contents"})
    alternatives_param = LOGPROBS

    __slots__ = ("_model",)

    def __init__(self, body: dict[str, Any], model: str | None) -> None:
        super().__init__(body)
        self._model = model

    def _config(self) -> dict[str, Any]:
        return _dict(self.body.get(GENERATION_CONFIG))

    def _thinking(self) -> dict[str, Any]:
        return _dict(self._config().get("thinkingConfig"))

    # -- reading -----------------------------------------------------------------------------------

    @property
    def model(self) -> str | None:
        return self._model

    @property
    def stream(self) -> bool:
        return self.streaming

    def sample_counts(self) -> Any:
        count = _int(self._config().get("candidateCount"))
        if count is not None:
            yield CANDIDATE_COUNT, count

    @property
    def samples(self) -> int:
        count = _int(self._config().get("candidateCount"))
        return count if count is not None and count > 1 else 1

    @property
    def max_output_tokens(self) -> int | None:
        value = _int(self._config().get("maxOutputTokens"))
        return value if value is not None and value > 0 else None

    @property
    def max_output_tokens_param(self) -> str:
        return MAX_OUTPUT_TOKENS

    @property
    def logprobs(self) -> LogprobsAsk:
        config = self._config()
        top = _int(config.get("logprobs")) or 0
        return LogprobsAsk(sampled=config.get("responseLogprobs") is True or top > 0, alternatives=top)

    @property
    def logprobs_param(self) -> str:
        return RESPONSE_LOGPROBS

    def is_media(self, part: dict[str, Any]) -> bool:
        """Media parts are ``inlineData``/``fileData`` keys (Gemini parts carry no ``type`` field)."""
        return any(key in part for key in _MEDIA_KEYS)

    def conversation(self, budget: int) -> tuple[str, str, int]:
        turns = 0
        last: list[Any] | None = None
        contents = self.body.get("contents")
        for content in contents if isinstance(contents, list) else ():
            if not isinstance(content, dict) or content.get("role", "user") != "user":
                continue
            parts = _parts(content)
            if parts and _function_responses(parts) == len(parts):
                continue  # a tool loop's step, not a person
            turns += 1
            last = parts
        user: list[str] = []
        if last is not None:
            text_of(last, budget, user)
        system: list[str] = []
        text_of(_parts(self.body.get("systemInstruction")), budget, system)
        return " ".join(user), " ".join(system), turns

    @property
    def tool_count(self) -> int:
        tools = self.body.get("tools")
        count = 0
        for tool in tools if isinstance(tools, list) else ():
            declarations = (
                either(tool, "functionDeclarations", "function_declarations")
                if isinstance(tool, dict)
                else None
            )
            if isinstance(declarations, list):
                count += len(declarations)
                count += len(tool) - 1  # hosted tools set beside the declarations
            else:
                count += 1
        return count

    @property
    def tool_choice(self) -> str | None:
        calling = _dict(
            either(_dict(self.body.get("toolConfig")), "functionCallingConfig", "function_calling_config")
        )
        mode = calling.get("mode")
        if not isinstance(mode, str):
            return None
        choice = _FUNCTION_MODES.get(mode.upper(), "auto")
        names = either(calling, "allowedFunctionNames", "allowed_function_names")
        if choice == "required" and isinstance(names, list) and len(names) == 1:
            return "named"
        return choice

    def tool_results(self) -> tuple[int, int]:
        results = depth = 0
        contents = self.body.get("contents")
        for content in contents if isinstance(contents, list) else ():
            if not isinstance(content, dict) or content.get("role", "user") != "user":
                continue
            parts = _parts(content)
            count = _function_responses(parts)
            if count < len(parts) or not parts:
                depth = 0  # a person wrote this turn: the loop starts again
            results += count
            depth += count
        return results, depth

    def reasoning_efforts(self) -> list[EffortAsk]:
        level = self._thinking().get("thinkingLevel")
        if isinstance(level, str):
            return [EffortAsk(THINKING_LEVEL, level.lower(), lowest="minimal")]
        return []

    @property
    def reasoning_budget(self) -> BudgetAsk | None:
        budget = _int(self._thinking().get("thinkingBudget"))
        if budget is None:
            return None
        return BudgetAsk(THINKING_BUDGET, None if budget < 0 else budget)  # -1: dynamic, no budget

    @property
    def structured_output(self) -> bool:
        config = self._config()
        return (
            config.get("responseMimeType") in _JSON_MIME_TYPES
            or "responseSchema" in config
            or "responseJsonSchema" in config
        )

    # -- editing -----------------------------------------------------------------------------------

    def set_reasoning_effort(self, param: str, value: str) -> None:
        thinking = self._thinking()
        if param == THINKING_LEVEL and "thinkingLevel" in thinking:
            thinking["thinkingLevel"] = value.upper()  # the API's enum names are upper case

    def limit_reasoning_budget(self, limit: int) -> str:
        self._thinking()["thinkingBudget"] = limit
        return f"clamped:{THINKING_BUDGET}"

    def hide_upstream_reasoning(self) -> bool:
        thinking = self._thinking()
        if thinking.get("includeThoughts") is True:
            thinking["includeThoughts"] = False  # no thought summaries; signatures still come back
            return True
        return False

    def restore_sealed_reasoning(self, opener: ReasoningOpener) -> int:
        """Model turns' parts whose ``thoughtSignature`` carries a gateway blob (see
        :mod:`gateway.protocols.gemini_reasoning`): a thought part is replaced by the original thought
        part, another part gets its original signature back. A blob made for another place, or one
        that opens to the wrong shape, rejects the request. Placeholders (redact mode) stay: Gemini
        takes thought parts in the history and verifies only signatures."""
        contents = self.body.get("contents")
        for c_index, content in enumerate(contents if isinstance(contents, list) else ()):
            if not isinstance(content, dict) or content.get("role") != "model":
                continue
            parts = _parts(content)
            for p_index, part in enumerate(parts):
                if not isinstance(part, dict):
                    continue
                key = "thoughtSignature" if "thoughtSignature" in part else "thought_signature"
                blob = sealed_blob(part.get(key))
                if blob is None:
                    continue  # Google's own signature (or none): forwarded as the client sent it
                # Our mark with a blob inside: it must open, whatever opener.is_sealed thinks of it.
                param = f"contents[{c_index}].parts[{p_index}].{key}"
                original = opener.open("block", blob, param)
                if part.get("thought") is True:
                    if not (
                        isinstance(original, dict)
                        and original.get("thought") is True
                        and isinstance(original.get("text"), str)
                    ):
                        raise MalformedSealError(param)
                    parts[p_index] = original
                else:
                    if not isinstance(original, str):
                        raise MalformedSealError(param)
                    part[key] = original
        return 0

    def set_sample_count(self, param: str, count: int) -> None:
        config = self._config()
        if param == CANDIDATE_COUNT and "candidateCount" in config:
            config["candidateCount"] = count

    def set_alternatives(self, count: int) -> None:
        config = self._config()
        if _int(config.get("logprobs")) is not None:
            config["logprobs"] = count

    def drop_sampled_logprobs(self) -> None:
        config = self._config()
        config.pop("responseLogprobs", None)
        config.pop("logprobs", None)

    def drop_logprobs(self) -> None:
        self.drop_sampled_logprobs()

    # Gemini has no prompt log-probabilities, named-token log-probabilities or logit bias: the base's
    # edits of those OpenAI/vLLM fields must not touch a Gemini body.
    def drop_prompt_logprobs(self) -> None:
        pass

    def set_prompt_alternatives(self, count: int) -> None:
        pass

    def drop_token_ids(self) -> None:
        pass

    def drop_logit_bias(self) -> None:
        pass


class StreamGenerateContentView(GenerateContentView):
    """``streamGenerateContent?alt=sse``: the same body, answered as an event stream."""

    operation = "streamGenerateContent"
    streaming = True

    __slots__ = ()
