"""Risk levels only tighten: each strictness marker, nested models, None, and the refusals.

An operator (or an attacker who learned that escalation loosens) must never find a risk level at
which an account gets more than at the level below or at its tier.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.loader import LoadedConfig, load_config
from gateway.config.tighten import looser_fields
from gateway.errors import ConfigError
from gateway.plugins.strictness import LOWER_IS_STRICTER, TRUE_IS_STRICTER, Ranked, StrictnessError
from tests.sample_policies import StrictnessConfig
from tests.support import ROOT, base_config

STRICT = "tests.sample_policies:StrictnessPolicy"


def _config(tier: dict[str, Any], levels: dict[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    cfg = base_config("http://127.0.0.1:9", **extra)
    cfg["tiers"]["free"]["policies"] = [{"name": STRICT, "config": tier}]
    cfg["risk_levels"] = {
        level: (body if {"block", "overrides"} & set(body) else {"overrides": {STRICT: body}})
        for level, body in levels.items()
    }
    return cfg


def _load(cfg: dict[str, Any], tmp_path: Path) -> LoadedConfig:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


def _at(loaded: LoadedConfig, level: str, account: str | None = None) -> StrictnessConfig:
    config = loaded.pipelines[("free", account, level)].policies[0].config  # type: ignore[index]
    assert isinstance(config, StrictnessConfig)
    return config


def _levels(tmp_path: Path, tier: dict[str, Any], **levels: dict[str, Any]) -> dict[str, StrictnessConfig]:
    loaded = _load(_config(tier, levels), tmp_path)
    return {level: _at(loaded, level) for level in ("none", "elevated", "high", "critical")}


def test_lower_is_stricter_takes_the_minimum_and_none_is_unlimited(tmp_path: Path) -> None:
    got = _levels(tmp_path, {"cap": 10}, elevated={"cap": 50}, high={"cap": 5}, critical={"cap": 8})
    assert [got[level].cap for level in got] == [10, 10, 5, 5]
    got = _levels(tmp_path, {}, elevated={"cap": 50}, high={"cap": None})
    assert [got[level].cap for level in got] == [None, 50, 50, 50]  # null cannot lift a cap


def test_higher_is_stricter_takes_the_maximum_and_none_is_off(tmp_path: Path) -> None:
    got = _levels(
        tmp_path, {"floor": 0.5}, elevated={"floor": 0.2}, high={"floor": 0.9}, critical={"floor": None}
    )
    assert [got[level].floor for level in got] == [0.5, 0.5, 0.9, 0.9]
    assert _levels(tmp_path, {}, elevated={"floor": 0.1})["elevated"].floor == 0.1


def test_ranked_modes_never_step_back(tmp_path: Path) -> None:
    got = _levels(
        tmp_path,
        {"mode": "guarded"},
        elevated={"mode": "open"},
        high={"mode": "closed"},
        critical={"mode": "guarded"},
    )
    assert [got[level].mode for level in got] == ["guarded", "guarded", "closed", "closed"]


def test_booleans_by_their_declared_side(tmp_path: Path) -> None:
    got = _levels(tmp_path, {"strict": True, "verbose": False}, elevated={"strict": False, "verbose": True})
    assert (got["elevated"].strict, got["elevated"].verbose) == (True, False)
    got = _levels(tmp_path, {}, elevated={"strict": True, "verbose": False})
    assert (got["elevated"].strict, got["elevated"].verbose) == (True, False)


def test_superset_is_the_union_in_order(tmp_path: Path) -> None:
    got = _levels(
        tmp_path, {"tags": ["a"]}, elevated={"tags": ["b"]}, high={"tags": ["a"]}, critical={"tags": []}
    )
    assert [got[level].tags for level in got] == [["a"], ["a", "b"], ["a", "b"], ["a", "b"]]


def test_keyed_entries_tighten_one_by_one_and_new_ones_come_last(tmp_path: Path) -> None:
    got = _levels(
        tmp_path,
        {"limits": {"x": {"cap": 10}}},
        elevated={"limits": {"x": {"cap": 50}, "y": {"cap": 3}}},
        high={"limits": {"x": {"cap": 2}, "y": {"cap": None}}},
    )
    assert {k: v.cap for k, v in got["elevated"].limits.items()} == {"x": 10, "y": 3}
    assert list(got["elevated"].limits) == ["x", "y"]  # first match: the tier's glob still comes first
    assert {k: v.cap for k, v in got["high"].limits.items()} == {"x": 2, "y": 3}


def test_nested_models_recurse_and_neutral_leaves_carry_up(tmp_path: Path) -> None:
    got = _levels(
        tmp_path,
        {"nested": {"cap": 10}},
        elevated={"nested": {"cap": 20, "label": "elevated"}},
        high={"nested": {"cap": 4}},
    )
    assert (got["elevated"].nested.cap, got["elevated"].nested.label) == (10, "elevated")
    assert (got["high"].nested.cap, got["high"].nested.label) == (4, "elevated")


def test_an_optional_nested_model_is_loosest_when_none(tmp_path: Path) -> None:
    got = _levels(tmp_path, {}, elevated={"optional": {"cap": 7}}, high={"optional": None})
    assert got["none"].optional is None
    assert got["elevated"].optional is not None and got["elevated"].optional.cap == 7
    assert got["high"].optional == got["elevated"].optional  # null cannot turn it off again
    got = _levels(tmp_path, {"optional": {"cap": 3}}, elevated={"optional": {"cap": 9}})
    assert got["elevated"].optional is not None and got["elevated"].optional.cap == 3


def test_neutral_fields_take_the_override_and_keep_it_above(tmp_path: Path) -> None:
    got = _levels(
        tmp_path,
        {"note": "tier", "settings": {"cap": 5}},
        elevated={"note": "elevated", "settings": {"label": "e"}},
        high={"settings": {"cap": 100}},
    )
    assert [got[level].note for level in got] == ["tier", "elevated", "elevated", "elevated"]
    assert (got["high"].settings.cap, got["high"].settings.label) == (100, "e")


def test_an_override_of_an_undeclared_key_is_refused_with_tier_level_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(_config({}, {"high": {"cap": 1, "undeclared": "other"}}), tmp_path)
    error = caught.value
    assert error.path == f"risk_levels.high.overrides.{STRICT}.undeclared"
    assert "cannot show this override tightens" in error.reason and "tier 'free'" in error.reason
    assert str(tmp_path / "policy.yaml") in str(error)
    # An account override may change it: accounts are allowed to differ from their tier.
    loaded = _load(
        _config({}, {}, accounts={"acme": {"tier": "free", "overrides": {STRICT: {"undeclared": "x"}}}}),
        tmp_path,
    )
    assert _at(loaded, "high", "acme").undeclared == "x"


def test_a_value_outside_the_declared_order_is_refused_with_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(_config({}, {"elevated": {"unranked": "c"}}), tmp_path)
    assert caught.value.path == f"risk_levels.elevated.overrides.{STRICT}.unranked"
    assert "not in the declared order" in caught.value.reason


def test_accounts_may_loosen_their_tier_but_levels_over_them_only_tighten(tmp_path: Path) -> None:
    cfg = _config(
        {"cap": 10, "mode": "closed"},
        {"elevated": {"cap": 50, "mode": "open"}, "high": {"cap": 5}},
        accounts={"acme": {"tier": "free", "overrides": {STRICT: {"cap": 1000, "mode": "open"}}}},
    )
    loaded = _load(cfg, tmp_path)
    acme = {level: _at(loaded, level, "acme") for level in ("none", "elevated", "high", "critical")}
    assert [(c.cap, c.mode) for c in acme.values()] == [
        (1000, "open"),
        (50, "open"),
        (5, "open"),
        (5, "open"),
    ]
    assert [_at(loaded, level).cap for level in ("none", "elevated", "high")] == [10, 10, 5]


def test_a_block_holds_at_every_higher_level(tmp_path: Path) -> None:
    cfg = _config(
        {},
        {
            "high": {"block": True, "block_message": "held for review"},
            "critical": {"overrides": {STRICT: {"cap": 1}}},
        },
    )
    loaded = _load(cfg, tmp_path)
    blocked = {
        level: loaded.pipelines[("free", None, level)].blocked
        for level in ("none", "elevated", "high", "critical")
    }
    assert blocked == {"none": False, "elevated": False, "high": True, "critical": True}
    assert loaded.pipelines[("free", None, "critical")].block_message == "held for review"


def test_markers_order_values_and_none() -> None:
    assert LOWER_IS_STRICTER.stricter(None, 3) == 3 and LOWER_IS_STRICTER.at_least_as_strict(3, None)
    assert not LOWER_IS_STRICTER.at_least_as_strict(None, 3)
    assert TRUE_IS_STRICTER.stricter(False, True) is True
    with pytest.raises(StrictnessError):
        TRUE_IS_STRICTER.rank(1)  # an int is not a bool, whatever 1 == True says
    with pytest.raises(ValueError):
        Ranked("a", "a")


def test_looser_fields_names_each_looser_key() -> None:
    tier = StrictnessConfig(cap=10, mode="guarded", tags=["a", "b"], limits={"x": {"cap": 1}})  # type: ignore[arg-type]
    level = StrictnessConfig(cap=20, mode="open", tags=["a"], undeclared="changed")
    faults = looser_fields(level, tier)
    assert [fault.split(":")[0] for fault in faults] == ["cap", "mode", "tags", "limits.x", "undeclared"]
    assert looser_fields(tier, tier) == []


def test_check_shows_the_effective_value_per_tier_and_level(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(_config({"cap": 10}, {"elevated": {"cap": 50, "mode": "closed"}})))

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "gateway.cli", "check", "--config", str(path), *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)

    full = check()
    assert full.returncode == 0, full.stderr
    levels = yaml.safe_load(full.stdout)["effective_levels"]["tiers"]["free"]
    assert levels["elevated"]["policies"][STRICT] == {"mode": "closed"}  # cap stays 10: no change shown
    one = check("--tier", "free", "--level", "elevated")
    assert one.returncode == 0, one.stderr
    pipeline = yaml.safe_load(one.stdout)
    assert pipeline["level"] == "elevated" and pipeline["policies"][0]["config"]["cap"] == 10
    bad = check("--tier", "gold")
    assert bad.returncode == 2 and "no tier 'gold'" in bad.stderr and "Traceback" not in bad.stderr
