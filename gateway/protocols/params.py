"""One validated reading of a request body, before any policy runs.

The policies and the quota decide on a handful of parameters (``model``, ``stream``, ``n``, the
max-tokens fields, logprob counts, ``logit_bias``, reasoning effort and budgets...). Model servers
coerce loosely typed values (vLLM and most pydantic servers read ``"n": "8"`` as 8 and ``"stream":
"true"`` as true), while a policy that tests ``is True`` or ``isinstance(value, int)`` sees no such
parameter: the request would be judged as one thing and served as another. So each operation
declares its parameters (:mod:`gateway.protocols.declared`) and :func:`check_body` holds the body
to their exact JSON types, deliberately stricter than the upstream: a bool is not an integer, a
string of digits is not a number, a float is not an integer. Parameters nobody declared never
reach the upstream (deny by default) unless the operator lists them for the upstream that serves
the model (``upstreams[].extra_parameters``: forwarded unchecked, the operator's risk).

The body is checked in place and forwarded as checked; the only edit is a missing ``model`` set
to the upstream's configured ``default_model``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.errors import InvalidRequestError, NotFoundError

_ARTICLE = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


# The parsed body's own types (orjson makes exactly these): one lookup instead of the chain below.
_KIND_OF_TYPE: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def json_kind(value: Any) -> str:
    """The JSON type of a parsed value (``bool`` is ``boolean``, never ``integer``)."""
    kind = _KIND_OF_TYPE.get(type(value))
    if kind is not None:
        return kind
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class Param:
    """The accepted shape of one value.

    ``kinds``: JSON types accepted (``number`` accepts integers too); ``minimum``: for numbers;
    ``fields``: for objects, the known keys and their shapes (other keys are not checked);
    ``items``: for arrays, the shape of each item; ``values``/``key_pattern``: for objects used
    as maps, the shape of each value and the pattern each key must match.
    """

    kinds: frozenset[str]
    minimum: int | None = None
    fields: Mapping[str, Param] = field(default_factory=dict)
    items: Param | None = None
    values: Param | None = None
    key_pattern: str | None = None
    # ``kinds`` with "integer" where "number" is in it: what ``accepts`` tests, as one set lookup.
    accepted: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        integer = frozenset({"integer"}) if "number" in self.kinds else frozenset()
        object.__setattr__(self, "accepted", self.kinds | integer)

    def accepts(self, kind: str) -> bool:
        return kind in self.accepted

    def expected(self) -> str:
        names = [_ARTICLE.get(kind, kind) for kind in sorted(self.kinds, key=_kind_order)]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _kind_order(kind: str) -> int:
    order = ("integer", "number", "string", "boolean", "object", "array", "null")
    return order.index(kind) if kind in order else len(order)


def param(*kinds: str, **shape: Any) -> Param:
    """A :class:`Param` accepting ``kinds`` (add ``"null"`` only where the API allows null)."""
    return Param(frozenset(kinds), **shape)


@dataclass(frozen=True, slots=True)
class Declaration:
    """The parameters of one operation.

    ``checked``: parameters the gateway's policies or quota decide on, held to their types;
    ``accepted``: harmless parameters forwarded without a type check (the upstream validates
    them, and no policy reads them); ``refused``: parameters a server understands that would
    go around a policy, with the reason given to the client. Anything else is unknown.
    """

    checked: Mapping[str, Param]
    accepted: frozenset[str]
    refused: Mapping[str, str]


class UpstreamRules(Protocol):
    """What the operator configured for the upstream that serves a model (``upstreams[]``)."""

    @property
    def default_model(self) -> str | None: ...

    @property
    def extra_parameters(self) -> Collection[str]: ...


UpstreamFor = Callable[[str | None], UpstreamRules]


def invalid_type(path: str, spec: Param, value: Any) -> InvalidRequestError:
    got = _ARTICLE.get(json_kind(value), "a value")
    return InvalidRequestError(
        f"Invalid type for '{path}': expected {spec.expected()}, but got {got} instead."
        " The gateway checks parameter types exactly and does not convert them.",
        param=path,
        code="invalid_type",
    )


def check_value(path: str, value: Any, spec: Param) -> None:
    """Raise :class:`InvalidRequestError` naming ``path`` unless ``value`` has the shape ``spec``."""
    _check(value, spec, path, None)


# Where a nested value is, as a linked list of steps from ``path`` (the innermost first): the
# path's text is made only for an error, not for every message and field of a valid request.
_Trail = tuple[Any, "str | int"] | None


def _path(path: str, trail: _Trail) -> str:
    steps: list[str | int] = []
    while trail is not None:
        trail, step = trail
        steps.append(step)
    return path + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in reversed(steps))


def _check(value: Any, spec: Param, path: str, trail: _Trail) -> None:
    kind = _KIND_OF_TYPE.get(type(value)) or json_kind(value)
    if kind not in spec.accepted:
        raise invalid_type(_path(path, trail), spec, value)
    if kind in ("integer", "number") and spec.minimum is not None and value < spec.minimum:
        where = _path(path, trail)
        raise InvalidRequestError(
            f"Invalid value for '{where}': {value!r} is below the minimum of {spec.minimum}.",
            param=where,
            code="integer_below_min_value",
        )
    if kind == "object":
        for key, inner in spec.fields.items():
            if key in value:
                _check(value[key], inner, path, (trail, key))
        if spec.values is not None:
            pattern = spec.key_pattern
            for key, inner_value in value.items():
                if pattern is not None and not re.fullmatch(pattern, key):
                    where = _path(path, trail)
                    raise InvalidRequestError(
                        f"Invalid key {key!r} in '{where}': expected a token id (an integer as a string).",
                        param=where,
                        code="invalid_value",
                    )
                _check(inner_value, spec.values, path, (trail, key))
    elif kind == "array" and spec.items is not None:
        items = spec.items
        for index, item in enumerate(value):
            _check(item, items, path, (trail, index))


def check_body(declaration: Declaration, body: dict[str, Any], upstream_for: UpstreamFor) -> None:
    """Validate ``body`` against ``declaration``; resolve a missing ``model`` (see the module docstring)."""
    rules = _resolve_model(body, upstream_for)
    check_fields("", body, declaration, rules.extra_parameters)


def check_fields(
    prefix: str,
    body: dict[str, Any],
    declaration: Declaration,
    extras: Collection[str],
    checked: Callable[[str, Any], None] | None = None,
) -> None:
    """Check each field of ``body`` (an object at ``prefix``, "" at the top) against ``declaration``.

    A declared field's value is checked (then handed to ``checked(path, value)``, where a family
    descends into nested objects); accepted and upstream-extra fields pass; a refused field raises
    at once; the unknown ones are named together.
    """
    unknown: list[str] = []
    for name, value in body.items():
        spec = declaration.checked.get(name)
        path = prefix + name if prefix else name
        if spec is not None:
            check_value(path, value, spec)
            if checked is not None:
                checked(path, value)
        elif name in declaration.accepted or name in extras:
            continue
        elif name in declaration.refused:
            raise refused_parameter(path, declaration.refused[name])
        else:
            unknown.append(path)
    if unknown:
        raise unknown_parameters(unknown)


def _resolve_model(body: dict[str, Any], upstream_for: UpstreamFor) -> UpstreamRules:
    model = body.get("model")
    if model is None:
        # Absent (or null): the upstream would serve its own default model, which no per-model
        # quota limit or model-name rule would match. Name it here, or refuse.
        try:
            rules = upstream_for(None)
        except NotFoundError:
            rules = None
        default = rules.default_model if rules is not None else None
        if rules is None or not default:
            raise InvalidRequestError(
                "You must provide a model parameter.", param="model", code="missing_required_parameter"
            )
        body["model"] = default
        model = default
    if not isinstance(model, str):
        raise invalid_type("model", param("string"), model)
    if not model:
        raise InvalidRequestError("Invalid value for 'model': empty.", param="model", code="invalid_value")
    return upstream_for(model)


def refused_parameter(path: str, reason: str) -> InvalidRequestError:
    """The error for a parameter the gateway declares refused (``path`` dotted where nested)."""
    return InvalidRequestError(
        f"The parameter '{path}' is not accepted by this gateway: {reason}",
        param=path,
        code="unsupported_parameter",
    )


def unknown_parameters(unknown: list[str]) -> InvalidRequestError:
    """The error for parameters no declaration names (the first is the error's ``param``)."""
    listed = ", ".join(f"'{name}'" for name in unknown)
    return InvalidRequestError(
        f"Unrecognized request argument{'s' if len(unknown) > 1 else ''} supplied: {listed}. "
        "The gateway forwards only the parameters it declares.",
        param=unknown[0],
        code="unknown_parameter",
    )
