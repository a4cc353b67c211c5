"""Bias probing: the same prompt under a different logit_bias is a probe; a fixed bias never is."""

from __future__ import annotations

from policies.detector.probing import MAX_PROMPTS, BiasProbes


def test_a_bias_search_on_one_prompt_probes_and_a_fixed_bias_does_not() -> None:
    probes = BiasProbes()
    assert probes.probe(1, {"5": 16.0}, short=True) == 0.0  # first sight of the prompt
    assert probes.probe(1, {"5": 8.0}, short=True) == 1.0  # the bisection's next step
    assert probes.probe(1, {"9": 8.0}, short=False) == 0.5  # another token, a long answer
    fixed = {"3": -100, "4": -100}
    assert [probes.probe(p, fixed, short=True) for p in (2, 3, 2, 2)] == [0.0] * 4  # retries included
    assert probes.probe(3, {"4": -100, "3": -100}, short=True) == 0.0  # entry order does not matter


def test_the_map_is_bounded_and_forgets_the_least_recently_biased_prompt() -> None:
    probes = BiasProbes()
    for prompt in range(MAX_PROMPTS + 10):
        probes.probe(prompt, {"1": 1.0}, short=True)
    assert len(probes) == MAX_PROMPTS and 0 not in probes and MAX_PROMPTS + 9 in probes
    # A search spread over more prompts than the map holds is not seen (documented evasion).
    assert probes.probe(0, {"1": 2.0}, short=True) == 0.0
