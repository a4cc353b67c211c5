"""Risk levels only tighten: merging a level's override field by field with each field's declared order.

The effective config at a risk level is the stricter, field by field, of the effective config one
level below and the override (already merged over the tier's config and validated, so its values
are typed). Each field's order comes from its strictness marker in the policy's config schema
(``gateway.plugins.strictness``); nested models recurse. An override of a field that declares no
order is refused: the loader cannot show that it tightens.

:func:`looser_fields` is the independent check used by tests and ``distillguard check``: the
fields where one config is looser than another.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from gateway.plugins.strictness import Keyed, Neutral, Order, Strictness, StrictnessError, strictness_of

_ABSENT: Any = object()


class TightenError(ValueError):
    """An override the loader cannot merge; ``key`` is its dotted path inside the policy's config."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The config model a field holds (``X`` or ``X | None``) and whether it is optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1 and len(args) == 2 and type(None) in args:
            return models[0], True
    return None, False


def _marker(info: FieldInfo, key: str) -> Strictness | None:
    try:
        return strictness_of(info.metadata)
    except StrictnessError as exc:
        raise TightenError(key, str(exc)) from None


def tighten(
    cls: type[BaseModel],
    lower: BaseModel,
    base: BaseModel | None,
    candidate: BaseModel,
    override: Mapping[str, Any] | None,
) -> BaseModel:
    """The stricter of ``lower`` (the level below) and ``candidate`` (the override over ``base``).

    A field counts as overridden when the override names it or when ``candidate`` differs from
    ``base`` there (a validator may map a key to another field); the others keep ``lower``'s value.
    Raises TightenError naming the dotted key of an overridden field that declares no order.
    """
    return _tighten(cls, lower, base, candidate, override, neutral=False, prefix="")


def _tighten(
    cls: type[BaseModel],
    lower: BaseModel,
    base: BaseModel | None,
    candidate: BaseModel,
    override: Mapping[str, Any] | None,
    *,
    neutral: bool,
    prefix: str,
) -> BaseModel:
    values: dict[str, Any] = {}
    for name, info in type(candidate).model_fields.items():
        key = f"{prefix}{name}"
        below = getattr(lower, name)
        new = getattr(candidate, name)
        named = override.get(name, _ABSENT) if override is not None else _ABSENT
        base_value = getattr(base, name) if base is not None else _ABSENT
        changed = named is not _ABSENT or (base is not None and new != base_value)
        if not changed:
            values[name] = below
            continue
        values[name] = _field(info, below, base_value, new, named, neutral=neutral, key=key)
    # Validated again: model validators (an order between thresholds, say) see the merged whole.
    return cls.model_validate(values)


def _field(info: FieldInfo, below: Any, base: Any, new: Any, named: Any, *, neutral: bool, key: str) -> Any:
    marker = _marker(info, key)
    model, _ = nested_model(info.annotation)
    sub_override = named if isinstance(named, Mapping) else None
    sub_base = base if isinstance(base, BaseModel) else None
    if neutral or isinstance(marker, Neutral):
        if model is not None and isinstance(below, BaseModel) and isinstance(new, BaseModel):
            # keys the override leaves out keep the level below's values, as everywhere else
            return _tighten(model, below, sub_base, new, sub_override, neutral=True, prefix=f"{key}.")
        return new
    if isinstance(marker, Keyed):
        return _keyed(below, base, new, sub_override, key)
    if isinstance(marker, Order):
        try:
            return marker.stricter(below, new)
        except StrictnessError as exc:
            raise TightenError(key, str(exc)) from None
    if model is not None:
        if below is None or new is None:  # None: the nested feature is off, the loosest
            return new if below is None else below
        return _tighten(model, below, sub_base, new, sub_override, neutral=False, prefix=f"{key}.")
    raise TightenError(
        key,
        "cannot show this override tightens: the policy declares no strictness order for this key "
        "(declare one in its config schema, or mark it NEUTRAL)",
    )


def _keyed(
    below: Mapping[str, Any], base: Any, new: Mapping[str, Any], override: Mapping[str, Any] | None, key: str
) -> dict[str, Any]:
    merged = dict(below)
    for name, value in new.items():
        if name not in merged:
            merged[name] = value  # after the level below's entries: it only reaches what they missed
            continue
        sub_base = base.get(name) if isinstance(base, Mapping) else None
        sub_override = override.get(name) if override is not None else None
        merged[name] = _tighten(
            type(value),
            merged[name],
            sub_base,
            value,
            sub_override if isinstance(sub_override, Mapping) else None,
            neutral=False,
            prefix=f"{key}.{name}.",
        )
    return merged


def looser_fields(value: BaseModel, reference: BaseModel, prefix: str = "") -> list[str]:
    """Dotted keys where ``value`` is looser than ``reference`` by the declared orders.

    A field with no order (and not neutral) must be equal: no risk level may change it.
    """
    faults: list[str] = []
    for name, info in type(reference).model_fields.items():
        key = f"{prefix}{name}"
        a, b = getattr(value, name), getattr(reference, name)
        marker = strictness_of(info.metadata)
        if isinstance(marker, Neutral):
            continue
        if isinstance(marker, Order):
            if not marker.at_least_as_strict(a, b):
                faults.append(f"{key}: {a!r} is looser than {b!r}")
            continue
        if isinstance(marker, Keyed):
            for entry, ref in b.items():
                if entry not in a:
                    faults.append(f"{key}.{entry}: missing")
                else:
                    faults += looser_fields(a[entry], ref, f"{key}.{entry}.")
            continue
        if isinstance(a, BaseModel) and isinstance(b, BaseModel):
            faults += looser_fields(a, b, f"{key}.")
        elif nested_model(info.annotation)[0] is not None and b is not None:
            if a is None:
                faults.append(f"{key}: None is looser than {b!r}")
        elif a != b:
            faults.append(f"{key}: changed from {b!r} to {a!r} but declares no order")
    return faults
