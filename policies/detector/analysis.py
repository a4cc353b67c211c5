"""Analysis of the detector core: features, the cross-account index, the score, the level.

:meth:`Analyser.process` is what the background task runs for each observation;
a group that becomes flagged is put on the core's sweep queue, whose members the
core re-evaluates between batches (:meth:`policies.detector.core.DetectorCore.run_sweeps`).
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections import deque
from datetime import UTC
from typing import Any

from gateway.plugins import RiskLevel
from policies.detector import fingerprint
from policies.detector.agentic import WITHOUT_TOOLS, agentic_score
from policies.detector.classifier import classify, rubric_score
from policies.detector.config import DetectorConfig, SharedSettings
from policies.detector.cot import cot_score
from policies.detector.features import AccountState, TrackedAccounts, remember_infra
from policies.detector.groups import GroupBook, Sweep
from policies.detector.index import INFRA, SYSTEM, TEMPLATE, TemplateIndex
from policies.detector.levels import LevelVotes
from policies.detector.lexicon import lexicon_scores
from policies.detector.metrics import DetectorMetrics
from policies.detector.outbox import SyncOutbox
from policies.detector.probing import SHORT_ANSWER, BiasProbes, prompt_key
from policies.detector.request import Observation, infra_key_of, settle_prompt
from policies.detector.scoring import Score, decide, score_account
from policies.detector.semantic import SemanticSignals
from policies.detector.timeline import FeatureTimeline

log = logging.getLogger("distillguard.detector")

_SYSTEM_CACHE = 1024


class Analyser:
    """Turns observations into account features, index entries, scores and level votes.

    Owns the caches of system prompt keys and agentic scores. Handed the tracked accounts (it
    adds and forgets them), the template index, the level votes (allowlist and voting), the feature timeline,
    the sync outbox (groups it changed) and the queue of sweeps (groups it flagged); the last two go
    to its :class:`~policies.detector.groups.GroupBook`, whose methods it binds as its own.
    """

    def __init__(
        self,
        shared: SharedSettings,
        accounts: TrackedAccounts,
        index: TemplateIndex,
        levels: LevelVotes,
        timeline: FeatureTimeline,
        outbox: SyncOutbox,
        sweeps: deque[Sweep],
    ) -> None:
        self._shared = shared
        self._metrics: DetectorMetrics | None = None
        self._index = index
        self._outbox = outbox
        self._system_keys: dict[str, int | None] = {}
        self._system_agentic_scores: dict[str, float] = {}
        # Bound once: these run for most observations (no lookup through the collaborators each time).
        self._seen = accounts.seen
        self.tracked = accounts.get
        self.semantic = SemanticSignals(shared.semantic, shared.max_accounts)
        self._allowlisted = levels.allowlisted
        self._vote = levels.vote
        self._record_timeline = timeline.record
        # The groups' bookkeeping (groups.py), bound as this analyser's own methods.
        groups = GroupBook(index, outbox, sweeps)
        self.rescore = groups.rescore
        self.link = groups.link
        self.remember_template = groups.remember_template
        self.use_template = groups.use_template
        self.cluster_term = groups.cluster_term
        self._maybe_rescore = groups.maybe_rescore
        self._share = groups.share

    def configure(self, shared: SharedSettings, metrics: DetectorMetrics | None) -> None:
        """Take new shared settings and the metrics."""
        self._shared = shared
        self._metrics = metrics
        self.semantic.configure(shared.semantic, shared.max_accounts, metrics)

    def process(self, obs: Observation) -> Score | None:
        """Analyse one observation: features, index, score, level. Returns the score."""
        # CPU time (the cost, not the preemptions of a busy machine), on the policy's sample of requests
        timed = obs.timed and self._metrics is not None
        started = time.thread_time() if timed else 0.0
        settle_prompt(obs)
        settings: DetectorConfig = obs.settings
        now = obs.at
        state = self._seen(obs.account, now)
        text = obs.user_text
        keys, words = fingerprint.keys_and_words(text)
        prompt = f"{obs.system_text}\n{text}" if obs.system_text else text
        cot, _ = cot_score(prompt)
        agentic = agentic_score(text, obs.tools)
        if obs.system_text:  # no pattern crosses the line between them; the system prompt's is cached
            agentic = 1.0 - (1.0 - agentic) * (1.0 - self._system_agentic(obs.system_text, obs.tools))
        category, votes = classify(text, obs.tools, words, obs.tool_forced or obs.tool_depth > 0)
        rubric = rubric_score(votes, text)
        # The same concepts in other languages (English prompts: one set intersection).
        cot_other, rubric_other, agentic_other = lexicon_scores(
            prompt.lower(), None if obs.system_text else words
        )
        if cot_other or rubric_other or agentic_other:
            cot = 1.0 - (1.0 - cot) * (1.0 - cot_other)
            rubric = max(rubric, rubric_other)
            agentic = 1.0 - (1.0 - agentic) * (1.0 - (agentic_other if obs.tools else 0.6 * agentic_other))
        probe = 0.0
        if obs.bias is not None:  # the same prompt under another bias: one step of a bias search
            probes = state.probes
            if probes is None:
                probes = state.probes = BiasProbes()
            short = 0 < obs.max_output <= SHORT_ANSWER or 0 < obs.output_tokens <= SHORT_ANSWER
            key = prompt_key(obs.model, obs.system_text, text, obs.turns)
            probe = probes.probe(key, obs.bias, short)
        extraction = max(cot, rubric, agentic, probe)
        dup = False
        index = self._index
        touch = index.touch
        outbox = self._outbox
        templates = state.templates
        # Up to 9 keys per request: the common cases of _maybe_rescore and remember_template inline.
        for key in keys:
            group, seen = touch(key, TEMPLATE, obs.account, extraction, now)
            if group is None:
                continue
            if seen:
                dup = True
                if int(group.requests) % 8 == 0:
                    self.rescore(group, settings)
                elif outbox.sharing:
                    self._share(group, settings.cluster)
            else:
                self.rescore(group, settings)
            entry = templates.get(key)
            if entry is not None:
                entry[0] += 1.0
                entry[1] += extraction
            else:
                self.remember_template(state, group, extraction)
        if obs.system_text:
            system_key = self._system_key(obs.system_text)
            if system_key is not None:
                group, seen = index.touch(system_key, SYSTEM, obs.account, cot, now)
                if group is not None:
                    self._maybe_rescore(group, seen, settings)
                    self.remember_template(state, group, cot)
        infra_key = infra_key_of(obs)
        remember_infra(state, infra_key)
        group, seen = index.touch(infra_key, INFRA, obs.account, 0.0, now)
        if group is not None:
            if state.linked and obs.account not in group.linked:
                self.link(group, obs.account, settings)
            else:
                self._maybe_rescore(group, seen, settings)
        state.update(
            alpha=1.0 / settings.rates.window_requests,
            mono=obs.mono,
            wall=now,
            cot=cot,
            rubric=rubric,
            logprobs=obs.logprobs or obs.samples > 1,
            dup=dup,
            single=obs.turns <= 1,
            max_reasoning=obs.max_reasoning,
            new_model=self._is_new_model(obs.model, now),
            category=category,
            extraction=extraction,
            agentic=agentic,
            tools=obs.tools,
            forced=obs.tool_forced,
            depth=obs.tool_depth,
            probe=probe,
        )
        self.semantic.offer(obs.account, text, extraction, settings, now, state.requests)
        if obs.input_tokens or obs.output_tokens:
            state.add_usage(1.0 / settings.rates.window_requests, obs.input_tokens, obs.output_tokens)
        if self._shared.store_prompts:
            if state.prompts is None:
                state.prompts = deque(maxlen=self._shared.prompts_kept)
            state.prompts.append(text)
        result = None
        # Scores move slowly: after the first requests, an ordinary request is scored every 4th time
        # (a flagged account, or a request with extraction content, every time).
        if state.requests <= 64 or extraction >= 0.3 or state.level != "none" or state.requests % 4 == 0:
            result = self.evaluate(state, settings, now, obs.mono, shadow=obs.shadow)
            self._record_timeline(state, obs.mono)
        metrics = self._metrics
        if timed and metrics is not None:
            spent = time.thread_time() - started
            metrics.analysis_seconds.observe(spent)
            metrics.total_seconds.observe(spent + obs.inline_seconds)
            if obs.submitted:
                metrics.analysis_lag.observe(time.monotonic() - obs.submitted)
        return result

    def _is_new_model(self, model: str, now: float) -> bool:
        if not model:
            return False
        for released, window, pattern in _release_windows(self._shared):
            age = now - released
            if 0 <= age <= window and fnmatch.fnmatchcase(model, pattern):
                return True
        return False

    def _system_agentic(self, text: str, tools: bool) -> float:
        """The agentic score of a system prompt (cached like its key: apps resend the same one)."""
        cache = self._system_agentic_scores
        score = cache.get(text)
        if score is None:
            score = agentic_score(text, True)
            if len(cache) >= _SYSTEM_CACHE:
                cache.pop(next(iter(cache)))
            cache[text] = score
        return score if tools else score * WITHOUT_TOOLS

    def _system_key(self, text: str) -> int | None:
        """The key of a system prompt (cached: apps send the same long system prompt every time)."""
        cache = self._system_keys
        key = cache.get(text, -1)
        if key == -1:
            key = fingerprint.exact_key(text)
            if len(cache) >= _SYSTEM_CACHE:
                cache.pop(next(iter(cache)))
            cache[text] = key
        return key

    def evaluate(
        self, state: AccountState, settings: DetectorConfig, now: float, mono: float, shadow: bool = False
    ) -> Score:
        """Score the account and vote for the level the score calls for, when that is a change."""
        cluster, cluster_id = self.cluster_term(state, settings)
        semantic, shift = self.semantic.value(state.account)
        score = score_account(state, settings, mono, cluster, cluster_id, semantic, shift)
        state.last_score = score.value
        state.cluster = cluster_id
        if self._allowlisted(state.account):
            new: RiskLevel = "none"
        else:
            current: RiskLevel = state.level
            new = decide(current, state.level_since, score.value, state.requests, now, settings)
        if new != state.level:
            self._vote(state, new, score, now, mono, shadow)
        return score


_WINDOWS: list[Any] = [None, ()]  # the shared settings object and its release windows


def _release_windows(shared: Any) -> tuple[tuple[float, float, str], ...]:
    """(release timestamp, pivot window, model glob) of each new model, once per settings object."""
    if _WINDOWS[0] is not shared:
        window = shared.pivot_window_hours * 3600.0
        windows = []
        for release in shared.new_models:
            released = release.released_at
            if released.tzinfo is None:
                released = released.replace(tzinfo=UTC)
            windows.append((released.timestamp(), window, release.model))
        _WINDOWS[:] = [shared, tuple(windows)]
    return _WINDOWS[1]
