"""The harder attack personas are written outside the detector's vocabularies."""

from __future__ import annotations

import random

from policies.detector import anchors
from policies.detector.agentic import agentic_score
from policies.detector.cot import cot_score
from policies.detector.lexicon import lexicon_scores, phrases
from policies.detector.sim import harder
from policies.detector.sim.traffic import Account


def _material() -> list[str]:
    """Every text the harder personas write: templates with each synonym, and the agentic demands."""
    out = []
    for language in harder.LANGUAGES:
        for template in harder.templates(language):
            out += {harder._swap(template, random.Random(seed)) for seed in range(6)}
    intro, demands = harder.AGENT_PARTS
    out += [f"{a} {b}" for a in intro for b in demands]
    return out


def test_there_are_more_than_fifty_templates_in_six_languages() -> None:
    assert len(harder.templates("en")) >= 50
    assert len(harder.LANGUAGES) >= 6 and all(len(harder.templates(lang)) >= 6 for lang in harder.LANGUAGES)


def test_no_simulator_phrase_is_in_the_detectors_keyword_lists() -> None:
    material = [text.lower() for text in _material()]
    keywords = [phrase for phrase, _, _ in phrases()]
    keywords += [text.lower() for text in (*anchors.EXTRACTION, *anchors.ORDINARY)]
    for keyword in keywords:
        assert not any(keyword in text for text in material), keyword


def test_the_lexical_scorers_give_the_harder_material_nothing() -> None:
    for text in _material():
        assert cot_score(text)[0] == 0.0, text
        assert lexicon_scores(text.lower()) == (0.0, 0.0, 0.0), text
        assert agentic_score(text, True) == 0.0, text


def test_the_hydra_extracts_in_about_three_percent_of_its_requests() -> None:
    account = Account("h", None, rng=random.Random(1))  # type: ignore[arg-type]
    bodies = [harder.hydra_reworded(account, 0.5).body for _ in range(4000)]
    extraction = sum(body["model"] == "mock-reasoner" for body in bodies) / len(bodies)
    assert 0.02 < extraction < 0.04
