"""How a policy's config fields order by strictness, so that a risk level can only tighten.

A policy declares, in its own config schema, which way each field tightens, with
``typing.Annotated`` metadata the loader reads (the engine names no policy and no field)::

    class MyConfig(PolicyConfig):
        requests_per_minute: Annotated[int | None, LOWER_IS_STRICTER] = None
        mode: Annotated[Literal["allow", "drop"], Ranked("allow", "drop")] = "drop"
        message: Annotated[str, NEUTRAL] = "blocked"

A risk level's override of a field then takes the stricter of the level below and the override
(see ``gateway.config.tighten``). The markers:

``LOWER_IS_STRICTER`` / ``HIGHER_IS_STRICTER``
    numbers; ``None`` (no limit, off) is the loosest value.
``Ranked(loosest, ..., strictest)``
    an ordered set of values, loosest first; ``None`` is below all of them.
    ``TRUE_IS_STRICTER`` and ``FALSE_IS_STRICTER`` are the two boolean rankings.
``SUPERSET_IS_STRICTER``
    a list where more entries is stricter (classes of words marked); merging is the union.
``KEYED``
    a mapping of names to nested configs: an entry present on both sides tightens field by
    field; an entry only one side has is kept (the mapping's first-match order keeps the lower
    level's entries first, so a new entry only reaches what no earlier entry matched).
``NEUTRAL``
    not about strictness (a message text, key ids): the override's value applies.

A field holding a nested config model needs no marker: its own fields declare theirs (``None``
for an optional nested model is the loosest, "feature off"). A field with no marker and no
nested model cannot be shown to tighten, so a risk level that overrides it is refused.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any


class StrictnessError(ValueError):
    """A value the declared order cannot place (a schema bug: the order misses a value)."""


class Strictness:
    """Base of every strictness marker."""


@dataclass(frozen=True, slots=True)
class Neutral(Strictness):
    """The field says nothing about strictness; an override's value applies as given."""


class Order(Strictness):
    """A total or partial order on a field's values."""

    def stricter(self, a: Any, b: Any) -> Any:
        """The stricter of ``a`` and ``b`` (``a`` when they are equally strict)."""
        raise NotImplementedError

    def at_least_as_strict(self, a: Any, b: Any) -> bool:
        """Whether ``a`` is at least as strict as ``b``."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Lower(Order):
    """Lower numbers are stricter; ``None`` (unlimited) is the loosest."""

    def stricter(self, a: Any, b: Any) -> Any:
        if a is None:
            return b
        if b is None:
            return a
        return b if b < a else a

    def at_least_as_strict(self, a: Any, b: Any) -> bool:
        return b is None or (a is not None and a <= b)


@dataclass(frozen=True, slots=True)
class Higher(Order):
    """Higher numbers are stricter; ``None`` (off) is the loosest."""

    def stricter(self, a: Any, b: Any) -> Any:
        if a is None:
            return b
        if b is None:
            return a
        return b if b > a else a

    def at_least_as_strict(self, a: Any, b: Any) -> bool:
        return b is None or (a is not None and a >= b)


class Ranked(Order):
    """Values ranked loosest first; ``None`` ranks below every listed value."""

    def __init__(self, *values: Hashable) -> None:
        if len(set(map(repr, values))) != len(values) or not values:
            raise ValueError("Ranked needs distinct values, loosest first")
        self.values: tuple[Hashable, ...] = values

    def __repr__(self) -> str:
        return "Ranked(" + ", ".join(map(repr, self.values)) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ranked) and repr(other) == repr(self)

    def __hash__(self) -> int:
        return hash(repr(self))

    def rank(self, value: Any) -> int:
        """Position of ``value`` (-1 for None); StrictnessError for a value the order lacks."""
        if value is None:
            return -1
        for index, ranked in enumerate(self.values):
            # type() too: True == 1 must not rank an int like a bool
            if type(ranked) is type(value) and ranked == value:
                return index
        raise StrictnessError(f"{value!r} is not in the declared order {list(self.values)}")

    def stricter(self, a: Any, b: Any) -> Any:
        return b if self.rank(b) > self.rank(a) else a

    def at_least_as_strict(self, a: Any, b: Any) -> bool:
        return self.rank(a) >= self.rank(b)


@dataclass(frozen=True, slots=True)
class Superset(Order):
    """A list where more entries is stricter; the stricter of two is their union (``a``'s order first)."""

    def stricter(self, a: Sequence[Any] | None, b: Sequence[Any] | None) -> list[Any]:
        out = list(a or [])
        out += [item for item in (b or []) if item not in out]
        return out

    def at_least_as_strict(self, a: Sequence[Any] | None, b: Sequence[Any] | None) -> bool:
        return all(item in (a or []) for item in (b or []))


@dataclass(frozen=True, slots=True)
class Keyed(Strictness):
    """A mapping of names to nested config models, tightened entry by entry."""


LOWER_IS_STRICTER = Lower()
HIGHER_IS_STRICTER = Higher()
TRUE_IS_STRICTER = Ranked(False, True)
FALSE_IS_STRICTER = Ranked(True, False)
SUPERSET_IS_STRICTER = Superset()
KEYED = Keyed()
NEUTRAL = Neutral()


def strictness_of(metadata: Sequence[Any]) -> Strictness | None:
    """The strictness marker among a field's metadata (``FieldInfo.metadata``), if any."""
    found = [item for item in metadata if isinstance(item, Strictness)]
    if len(found) > 1:
        raise StrictnessError(f"a field declares {len(found)} strictness orders: {found}")
    return found[0] if found else None
