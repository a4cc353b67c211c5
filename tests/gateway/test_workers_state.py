"""Several workers on the memory backend are refused when a policy needs state shared by all processes."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gateway.config.loader import check_workers, load_config_text
from gateway.errors import ConfigError
from gateway.plugins.base import Policy, PolicyConfig
from tests.support import base_config


class SharedStatePolicy(Policy[PolicyConfig]):
    shared_state_required = True


class LocalStatePolicy(Policy[PolicyConfig]):
    pass


def _loaded(policy: str, **overrides: Any) -> Any:
    config = base_config("http://127.0.0.1:9", **overrides)
    config["tiers"]["pro"]["policies"] = [{"name": f"{__name__}:{policy}"}]
    return load_config_text(yaml.safe_dump(config))


def test_several_workers_on_memory_refused_for_shared_state_policy() -> None:
    loaded = _loaded("SharedStatePolicy")
    check_workers(loaded, 1)
    with pytest.raises(ConfigError) as caught:
        check_workers(loaded, 4)
    assert caught.value.path == "state.backend"
    assert "4 workers" in str(caught.value) and "redis" in str(caught.value)


def test_several_workers_allowed_with_redis_or_local_state() -> None:
    check_workers(_loaded("LocalStatePolicy"), 4)
    redis = _loaded("SharedStatePolicy", state={"backend": "redis", "url": "redis://127.0.0.1:9/0"})
    check_workers(redis, 4)
