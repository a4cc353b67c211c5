"""Finding policy classes by name.

Policies, built-in or third-party, register under the entry-point group
``distillguard.policies`` (ours are declared in pyproject.toml), so the engine
names none of them. A YAML may also name a class directly as ``module:Class``,
which is handy for a local policy that is not packaged.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from gateway.plugins.base import Policy

ENTRY_POINT_GROUP = "distillguard.policies"


class UnknownPolicyError(LookupError):
    pass


@cache
def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_policies() -> list[str]:
    return sorted(_entry_points())


def resolve_policy(name: str) -> type[Policy]:  # type: ignore[type-arg]
    """The policy class registered as ``name`` (or the ``module:Class`` it spells)."""
    target = name if ":" in name else _entry_points().get(name)
    if target is None:
        raise UnknownPolicyError(
            f"unknown policy '{name}'; registered: {', '.join(available_policies()) or 'none'}"
        )
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownPolicyError(f"policy '{name}' ({target}) cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise UnknownPolicyError(f"policy '{name}' ({target}) is not a gateway.plugins.Policy subclass")
    return cls
