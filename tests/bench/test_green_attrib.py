"""bench.green_attrib's prompt selection: the low-entropy kinds are the harvest's code/factual prompts."""

from __future__ import annotations

import pytest

from bench.green_attrib import select_prompts
from bench.green_harvest import PROMPTS, harvest_prompts


def test_prose_is_the_harvest_prompts_from_the_offset() -> None:
    assert select_prompts("prose", 3, 5) == harvest_prompts(8)[3:]


@pytest.mark.parametrize("kind", ["code", "factual"])
def test_low_entropy_kinds_cycle_their_own_prompts_only(kind: str) -> None:
    own = [p for k, p in PROMPTS if k == kind]
    chosen = select_prompts(kind, 0, 2 * len(own) + 1)
    assert chosen == own + own + own[:1]
    assert select_prompts(kind, 1, 2) == own[1:3]
