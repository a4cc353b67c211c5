"""Semantic signals: what a prompt asks for, by meaning, in any wording or language the model knows.

Run in the background analysis only, on a sample of each account's requests (its first
``sample_first``, then one in ``sample_every``): :meth:`SemanticSignals.offer` queues the prompt
during :meth:`~policies.detector.analysis.Analyser.process`; the core sends the queued prompts in
batches to the worker's embedding process (:mod:`policies.detector.embed_process`, waited on from a
worker thread, so the event loop keeps serving: :meth:`SemanticSignals.compute`) and applies the
results on the event loop (:meth:`SemanticSignals.apply`). Three signals come of it:

- **elicitation** per request: how close the prompt's closest sentence is to a description of an
  extraction demand (:mod:`policies.detector.anchors`) and not closer to its honest look-alike; per
  account a decayed mean over its embedded requests (``semantic_elicitation``, a content signal);
- **distribution shift** per account (:mod:`policies.detector.mmd`): MMD of its queries against a
  benign reference window; it scales the elicitation (from 0.6 of it for queries that could be
  benign traffic to all of it for queries unlike any), so a stray sentence in ordinary traffic
  weighs less than a stream of them;
- **semantic templates** across accounts: the demand's sentence, hashed by the signs of fixed random
  projections (SimHash, :data:`BANDS` bands of :data:`BITS` bits), is a template key in the shared
  index like a MinHash key: reworded and translated instructions that MinHash keeps apart fall in
  one bucket, so the index groups the accounts behind them and the cluster term reads the group.

Memory: per account 2 KB of projected embeddings and a few numbers; the reference window 64 KB.
The model and its cache of recent sentences (8,192 entries of a 2 KB vector and a sentence of at
most 480 characters: under 27 MB) live in the embedding process. The work queue is bounded
(``max_pending``); past it prompts are skipped, not queued; a batch the embedding process failed
to serve is lost and counted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from policies.detector import anchors
from policies.detector.embed_process import EmbeddingFailed, EmbeddingProcess, shared_process
from policies.detector.embedding import DIM, Embedder
from policies.detector.mmd import ACCOUNT_SAMPLES, PROJECTED, REFERENCE_EVERY, ReferenceWindow, project

if TYPE_CHECKING:
    from policies.detector.analysis import Analyser
    from policies.detector.metrics import DetectorMetrics

log = logging.getLogger("distillguard.detector")

# Similarity to the closest extraction description: below LOW nothing, from HIGH on, all of it.
LOW, HIGH = 0.40, 0.48
# The closest ordinary look-alike may come within MARGIN below the extraction description before the
# score is cut (fully once it is as close as the description minus 0.05).
MARGIN = 0.15
KEY_FLOOR = 0.3  # a request's elicitation from which its demand sentence is a template key
BANDS, BITS = 8, 4
_WINDOW = 16  # embedded requests the per-account elicitation mean remembers
_PLANES = np.random.default_rng(9176).standard_normal((DIM, BANDS * BITS)).astype(np.float32)
_KEY_SPACE = 0xFE << 56  # beside MinHash keys and the system prompts' exact keys (0xFF)
ROUND = 64  # prompts sent to the embedding process at once (its deadline grows with them)
MAX_SWEEP_ROUNDS = 10_000  # sweep chunks one round may run before the worker takes over


@dataclass(slots=True)
class SemanticAccount:
    """What the semantic signals keep of one account (about 2.2 KB)."""

    offered: int = 0
    embedded: int = 0
    benign: int = 0  # queries it gave the reference window
    elicit_sum: float = 0.0
    elicit_weight: float = 0.0
    shift: float | None = None
    samples: np.ndarray = field(default_factory=lambda: np.zeros((ACCOUNT_SAMPLES, PROJECTED), np.float16))

    def elicitation(self) -> float:
        return self.elicit_sum / self.elicit_weight if self.elicit_weight else 0.0

    def value(self) -> float:
        """The ``semantic_elicitation`` signal: elicitation, scaled by the distribution shift."""
        gate = 1.0 if self.shift is None else 0.6 + 0.4 * self.shift
        return self.elicitation() * gate


@dataclass(slots=True)
class Pending:
    """A prompt waiting to be embedded, with what applying its result needs."""

    account: str
    text: str
    extraction: float
    settings: Any
    at: float


def elicitation(sentences: np.ndarray, extraction: np.ndarray, ordinary: np.ndarray) -> tuple[float, int]:
    """The elicitation score of a prompt from its sentence embeddings, and its closest sentence."""
    to_extraction = (sentences @ extraction.T).max(1)
    to_ordinary = (sentences @ ordinary.T).max(1)
    scores = np.clip((to_extraction - LOW) / (HIGH - LOW), 0.0, 1.0) * np.clip(
        (to_extraction - to_ordinary + 0.05) / MARGIN, 0.0, 1.0
    )
    best = int(scores.argmax()) if scores.max() > 0 else int(to_extraction.argmax())
    return float(scores[best]), best


def template_keys(vector: np.ndarray) -> list[int]:
    """The SimHash keys of one sentence embedding (one per band)."""
    bits = (vector @ _PLANES) > 0
    keys = []
    for band in range(BANDS):
        value = 0
        for bit in bits[band * BITS : (band + 1) * BITS]:
            value = (value << 1) | int(bit)
        keys.append(_KEY_SPACE | (band << 40) | value)
    return keys


class SemanticSignals:
    """Per-account semantic state, the benign reference window and the queue of prompts to embed."""

    def __init__(
        self, settings: Any, max_accounts: int, embedder: Embedder | EmbeddingProcess | None = None
    ) -> None:
        self.settings = settings
        self.active = False
        self._embedder = embedder
        self._max_accounts = max_accounts
        self.accounts: OrderedDict[str, SemanticAccount] = OrderedDict()
        self.reference = ReferenceWindow()
        self.pending: list[Pending] = []
        self.skipped = 0
        self.embedded = 0
        self.seconds = 0.0  # CPU time spent embedding (embedding process and worker thread) and applying
        self.lost = 0  # prompts of batches the embedding process failed to serve
        self._extraction: np.ndarray | None = None
        self._ordinary: np.ndarray | None = None
        self._metrics: DetectorMetrics | None = None
        self._warming: threading.Thread | None = None

    def configure(self, settings: Any, max_accounts: int, metrics: DetectorMetrics | None = None) -> None:
        """Take new shared settings: whether to run, the sampling, the bounds; and the metrics."""
        from policies.detector.embedding import available

        self._metrics = metrics
        self.settings = settings
        self._max_accounts = max_accounts
        self.active = settings.enabled == "on" or (settings.enabled == "auto" and available())
        if self.active and self._embedder is None:
            self._embedder = shared_process()  # started by warm_up, or else by its first batch

    def warm_up(self) -> None:
        """Start the embedding process and load its model now, on a thread of its own (the caller does
        not wait), unless ``warm_start`` is off, the signals are off or it was done.

        A new replica then serves its first requests with the model ready: started at the first
        sampled request instead, its first batches wait for the load (1.6 s on a quiet 2-core
        machine, several seconds on a busy one), the seconds in which a campaign's first requests
        arrive. A failure is counted like a batch's (nothing is lost: no prompt was queued) and the
        first batch tries again after the backoff.
        """
        if not self.active or not self.settings.warm_start or self._warming is not None:
            return
        if not isinstance(self._embedder, EmbeddingProcess):
            return  # an in-process embedder (tests) loads nothing worth a thread
        self._warming = threading.Thread(
            target=self._warm, name="distillguard-embedding-warm-up", daemon=True
        )
        self._warming.start()

    def _warm(self) -> None:
        try:
            _, spent = self.compute([])
            if self._metrics is not None:  # (thread-safe; the event loop's counters are not touched)
                self._metrics.semantic_seconds.inc(spent)
        except EmbeddingFailed as exc:
            self.failed([], exc)
        except Exception:
            log.exception("detector: the embedding process's warm-up failed")

    def account(self, name: str) -> SemanticAccount:
        accounts = self.accounts
        state = accounts.get(name)
        if state is None:
            state = accounts[name] = SemanticAccount()
            if len(accounts) > self._max_accounts:
                accounts.popitem(last=False)
        else:
            accounts.move_to_end(name)
        return state

    def value(self, name: str) -> tuple[float, float | None]:
        """The account's ``semantic_elicitation`` signal and its distribution shift (None: not known)."""
        state = self.accounts.get(name)
        if state is None:
            return 0.0, None
        return state.value(), state.shift

    def offer(
        self, account: str, text: str, extraction: float, settings: Any, at: float, requests: int = 0
    ) -> None:
        """Queue the prompt for embedding when the account's sampling picks it (cheap: no model here).

        ``requests``: the account's request count, this one included; with per-account sharing it
        counts every replica's requests, so N replicas behind a balancer together embed what one
        would (its first ``sample_first`` requests, then one in ``sample_every``) instead of each
        embedding the first ``sample_first`` it sees: N times the work, whose queue then delays
        the signal. 0: count the offers here.
        """
        if not self.active or not text:
            return
        state = self.account(account)
        state.offered += 1
        n = requests or state.offered
        if n > self.settings.sample_first and n % self.settings.sample_every:
            return
        if len(self.pending) >= self.settings.max_pending:
            self.skipped += 1
            if self._metrics is not None:
                self._metrics.semantic_skipped.inc()
            return
        self.pending.append(Pending(account, text, extraction, settings, at))

    def take(self, limit: int = ROUND) -> list[Pending]:
        """The oldest ``limit`` queued prompts, off the queue."""
        batch, self.pending = self.pending[:limit], self.pending[limit:]
        return batch

    def retry_in(self) -> float:
        """Seconds until the embedding process may be restarted after a failure (0: it may run now)."""
        embedder = self._embedder
        return embedder.retry_in() if isinstance(embedder, EmbeddingProcess) else 0.0

    def interrupt(self) -> None:
        """End a wait for the embedding process now (a stop): see :meth:`EmbeddingProcess.interrupt`."""
        if isinstance(self._embedder, EmbeddingProcess):
            self._embedder.interrupt()

    def compute(self, batch: list[Pending]) -> tuple[list[np.ndarray], float]:
        """The sentence embeddings of each queued prompt, and the CPU time: this thread's and, with
        an embedding process, the process's (run in a worker thread). Raises
        :class:`~policies.detector.embed_process.EmbeddingFailed` when the process fails."""
        embedder = self._embedder
        assert embedder is not None
        started = time.thread_time()
        if isinstance(embedder, EmbeddingProcess):
            remote = 0.0
            if self._extraction is None:
                extraction = embedder.request("texts", list(anchors.EXTRACTION))
                ordinary = embedder.request("texts", list(anchors.ORDINARY))
                # The ordinary ones first: another thread (the warm-up) that sees the extraction
                # descriptions set reads both.
                self._ordinary = ordinary.blocks[0]
                self._extraction = extraction.blocks[0]
                remote += extraction.cpu + ordinary.cpu
            vectors: list[np.ndarray] = []
            if batch:
                reply = embedder.request("prompts", [item.text for item in batch])
                vectors, remote = reply.blocks, remote + reply.cpu
            return vectors, time.thread_time() - started + remote
        if self._extraction is None:
            self._extraction = embedder.encode(list(anchors.EXTRACTION))
            self._ordinary = embedder.encode(list(anchors.ORDINARY))
        vectors = embedder.encode_prompts([item.text for item in batch])
        return vectors, time.thread_time() - started

    def failed(self, batch: list[Pending], exc: Exception) -> None:
        """Count a batch the embedding process could not serve (its prompts are lost)."""
        if batch:  # (the warm-up's thread reports with none: it leaves the event loop's count alone)
            self.lost += len(batch)
        if self._metrics is not None:
            self._metrics.semantic_lost.inc(len(batch))
            if isinstance(exc, EmbeddingFailed) and exc.reason != "backoff":
                self._metrics.semantic_failures.labels(exc.reason).inc()

    def record(self, batch: list[Pending], seconds: float) -> None:
        """Count a round's prompts and CPU time (here and in the metrics)."""
        self.embedded += len(batch)
        self.seconds += seconds
        if self._metrics is not None:
            self._metrics.semantic_embedded.inc(len(batch))
            self._metrics.semantic_seconds.inc(seconds)

    def apply(self, batch: list[Pending], vectors: list[np.ndarray], analyser: Analyser) -> float:
        """Score the embedded prompts, update the accounts, the reference and the template index.

        Returns the CPU time it took (:meth:`record` counts it with the embedding's).
        """
        started = time.thread_time()
        assert self._extraction is not None and self._ordinary is not None
        mono = time.monotonic()
        if self._metrics is not None:
            wall = time.time()
            observe = self._metrics.semantic_lag.observe
            for item in batch:
                observe(max(0.0, wall - item.at))
        decay = 1.0 - 1.0 / _WINDOW
        for item, sentences in zip(batch, vectors, strict=True):
            score, best = elicitation(sentences, self._extraction, self._ordinary)
            state = self.account(item.account)
            state.embedded += 1
            state.elicit_sum = state.elicit_sum * decay + score
            state.elicit_weight = state.elicit_weight * decay + 1.0
            query = sentences.mean(0)
            query /= max(float(np.linalg.norm(query)), 1e-6)
            projected = project(query)
            state.samples[(state.embedded - 1) % ACCOUNT_SAMPLES] = projected
            account = analyser.tracked(item.account)
            if account is None:
                continue
            if score <= 0.05 and item.extraction < 0.1 and account.level == "none":
                state.benign += 1
                if state.benign <= 4 or state.benign % REFERENCE_EVERY == 0:
                    self.reference.add(projected)
            filled = min(state.embedded, ACCOUNT_SAMPLES)
            state.shift = self.reference.shift(state.samples[:filled])
            extraction = max(item.extraction, score)
            if score >= KEY_FLOOR:
                for key in template_keys(sentences[best]):
                    analyser.use_template(account, key, extraction, item.at, item.settings)
            if score >= KEY_FLOOR or state.value() >= 0.1:
                analyser.evaluate(account, item.settings, item.at, mono)
        return time.thread_time() - started

    async def rounds(
        self, analyser: Analyser, sweep: Callable[[], bool], applied: Callable[[], None] | None = None
    ) -> None:
        """Have the embedding process embed the queued prompts, a batch at a time, then apply them
        (the core runs this in its own task while prompts are queued).

        A worker thread waits for the process's answer (the event loop keeps serving and the
        lexical analysis goes on). After a failure the next batch waits for the restart's backoff
        (queued prompts wait with it, within ``max_pending``); the failed batch is lost and counted.
        ``sweep`` re-evaluates a chunk of the members of newly flagged groups (the core's
        ``run_sweeps``), called until it has none left or :data:`MAX_SWEEP_ROUNDS`; ``applied``
        after each batch applied (the core's ``wake_sync``: the keys it added may wait for the store).
        """
        while self.pending:
            wait = self.retry_in()
            if wait > 0:
                await asyncio.sleep(wait)
            batch = self.take()
            try:
                vectors, spent = await asyncio.to_thread(self.compute, batch)
            except asyncio.CancelledError:  # a stop gave up on it (flush): the batch is lost
                self.failed(batch, EmbeddingFailed("interrupted", "the round was cancelled"))
                raise
            except EmbeddingFailed as exc:
                self.failed(batch, exc)  # the embedding process logged it
                continue
            except Exception as exc:
                log.exception("detector semantic analysis failed for %d prompts", len(batch))
                self.failed(batch, exc)
                continue
            try:
                self.record(batch, spent + self.apply(batch, vectors, analyser))
            except Exception:
                log.exception("detector semantic analysis failed for %d prompts", len(batch))
            if applied is not None:
                applied()
            # Members of groups the semantic keys flagged, a chunk at a time (the worker may be idle).
            for _ in range(MAX_SWEEP_ROUNDS):
                if not sweep():
                    break
                await asyncio.sleep(0)

    def run_now(self, analyser: Analyser) -> None:
        """Embed and apply what is queued, waiting on this thread (tests, benchmarks, a drain without a
        worker). While the embedding process waits to restart, what is queued is lost (counted)."""
        while self.pending:
            batch = self.take()
            try:
                vectors, spent = self.compute(batch)
            except EmbeddingFailed as exc:
                self.failed(batch, exc)
                continue
            self.record(batch, spent + self.apply(batch, vectors, analyser))
