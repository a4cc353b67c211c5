"""Schema of the logprobs policy: defaults, bounds, unknown keys, and the noise key at startup."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.config.loader import load_config
from gateway.errors import ConfigError
from policies.logprobs import LogprobsConfig
from tests.policy_harness import PolicyHarness
from tests.support import base_config


def test_defaults_are_safe() -> None:
    config = LogprobsConfig()
    assert config.top_k == 5 and config.on_excess == "reject"
    assert config.logit_bias.mode == "exclusive"
    assert not config.prompt_logprobs and not config.echo_with_logprobs and not config.logprob_token_ids
    assert config.noise is None and config.grid == 0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("top_k", 21, "less than or equal to 20"),
        ("top_k", -1, "greater than or equal to 0"),
        ("grid", -0.5, "greater than or equal to 0"),
        ("on_excess", "drop", "'clamp' or 'reject'"),
        ("max_n", 0, "greater than or equal to 1"),
        ("logit_bias", {"mode": "sometimes"}, "'allow', 'exclusive' or 'refuse'"),
        ("noise", {"scale": 0}, "greater than 0"),
        ("topk", 5, "Extra inputs are not permitted"),
    ],
)
def test_bad_config_names_the_yaml_path(tmp_path: Path, key: str, value: object, message: str) -> None:
    config = base_config("http://127.0.0.1:9")
    config["tiers"]["free"]["policies"] = [{"name": "logprobs", "config": {key: value}}]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "tiers.free.policies[0]" in str(caught.value) and key in str(caught.value)
    assert message in str(caught.value)


def test_noise_without_key_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTILLGUARD_LOGPROB_NOISE_KEY", raising=False)
    with pytest.raises(ConfigError, match="DISTILLGUARD_LOGPROB_NOISE_KEY"):
        PolicyHarness([("logprobs", {"noise": {"scale": 0.5}})])
    monkeypatch.setenv("DISTILLGUARD_LOGPROB_NOISE_KEY", "short")
    with pytest.raises(ConfigError, match="at least 16"):
        PolicyHarness([("logprobs", {"noise": {"scale": 0.5}})])
    monkeypatch.setenv("DISTILLGUARD_LOGPROB_NOISE_KEY", "a-long-enough-test-key")
    PolicyHarness([("logprobs", {"noise": {"scale": 0.5}})])
