"""The engine's surface for the tools shipped beside the policies: commands, simulator, admin routes.

A policy's phases need none of this. A command reads a policy YAML and a keys file as the gateway
would (:func:`load_config`, :func:`load_keys_file`), the simulator merges a preset into its YAML and
writes a keys file (:func:`deep_merge`, :func:`key_file_line`), and an admin route factory (entry
point ``distillguard.admin``) is handed the running gateway as an :class:`AdminContext`.

The configuration package imports the plugin registry, so the loaders are imported when called:
importing them here would make ``gateway.plugins`` and ``gateway.config`` need each other to load.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    from gateway.config.loader import LoadedConfig
    from gateway.config.schema import ApiKeyEntry
    from gateway.plugins.services import SharedObjects
    from gateway.risk import RiskBoard
    from gateway.state.base import StateStore


class AdminContext(Protocol):
    """What an admin route factory is handed: the running gateway, as far as admin routes may see it.

    The engine serves the routes under ``/admin`` behind the admin token; a factory never checks it.
    """

    @property
    def shared(self) -> SharedObjects:
        """The objects policies share (a detector's core, for instance), looked up by key and type."""

    @property
    def risk(self) -> RiskBoard:
        """The risk levels in force, per account."""

    @property
    def config(self) -> LoadedConfig:
        """The configuration in force. A reload replaces it: read it per request, never keep it."""

    @property
    def store(self) -> StateStore:
        """The state store in force (it too may change on reload)."""


def load_config(path: str | Path) -> LoadedConfig:
    """The policy YAML at ``path``, validated and resolved as the gateway would; ConfigError names faults."""
    from gateway.config.loader import load_config as load

    return load(path)


def load_keys_file(path: Path) -> dict[str, ApiKeyEntry]:
    """The hashed keys of a JSONL keys file, by digest; a missing file is an empty set."""
    from gateway.config.loader import load_keys_file as load

    return load(path)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base`` as the gateway merges YAML: mappings recursively, anything else replaces."""
    from gateway.config.loader import deep_merge as merge

    return merge(base, override)


def key_file_line(key: str, account: str, tier: str, key_id: str) -> bytes:
    """One line of a keys file for the plaintext ``key``: stored hashed, validated as the gateway reads it."""
    from gateway.auth.keys import digest
    from gateway.config.schema import ApiKeyEntry

    entry = ApiKeyEntry(sha256=digest(key), account=account, tier=tier, key_id=key_id)
    return orjson.dumps(entry.model_dump())
