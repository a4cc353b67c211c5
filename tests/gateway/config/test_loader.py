"""Loading the policy YAML: precise refusals with the file and the key path, nothing half-applied."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.loader import load_config, load_config_text
from gateway.errors import ConfigError
from tests.support import ROOT, base_config

FAIL = "tests.sample_policies:FailingPolicy"
UPPER = "tests.sample_policies:UppercasePolicy"


def config(**overrides: Any) -> dict[str, Any]:
    cfg = base_config("http://127.0.0.1:9")
    cfg["tiers"]["free"]["policies"] = [{"name": UPPER, "config": {"marker": "m"}}]
    cfg.update(overrides)
    return cfg


def load(cfg: dict[str, Any], tmp_path: Path) -> Any:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


def refused(cfg: dict[str, Any], tmp_path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(cfg, tmp_path)
    assert str(tmp_path / "policy.yaml") in str(info.value)
    return info.value


def test_valid_config_resolves_every_pipeline(tmp_path: Path) -> None:
    loaded = load(config(), tmp_path)
    assert ("free", None, "critical") in loaded.pipelines
    assert loaded.pipelines[("free", None, "none")].policies[0].config.marker == "m"  # type: ignore[attr-defined]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    error = refused(config(listn={"port": 1}), tmp_path)
    assert error.path == "listn"
    assert "Extra inputs are not permitted" in error.reason


def test_wrong_type_names_the_path(tmp_path: Path) -> None:
    cfg = config()
    cfg["upstreams"][0]["timeouts"]["idle"] = "soon"
    error = refused(cfg, tmp_path)
    assert error.path == "upstreams[0].timeouts.idle"


def test_unknown_policy(tmp_path: Path) -> None:
    cfg = config()
    cfg["tiers"]["pro"]["policies"] = [{"name": "no-such-policy"}]
    error = refused(cfg, tmp_path)
    assert error.path == "tiers.pro.policies[0].name"
    assert "unknown policy 'no-such-policy'" in error.reason


def test_policy_config_is_validated_with_its_schema(tmp_path: Path) -> None:
    cfg = config()
    cfg["tiers"]["free"]["policies"] = [{"name": FAIL, "config": {"phase": "sometimes"}}]
    error = refused(cfg, tmp_path)
    assert error.path == "tiers.free.policies[0].config.phase"
    cfg["tiers"]["free"]["policies"] = [{"name": FAIL, "config": {"after_events": -1}}]
    assert refused(cfg, tmp_path).path == "tiers.free.policies[0].config.after_events"
    cfg["tiers"]["free"]["policies"] = [{"name": FAIL, "config": {"typo": 1}}]
    assert refused(cfg, tmp_path).path == "tiers.free.policies[0].config.typo"


def test_duplicate_policy_in_tier(tmp_path: Path) -> None:
    cfg = config()
    cfg["tiers"]["free"]["policies"] = [{"name": UPPER}, {"name": UPPER}]
    assert "appears twice" in refused(cfg, tmp_path).reason


def test_references(tmp_path: Path) -> None:
    assert refused(config(default_tier="gold"), tmp_path).path == "default_tier"
    assert refused(config(accounts={"acme": {"tier": "gold"}}), tmp_path).path == "accounts.acme.tier"
    error = refused(
        config(accounts={"acme": {"tier": "pro", "overrides": {UPPER: {"marker": "x"}}}}), tmp_path
    )
    assert error.path == f"accounts.acme.overrides.{UPPER}"
    assert refused(config(risk_levels={"severe": {}}), tmp_path).path == "risk_levels.severe"


def test_override_validated_after_merge(tmp_path: Path) -> None:
    cfg = config(accounts={"acme": {"overrides": {UPPER: {"marker": 5}}}})
    error = refused(cfg, tmp_path)
    assert error.path.startswith(f"accounts.acme.overrides.{UPPER}")
    cfg = config(risk_levels={"high": {"overrides": {UPPER: {"nope": 1}}}})
    assert refused(cfg, tmp_path).path.startswith(f"risk_levels.high.overrides.{UPPER}")


def test_overrides_merge_in_order(tmp_path: Path) -> None:
    cfg = config(
        accounts={"acme": {"overrides": {UPPER: {"marker": "account"}}}},
        risk_levels={"high": {"overrides": {UPPER: {"marker": "risk"}}}},
    )
    loaded = load(cfg, tmp_path)
    assert loaded.pipelines[("free", "acme", "none")].policies[0].config.marker == "account"  # type: ignore[attr-defined]
    assert loaded.pipelines[("free", "acme", "high")].policies[0].config.marker == "risk"  # type: ignore[attr-defined]
    assert loaded.pipelines[("free", None, "high")].policies[0].config.marker == "risk"  # type: ignore[attr-defined]


def test_key_must_be_a_hash(tmp_path: Path) -> None:
    cfg = config()
    cfg["auth"]["keys"][0]["sha256"] = "dg-plaintext-key"
    error = refused(cfg, tmp_path)
    assert error.path == "auth.keys[0].sha256"
    assert "SHA-256" in error.reason


def test_invalid_yaml_gives_line_and_column() -> None:
    with pytest.raises(ConfigError, match=r"invalid YAML \(line 2, column 9\)"):
        load_config_text("tiers:\n  free: : bad\n")


def test_duplicate_yaml_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="duplicate key 'tiers'"):
        load_config_text("tiers: {}\ntiers: {}\n")


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config_text("- just\n- a list\n")


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config("/nonexistent/policy.yaml")


def test_keys_file_errors_name_the_line(tmp_path: Path) -> None:
    keys = tmp_path / "keys.jsonl"
    keys.write_text('{"sha256": "' + "a" * 64 + '", "account": "x"}\n{not json}\n')
    cfg = config()
    cfg["auth"]["keys_file"] = "keys.jsonl"
    with pytest.raises(ConfigError) as info:
        load(cfg, tmp_path)
    error = info.value
    assert error.path == "line 2" and error.source == str(keys)


def test_upstream_override(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(config()))
    loaded = load_config(path, upstream_url="http://10.0.0.1:8000/")
    assert {u.url for u in loaded.gateway.upstreams} == {"http://10.0.0.1:8000"}


def test_effective_config_fills_policy_defaults(tmp_path: Path) -> None:
    cfg = copy.deepcopy(config())
    cfg["tiers"]["free"]["policies"] = [{"name": FAIL}]
    effective = load(cfg, tmp_path).effective()
    assert effective["tiers"]["free"]["policies"][0]["config"] == {"phase": "stream", "after_events": 0}


def test_check_command(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(config()))
    ok = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "config OK" in ok.stderr and "tiers:" in ok.stdout
    bad = config()
    bad["tiers"]["free"]["policies"][0]["config"] = {"marker": ["not", "a", "string"]}
    path.write_text(yaml.safe_dump(bad))
    failed = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 2
    assert f"{path}: tiers.free.policies[0].config.marker: Input should be a valid string" in failed.stderr
    assert "Traceback" not in failed.stderr


@pytest.mark.parametrize("preset", ["default.yaml", "strict.yaml"])
def test_shipped_presets_load(preset: str) -> None:
    loaded = load_config(ROOT / "policies" / preset)
    assert loaded.gateway.default_tier in loaded.gateway.tiers
