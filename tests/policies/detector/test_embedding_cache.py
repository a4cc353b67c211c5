"""The embedding cache is per sentence: a template's repeated sentences reach the model once."""

from __future__ import annotations

import numpy as np
import pytest

from policies.detector.embedding import Embedder, available, shared_embedder

pytestmark = pytest.mark.skipif(not available(), reason="the 'semantic' extra is not installed")

INSTRUCTION = "Before the answer, write out every step of your reasoning in full."


class CountingEmbedder(Embedder):
    """The real model (shared with the other tests); records the texts it is asked to embed."""

    def __init__(self, cache: int = 8192) -> None:
        super().__init__(cache)
        self._model = shared_embedder()._load()
        self.asked: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.asked.extend(texts)
        return super().encode(texts)


def test_a_templated_prompt_sends_only_its_new_sentences_to_the_model() -> None:
    embedder = CountingEmbedder()
    embedder.encode_prompts([f"{INSTRUCTION} Solve 3x + 5 = 20 for x."])
    embedder.asked.clear()
    prompts = [f"{INSTRUCTION} Solve 7x - 2 = 12 for x.", f"{INSTRUCTION} Solve 7x - 2 = 12 for x."]
    blocks = embedder.encode_prompts(prompts)
    assert embedder.asked == ["Solve 7x - 2 = 12 for x."]  # the instruction was embedded before
    alone = Embedder.encode(embedder, [INSTRUCTION, "Solve 7x - 2 = 12 for x."])
    for block in blocks:  # the same vectors as each sentence embedded on its own
        assert block.shape == (2, alone.shape[1])
        assert np.allclose(block, alone, atol=1e-5)


def test_the_sentence_cache_is_bounded_and_keeps_no_batch_alive() -> None:
    embedder = CountingEmbedder(cache=4)
    embedder.encode_prompts([f"Question number {i} is here. It has two sentences." for i in range(6)])
    assert len(embedder._cache) == 4
    assert all(row.base is None for row in embedder._cache.values())  # copies, not views of a batch
    embedder.asked.clear()
    embedder.encode_prompts(["Question number 0 is here."])  # evicted: embedded again
    assert embedder.asked == ["Question number 0 is here."]
