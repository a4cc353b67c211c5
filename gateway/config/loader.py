"""Loading a policy YAML into a validated, fully resolved configuration.

Loading is all or nothing: the file is parsed, every key validated, every
policy resolved and every pipeline's merged config validated before anything
is returned, so a reload either swaps in a complete new config or none.
Errors name the file and the dotted path of the key at fault::

    policy.yaml: tiers.free.policies[0].config.requests_per_minute: Input should be greater than 0
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from gateway.config.schema import ApiKeyEntry, GatewayConfig, PolicyEntry
from gateway.config.tighten import TightenError, tighten
from gateway.config.view import level_changes
from gateway.errors import ConfigError
from gateway.plugins.base import RISK_LEVELS, Policy, PolicyConfig, PolicyMode, RiskLevel
from gateway.plugins.registry import UnknownPolicyError, resolve_policy


@dataclass(frozen=True, slots=True)
class ResolvedPolicy:
    name: str
    cls: type[Policy]  # type: ignore[type-arg]
    config: PolicyConfig
    mode: PolicyMode


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """The ordered policies for one (tier, account override, risk level)."""

    tier: str
    policies: tuple[ResolvedPolicy, ...]
    blocked: bool = False
    block_message: str = ""


PipelineKey = tuple[str, str | None, RiskLevel]


@dataclass(slots=True)
class LoadedConfig:
    source: Path | None
    gateway: GatewayConfig
    api_keys: dict[str, ApiKeyEntry]
    pipelines: dict[PipelineKey, PipelineSpec]
    fingerprint: str
    watched_files: list[Path] = field(default_factory=list)

    def effective(self) -> dict[str, Any]:
        """The config with every default filled in, policy configs included (for `check`).

        ``effective_levels`` adds, per tier and per account with overrides, what each risk level
        changes over the level below once merged (levels only tighten, so an override looser
        than the tier's value shows no change there).
        """
        data = self.gateway.model_dump(mode="json")
        for tier, tier_data in data["tiers"].items():
            spec = self.pipelines[(tier, None, "none")]
            for entry, resolved in zip(tier_data["policies"], spec.policies, strict=True):
                entry["config"] = resolved.config.model_dump(mode="json")
        data["auth"]["keys"] = f"{len(self.api_keys)} key(s) loaded"
        data["effective_levels"] = level_changes(self)
        return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate mapping keys instead of keeping the last silently."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def format_loc(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _raise_validation(exc: ValidationError, prefix: str, source: str | None) -> None:
    """Re-raise a pydantic error as a ConfigError with the dotted path of the first fault."""
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = ".".join(p for p in (prefix, format_loc(loc)) if p)
        issues.append((path, err["msg"]))
    path, reason = issues[0]
    if len(issues) > 1:
        reason += "; also " + "; ".join(f"{p}: {m}" for p, m in issues[1:])
    raise ConfigError(reason, path=path, source=source)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` over ``base``: mappings merge recursively, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(
    path: str | Path, *, keys_file: str | Path | None = None, upstream_url: str | None = None
) -> LoadedConfig:
    """Read, validate and resolve the policy YAML at ``path``; raise ConfigError naming the fault."""
    source = Path(path)
    try:
        raw_text = source.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror}", source=str(source)) from None
    return load_config_text(raw_text, source=source, keys_file=keys_file, upstream_url=upstream_url)


def load_config_text(
    raw_text: bytes | str,
    *,
    source: Path | None = None,
    keys_file: str | Path | None = None,
    upstream_url: str | None = None,
) -> LoadedConfig:
    """Like :func:`load_config` for YAML text; ``upstream_url`` replaces every upstream url."""
    where = str(source) if source else "<config>"
    try:
        data = yaml.load(raw_text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML{at}: {problem}", source=where) from None
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of settings", source=where)
    if upstream_url and isinstance(data.get("upstreams"), list):
        for upstream in data["upstreams"]:
            if isinstance(upstream, dict):
                upstream["url"] = upstream_url
    try:
        gateway = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        _raise_validation(exc, "", where)
        raise  # unreachable
    base_dir = source.parent if source else Path.cwd()
    watched = [source] if source else []
    api_keys = {entry.sha256: entry for entry in gateway.auth.keys}
    keys_path = (
        Path(keys_file)
        if keys_file
        else (base_dir / gateway.auth.keys_file if gateway.auth.keys_file else None)
    )
    if keys_path is not None:
        api_keys.update(load_keys_file(keys_path))
        watched.append(keys_path)
    _check_references(gateway, api_keys, where)
    pipelines = _build_pipelines(gateway, where)
    digest = hashlib.sha256(raw_text if isinstance(raw_text, bytes) else raw_text.encode())
    if keys_path is not None:
        digest.update(orjson.dumps(sorted(api_keys)))
    return LoadedConfig(source, gateway, api_keys, pipelines, digest.hexdigest(), watched)


def load_keys_file(path: Path) -> dict[str, ApiKeyEntry]:
    """A JSONL file of hashed keys; a missing file is an empty set (keys are added later)."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the keys file: {exc.strerror}", source=str(path)) from None
    keys: dict[str, ApiKeyEntry] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entry = ApiKeyEntry.model_validate(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON: {exc}", path=f"line {number}", source=str(path)) from None
        except ValidationError as exc:
            _raise_validation(exc, f"line {number}", str(path))
            raise  # unreachable
        keys[entry.sha256] = entry
    return keys


def _check_references(gateway: GatewayConfig, api_keys: dict[str, ApiKeyEntry], where: str) -> None:
    tiers = sorted(gateway.tiers)
    if gateway.default_tier not in gateway.tiers:
        raise ConfigError(
            f"'{gateway.default_tier}' is not a tier; tiers: {tiers}", path="default_tier", source=where
        )
    for account, acc in gateway.accounts.items():
        if acc.tier is not None and acc.tier not in gateway.tiers:
            raise ConfigError(
                f"'{acc.tier}' is not a tier; tiers: {tiers}", path=f"accounts.{account}.tier", source=where
            )
    for entry in api_keys.values():
        if entry.tier is not None and entry.tier not in gateway.tiers:
            raise ConfigError(
                f"key of account '{entry.account}' names tier '{entry.tier}', which is not a tier; "
                f"tiers: {tiers}",
                path="auth.keys",
                source=where,
            )
    for level in gateway.risk_levels:
        if level not in RISK_LEVELS:
            raise ConfigError(
                f"unknown risk level; expected one of {list(RISK_LEVELS)}",
                path=f"risk_levels.{level}",
                source=where,
            )
    if gateway.operator.port and gateway.operator.port == gateway.listen.port:
        # The operator surfaces are told apart from the API by the port a connection arrived on.
        raise ConfigError(
            f"the operator listener needs its own port, not the public {gateway.listen.port}",
            path="operator.port",
            source=where,
        )
    names = [u.name for u in gateway.upstreams]
    if len(set(names)) != len(names):
        raise ConfigError("upstream names must be unique", path="upstreams", source=where)


def _resolve_entry(entry: PolicyEntry, path: str, where: str) -> tuple[type[Policy], PolicyConfig]:  # type: ignore[type-arg]
    try:
        cls = resolve_policy(entry.name)
    except UnknownPolicyError as exc:
        raise ConfigError(str(exc), path=f"{path}.name", source=where) from None
    return cls, _validate(cls, entry.config, f"{path}.config", where)


def _validate(cls: type[Policy], data: dict[str, Any], path: str, where: str) -> PolicyConfig:  # type: ignore[type-arg]
    try:
        return cls.config_model.model_validate(data)
    except ValidationError as exc:
        _raise_validation(exc, path, where)
        raise  # unreachable


def _build_pipelines(gateway: GatewayConfig, where: str) -> dict[PipelineKey, PipelineSpec]:
    base: dict[str, list[tuple[PolicyEntry, type[Policy]]]] = {}  # type: ignore[type-arg]
    pipelines: dict[PipelineKey, PipelineSpec] = {}
    all_names: set[str] = set()
    for tier, tier_cfg in gateway.tiers.items():
        resolved = []
        for index, entry in enumerate(tier_cfg.policies):
            cls, _ = _resolve_entry(entry, f"tiers.{tier}.policies[{index}]", where)
            resolved.append((entry, cls))
            all_names.add(entry.name)
        base[tier] = resolved
    for level, level_cfg in gateway.risk_levels.items():
        for name in level_cfg.overrides:
            if name not in all_names:
                raise ConfigError(
                    f"no tier uses policy '{name}'",
                    path=f"risk_levels.{level}.overrides.{name}",
                    source=where,
                )

    def specs(tier: str, account: str | None) -> dict[RiskLevel, PipelineSpec]:
        account_overrides = gateway.accounts[account].overrides if account else {}
        per_level: dict[RiskLevel, list[ResolvedPolicy]] = {level: [] for level in RISK_LEVELS}
        for index, (entry, cls) in enumerate(base[tier]):
            data = entry.config
            path = f"tiers.{tier}.policies[{index}].config"
            if entry.name in account_overrides:
                data = deep_merge(data, account_overrides[entry.name])
                path = f"accounts.{account}.overrides.{entry.name}"
            base_config = _validate(cls, data, path, where)
            config = base_config
            for level in RISK_LEVELS:  # in order: each level tightens the one below
                level_cfg = gateway.risk_levels.get(level)
                if level_cfg and entry.name in level_cfg.overrides:
                    config = _tighten_level(
                        cls,
                        config,
                        base_config,
                        data,
                        level_cfg.overrides[entry.name],
                        f"risk_levels.{level}.overrides.{entry.name}",
                        tier,
                        account,
                        where,
                    )
                per_level[level].append(ResolvedPolicy(entry.name, cls, config, entry.mode))
        out: dict[RiskLevel, PipelineSpec] = {}
        blocked, message = False, ""
        for level in RISK_LEVELS:
            level_cfg = gateway.risk_levels.get(level)
            if level_cfg and level_cfg.block:  # a block at one level holds at every level above it
                blocked, message = True, level_cfg.block_message
            elif not blocked:
                message = level_cfg.block_message if level_cfg else ""
            out[level] = PipelineSpec(tier, tuple(per_level[level]), blocked=blocked, block_message=message)
        return out

    for tier in gateway.tiers:
        for level, pipeline in specs(tier, None).items():
            pipelines[(tier, None, level)] = pipeline
    for account, acc in gateway.accounts.items():
        tier = acc.tier or gateway.default_tier
        names = {entry.name for entry, _ in base[tier]}
        for name in acc.overrides:
            if name not in names:
                raise ConfigError(
                    f"tier '{tier}' has no policy '{name}' to override",
                    path=f"accounts.{account}.overrides.{name}",
                    source=where,
                )
        if acc.overrides:
            for level, pipeline in specs(tier, account).items():
                pipelines[(tier, account, level)] = pipeline
    return pipelines


def _tighten_level(
    cls: type[Policy],  # type: ignore[type-arg]
    lower: PolicyConfig,
    base: PolicyConfig,
    base_data: dict[str, Any],
    override: dict[str, Any],
    path: str,
    tier: str,
    account: str | None,
    where: str,
) -> PolicyConfig:
    """``lower`` tightened by a risk level's ``override``: never looser, field by field (see tighten)."""
    candidate = _validate(cls, deep_merge(base_data, override), path, where)
    whose = f"tier '{tier}'" + (f", account '{account}'" if account else "")
    try:
        merged = tighten(cls.config_model, lower, base, candidate, override)
    except TightenError as exc:
        raise ConfigError(f"{exc.reason} ({whose})", path=f"{path}.{exc.key}", source=where) from None
    except ValidationError as exc:
        _raise_validation(exc, path, where)
        raise  # unreachable
    assert isinstance(merged, PolicyConfig)
    return merged


def check_workers(loaded: LoadedConfig, workers: int) -> None:
    """Refuse several workers on the memory backend when a policy or the admin API needs shared state.

    Each worker would keep its own counters, so every limit would silently
    become ``limit x workers``: run one worker, or use ``state.backend: redis``.
    """
    if workers <= 1 or loaded.gateway.state.backend != "memory":
        return
    if loaded.gateway.admin.token_env:
        raise ConfigError(
            f"admin pins are kept in the state store, and with {workers} workers on the memory backend "
            "each worker would keep its own (a pin would hold on some requests only); "
            "set state.backend: redis or run one worker",
            path="state.backend",
            source=str(loaded.source) if loaded.source else None,
        )
    names = sorted(
        {p.name for spec in loaded.pipelines.values() for p in spec.policies if p.cls.shared_state_required}
    )
    if names:
        raise ConfigError(
            f"policies {names} keep per-account state, and with {workers} workers on the memory backend "
            "each worker would count separately (every limit multiplied by the worker count); "
            "set state.backend: redis or run one worker",
            path="state.backend",
            source=str(loaded.source) if loaded.source else None,
        )
