"""Sealed reasoning: where each API family carries a gateway-sealed blob, and how it comes back.

A policy that seals reasoning (the ``reasoning`` policy's seal mode) owns the cryptography; the
adapters own the places. On the way out an adapter asks the policy for a blob of the original
reasoning and puts it where its API carries opaque continuity data; on the way in (the request
view's :meth:`~gateway.protocols.request_view.RequestView.restore_sealed_reasoning`) it finds
the blobs a client sent back in the conversation history, asks the policy to open them, checks
that what came out has the shape that place seals, and puts the original back.

Places (:data:`SealPlace`), one per kind of original, so that a blob made for one is refused in
another:

* ``fields``: the reasoning fields of one chat message (OpenAI-compatible chat completions);
* ``inline``: one inline ``<think>`` span of a text, tags included;
* ``item``: one reasoning output item (OpenAI Responses);
* ``block``: one thinking or redacted-thinking content block (Anthropic Messages), or one thought
  part or thought signature (Gemini): the same kind of original, a model's signed reasoning unit;
  the two families' shapes are disjoint (a block has a ``type``, a thought part ``thought: true``,
  a signature is a string), so a blob of one found in the other is refused as malformed.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

SealPlace = Literal["fields", "inline", "item", "block"]
# What a client is told a blob was made for, when it is sent back somewhere else.
PLACE_NAMES: dict[SealPlace, str] = {
    "fields": "chat completions reasoning",
    "inline": "inline think block",
    "item": "Responses reasoning item",
    "block": "Anthropic thinking block or Gemini thought",
}


class MalformedSealError(ValueError):
    """A blob opened, but what it holds is not the shape of the place it was found in."""

    def __init__(self, param: str) -> None:
        super().__init__(f"{param}: the sealed reasoning is malformed")
        self.param = param


class ReasoningOpener(Protocol):
    """What the request view asks of the policy that sealed the blobs (see the module docstring)."""

    def is_sealed(self, value: Any) -> bool:
        """Whether ``value`` is one of the policy's blobs."""

    def open(self, place: SealPlace, blob: str, param: str) -> Any:
        """The original sealed in ``blob`` for ``place``; raises (a request error naming ``param``) if not."""

    def open_text(self, text: str, param: str) -> str:
        """``text`` (a history text, at ``param``) with each sealed inline span opened."""
