"""Response view of Gemini's ``generateContent``: candidates' parts, whole and streamed.

A body (and each stream chunk) is a ``GenerateContentResponse``: ``candidates[]`` with ``index``,
``content: {role: "model", parts[]}``, ``finishReason``, ``avgLogprobs`` and ``logprobsResult``
(``chosenCandidates[]`` and ``topCandidates[].candidates[]`` of ``{token, tokenId, logProbability}``,
``logProbabilitySum``). A stream chunk's parts continue the candidate's content; there is no
terminal event.

Keys: candidate ``i``'s visible text (its ``text`` parts) is ``("candidate", i)``; its thoughts
(``text`` parts with ``thought: true``) ``("thought", i)``, reasoning ``raw``; a ``thoughtSignature``
on any part is reasoning ``encrypted`` (opaque, Google's: the model needs it back in later turns),
``("signature", i, n)``; the ``args`` of its n-th ``functionCall`` and the ``code`` of an
``executableCode`` part are tool arguments, ``("tool", i, n)`` and ``("code", i, n)``; its
``logprobsResult`` and ``avgLogprobs`` (a per-candidate average logprob, returned unasked by some
models) are logprobs, ``("logprobs", i)`` and ``("avg_logprobs", i)``. Gemini has no refusal text
(a blocked answer is an empty candidate with ``finishReason: SAFETY``). Not read: grounding and
citation metadata (offsets into the text, ``annotation``) and generated media.

Streams: a candidate's thoughts end at its first chunk with an answer part, its content at the chunk
with its ``finishReason``; text added for a key goes into that chunk's parts. Chunks left with no
part and no finish by the policies are not forwarded (:class:`GeminiChunks`).

The parts are read in :mod:`gateway.protocols.gemini_parts`, the stream view is in
:mod:`gateway.protocols.gemini_stream`; this module holds the body view and re-exports the rest.

Sealing (the reasoning policy's ``seal`` mode): a thought part keeps ``thought: true``, loses its
text, and carries the sealed blob in its ``thoughtSignature``, wrapped in base64 (the SDK reads that
field as base64 bytes and sends it back unchanged in the history); :func:`sealed_blob` unwraps it.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.protocols.gemini_parts import (
    candidate_parts,
    candidates_of,
    parts_of,
    seal_signature,
    sealed_blob,
)
from gateway.protocols.gemini_stream import GeminiChunks, GenerateContentStreamView
from gateway.protocols.response_view import LogprobsPart, Part, ResponseView

__all__ = [
    "GeminiChunks",
    "GenerateContentBodyView",
    "GenerateContentStreamView",
    "candidates_of",
    "parts_of",
    "seal_signature",
    "sealed_blob",
]


class GenerateContentBodyView(ResponseView):
    """A whole ``generateContent`` response."""

    __slots__ = ()

    def parts(self, kinds: frozenset[str] = frozenset({"text"})) -> Iterator[Part | LogprobsPart]:
        for position, candidate in enumerate(candidates_of(self.body)):
            yield from candidate_parts(candidate, position, kinds, stream=False, counts=(0, 0))
