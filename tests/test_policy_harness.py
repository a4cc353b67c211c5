"""The policy harness itself."""

from __future__ import annotations

from gateway.state.memory import MemoryStore
from tests.policy_harness import services


def test_an_empty_store_passed_in_is_used() -> None:
    store = MemoryStore("mine")
    assert len(store) == 0  # falsy, which must not make the harness swap it for another
    assert services(store).store is store
