"""vLLM-style lax parsing for the mock: what a pydantic model server does with loosely typed values.

vLLM's request models are pydantic v2 in lax mode: ``"8"`` and ``8.0`` become the integer 8,
``"true"``, ``"1"`` and ``1`` become True, and a ``null`` optional parameter is its default. The
mock applies the same coercion (``MockUpstream(coerce=True)``) so that tests can show the gateway
refuses what a real server would have quietly served.
"""

from __future__ import annotations

from typing import Any

INT_PARAMS = frozenset(
    {
        "n",
        "best_of",
        "max_tokens",
        "max_completion_tokens",
        "max_output_tokens",
        "top_logprobs",
        "prompt_logprobs",
    }
)
BOOL_PARAMS = frozenset({"stream", "echo"})
_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "off", "f", "n"})


def coerce_int(value: Any) -> Any:
    """pydantic's lax int: integral floats and digit strings become ints; anything else is kept."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return value
    return value


def coerce_bool(value: Any) -> Any:
    """pydantic's lax bool: 0/1 and the usual strings become bools; anything else is kept."""
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    return value


def coerce_body(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as vLLM reads it (a new dict; the request log keeps what was sent)."""
    out = dict(body)
    for name in INT_PARAMS & out.keys():
        out[name] = coerce_int(out[name])
    for name in BOOL_PARAMS & out.keys():
        out[name] = coerce_bool(out[name])
    # Chat logprobs is a bool; legacy completions logprobs an int.
    if "logprobs" in out:
        out["logprobs"] = (coerce_int if path == "/v1/completions" else coerce_bool)(out["logprobs"])
    return out
