"""Renumbering a stream after the policies: the one place block indexes and sequence numbers are fixed.

Policies may drop, hold and insert events; the engine then runs the adapter's
:class:`StreamNumbering` over what the last filter emits, so the client sees consecutive numbers.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from gateway.sse import StreamEvent


class IndexMap:
    """Upstream block (or item) indexes to the client's, given the starts the client saw, in order.

    ``start(u)``: a block's start is forwarded; it gets the next client index. ``get(u)``: the
    client index of a later event of block ``u``; for a block whose start was never forwarded,
    ``u`` less the blocks missing below it (so an odd upstream stays consistent, never shifted
    onto another block).
    """

    __slots__ = ("_map", "_missing", "_next")

    def __init__(self) -> None:
        self._map: dict[int, int] = {}
        self._missing: list[int] = []  # upstream indexes skipped (withheld), sorted
        self._next = 0  # the upstream index expected next

    def start(self, upstream: int) -> int:
        if upstream in self._map:
            return self._map[upstream]
        if upstream >= self._next:
            for skipped in range(self._next, upstream):
                self._missing.append(skipped)
            self._next = upstream + 1
        else:
            # A start released late (a policy held it): it is no longer missing.
            at = bisect_left(self._missing, upstream)
            if at < len(self._missing) and self._missing[at] == upstream:
                del self._missing[at]
        client = upstream - bisect_left(self._missing, upstream)
        self._map[upstream] = client
        return client

    def get(self, upstream: int) -> int:
        client = self._map.get(upstream)
        if client is not None:
            return client
        return upstream - bisect_left(self._missing, upstream)

    def withheld(self, upstream: int) -> None:
        """Declare block ``upstream`` withheld whole (optional: gaps are found on the next start)."""
        if upstream not in self._map and upstream not in self._missing:
            insort(self._missing, upstream)
            self._next = max(self._next, upstream + 1)


class StreamNumbering:
    """The adapter's pass over a stream's output after every policy filter (none by default).

    Formats that number their events or blocks (Responses ``sequence_number`` and
    ``output_index``, Anthropic block ``index``) subclass it, so that policies may drop, hold and
    insert events freely and the client still sees consecutive numbers.
    """

    __slots__ = ()

    def apply(self, events: list[StreamEvent]) -> list[StreamEvent]:
        """Renumber ``events`` (the filters' output, in order) in place; returns them."""
        return events
