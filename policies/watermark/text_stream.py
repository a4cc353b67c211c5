"""One text stream of a response (one key of the response view: a choice, a part, a block) and its marking.

A :class:`TextStream` feeds its text through the marker, passes an echoed
prompt prefix as it is, adds the canary at the end, and maps offsets of the
upstream's text into the marked text (the view's anchors: citations).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

from gateway.plugins import Anchor, Part
from policies.watermark.marker import TextMarker


class TextStream:
    """One text stream: the marker, an optional echoed prefix passed as is, and the canary at the end."""

    __slots__ = ("_blank", "canary", "done", "inp", "marker", "out", "passed", "prefix_left", "text_seen")

    def __init__(self, marker: TextMarker, canary: str | None, prefix: int = 0) -> None:
        self.marker = marker
        self.canary = canary
        self.prefix_left = prefix
        self.passed = 0  # length of the echoed prefix passed as it is
        self.inp: list[str] = []
        self.out: list[str] = []
        self.text_seen = ""
        self._blank = True  # text_seen is whitespace only (it grows until it is not)
        self.done = False

    def feed(self, text: str) -> str:
        if not text:
            return ""
        self.inp.append(text)
        passed = ""
        if self.prefix_left:
            passed, text = text[: self.prefix_left], text[self.prefix_left :]
            self.prefix_left -= len(passed)
            self.passed += len(passed)
        if self._blank:
            self.text_seen += text[:64]
            self._blank = not self.text_seen.strip()
        out = self.marker.feed(text)
        if passed:
            out = passed + out
        self.out.append(out)
        return out

    def finish(self) -> str:
        if self.done:
            return ""
        self.done = True
        out = self.marker.finish()
        if self.canary and self._canary_fits():
            full = "".join(self.out) + out
            sep = "\n\n" if "\n" in full.strip() else " "
            out += ("" if full.endswith((" ", "\n")) else sep) + self.canary
        else:
            self.canary = None
        self.out.append(out)
        return out

    def _canary_fits(self) -> bool:
        first = self.text_seen.lstrip()[:1]
        return bool(first) and first not in "{[<`" and not self.marker.protected

    @property
    def text(self) -> str:
        return "".join(self.out)

    def output_index(self, index: int, end: bool = False) -> int | None:
        """Where input offset ``index`` lies in the marked text; None while that text is held back.

        Inside a rewritten word an index moves to the start of the change
        (``end`` False) or to its end (``end`` True).
        """
        if index <= self.passed:
            return index
        sync = self.marker.sync
        at = index - self.passed
        pos = bisect_right(sync, (at, float("inf"))) - 1
        in_a, out_a = sync[pos]
        if in_a == at:
            return out_a + self.passed
        if pos + 1 >= len(sync):  # past what is final: held back, or past the end of the text
            return out_a + self.passed if self.done else None
        in_b, out_b = sync[pos + 1]
        source = "".join(self.inp)[self.passed + in_a : self.passed + in_b]
        target = self.text[self.passed + out_a : self.passed + out_b]
        head = _common_prefix(source, target)
        tail = _common_prefix(source[head:][::-1], target[head:][::-1])
        if at - in_a <= head:
            mapped = out_a + (at - in_a)
        elif in_b - at <= tail:
            mapped = out_b - (in_b - at)
        else:
            mapped = out_b - tail if end else out_a + head
        return mapped + self.passed

    def map_anchors(self, anchors: list[Anchor]) -> bool:
        """Move every anchor into the marked text; False (nothing moved) if one is still held back."""
        moved: list[tuple[Anchor, int]] = []
        for anchor in anchors:
            mapped = self.output_index(anchor.value, anchor.end)
            if mapped is None:
                return False
            moved.append((anchor, mapped))
        for anchor, mapped in moved:
            anchor.move(mapped)
        return True


def _common_prefix(a: str, b: str) -> int:
    size = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        size += 1
    return size


Factory = Callable[[Part], TextStream]


def mark_whole(stream: TextStream, text: str) -> str:
    """A whole (non-streamed) text marked by ``stream``, which is finished with it.

    A text the marker would write as it is (nothing markable in it, see
    :meth:`TextMarker.passes_unchanged`) skips the scanner and tracker: most answers
    under the default tier's classes, and every answer once the green list marks it.
    """
    if stream.canary is None and not stream.inp and not stream.done:
        rest = text[stream.prefix_left :]
        if stream.marker.passes_unchanged(rest):
            passed = len(text) - len(rest)
            stream.prefix_left -= passed
            stream.passed += passed
            stream.marker.passed_unchanged(rest)
            stream.inp.append(text)
            stream.out.append(text)
            stream.done = True
            return text
    return stream.feed(text) + stream.finish()
