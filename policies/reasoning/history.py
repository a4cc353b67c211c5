"""On the way in: sealed reasoning in the conversation history is opened and the original restored.

The adapter's request view finds the blobs where seal mode's responses put them and puts the
originals back (``RequestView.restore_sealed_reasoning``); this module opens them for it: the
blob's key, account and place are checked (a blob made for one place is refused in another), and
inline ``<tag>blob</tag>`` spans in the history's texts are opened here, since they are text.

A blob that does not open (altered, issued to another account, made for another place, or under a
key the gateway no longer has) rejects the request with a 400 naming where it was.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from gateway.plugins import SealPlace
from policies.reasoning.seal import PLACE_FORMATS, SealKeyRing, UnsealError, is_blob

_BLOB = r"dgs1\.[A-Za-z0-9_-]+\.[a-z]\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"


class HistoryError(Exception):
    """An unsealing failure at ``param``."""

    def __init__(self, error: UnsealError, param: str) -> None:
        super().__init__(f"{param}: {error.message}")
        self.reason = error.reason
        self.param = param
        self.message = (
            f"{param}: {error.message}. Send reasoning back exactly as the gateway returned it, "
            "with the account it was returned to."
        )


@functools.lru_cache(maxsize=64)
def _inline_blobs(think_tags: tuple[str, ...]) -> re.Pattern[str]:
    """``<tag>blob</tag>`` for the configured tags: compiled once per tag set, not per request."""
    names = "|".join(re.escape(tag) for tag in think_tags)
    return re.compile(rf"<({names})>({_BLOB})</\1>")


def malformed(param: str) -> HistoryError:
    return HistoryError(UnsealError("malformed", "the sealed reasoning is malformed"), param)


class HistoryUnsealer:
    """Opens the blobs of one request (one account) for the request view; counts them in ``unsealed``."""

    def __init__(self, keys: SealKeyRing, account: str, think_tags: Sequence[str]) -> None:
        self.keys = keys
        self.account = account
        self.unsealed = 0
        self._think = _inline_blobs(tuple(think_tags)) if think_tags else None

    def is_sealed(self, value: Any) -> bool:
        return is_blob(value)

    def open(self, place: SealPlace, blob: str, param: str) -> Any:
        try:
            payload = self.keys.unseal(blob, PLACE_FORMATS[place], self.account)
        except UnsealError as exc:
            raise HistoryError(exc, param) from None
        self.unsealed += 1
        return payload

    def open_text(self, text: str, param: str) -> str:
        if self._think is None or "dgs1." not in text:
            return text
        return self._think.sub(lambda match: self._open_span(match.group(2), param), text)

    def _open_span(self, blob: str, param: str) -> str:
        span = self.open("inline", blob, param)
        if not isinstance(span, str):
            raise malformed(param)
        return span
