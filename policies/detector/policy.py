"""The ``detector`` policy: watches every request and sets account risk levels through the engine.

It never changes a request or a response and never rejects one itself: the
engine applies the level it sets (the YAML's ``risk_levels.<level>.overrides``,
and a 403 for ``critical`` when ``risk_levels.critical.block`` is true). Put it
first in a tier's list so it sees the request as the client sent it.

Phases:

* ``on_request``: takes an observation of what a later policy may edit (the sampling, logprobs
  and reasoning asks, the bias) and a reference to the request view into ``exchange.scratch``; the
  prompt slices (up to ``text.max_chars``), the tool use and the client and network keys, which no
  policy edits, are read from it by the background analysis. A few microseconds, measured as
  ``distillguard_detector_seconds{stage="inline"}`` (with the after_response part; CPU time
  of the serving thread, so a busy machine's preemptions do not count as detector cost) on
  one request in :data:`TIMED_EVERY`: reading the thread's CPU clock is a system call that
  costs more than the observation itself on some VMs (6.45 µs a call measured), and the
  histogram's quantiles need a sample, not every request.
* ``after_response``: adds the response size and token usage and queues the
  observation for the background analysis (see :mod:`policies.detector.core`).

No stream filter: the detector holds nothing back and its observation depends
only on the request and on the totals the engine reports (``usage``,
``outcome.response_bytes``), never on how the stream was chunked.

Shadow mode: decisions are audited (``"applied": false``) and counted in
``distillguard_detector_shadow_decisions_total`` but no level is set.
"""

from __future__ import annotations

import itertools
import time

from gateway.plugins import Exchange, Policy
from policies.detector.config import DetectorConfig
from policies.detector.core import DetectorCore, core_for
from policies.detector.request import observe

SCRATCH = "detector"
# How long a shutdown waits for the embeddings in progress (a batch takes a fraction of a second; a
# served process has STOP_DEADLINE_SECONDS, 15 s by default, for its whole stop).
SHUTDOWN_EMBEDDING_SECONDS = 2.0
# One request in this many has its detector CPU time measured (inline and analysis): see above.
TIMED_EVERY = 8
_requests = itertools.count()


class DetectorPolicy(Policy[DetectorConfig]):
    config_model = DetectorConfig

    @property
    def core(self) -> DetectorCore:
        return core_for(self.services)

    async def startup(self) -> None:
        core = self.core
        core.attach(self.config, self.services)
        await core.start()

    async def shutdown(self) -> None:
        """Write what is pending to the store (the core itself outlives reloads). Embeddings still
        running after :data:`SHUTDOWN_EMBEDDING_SECONDS` are given up: a stop has a deadline."""
        try:
            core = self.core
            await core.flush(embeddings_within=SHUTDOWN_EMBEDDING_SECONDS, leaving=core.serves(self.services))
        except Exception:
            self.services.logger.warning("detector: could not flush pending evidence at shutdown")

    async def on_request(self, exchange: Exchange) -> None:
        timed = next(_requests) % TIMED_EVERY == 0
        started = time.thread_time() if timed else 0.0
        observation = observe(exchange, self.config)
        if self.mode == "shadow":
            observation.shadow = True
        exchange.scratch[SCRATCH] = observation
        observation.timed = timed
        if timed:
            observation.inline_seconds = time.thread_time() - started

    async def after_response(self, exchange: Exchange) -> None:
        observation = exchange.scratch.get(SCRATCH)
        if observation is None:
            return
        timed = observation.timed
        started = time.thread_time() if timed else 0.0
        observation.status = exchange.outcome.status
        observation.response_bytes = exchange.outcome.response_bytes
        if exchange.usage.known:
            observation.input_tokens = exchange.usage.input_tokens
            observation.output_tokens = exchange.usage.output_tokens
        core = self.core
        if timed:
            observation.inline_seconds += time.thread_time() - started
            observation.submitted = time.monotonic()
            if core.metrics is not None:
                core.metrics.inline_seconds.observe(observation.inline_seconds)
        core.submit(observation)
