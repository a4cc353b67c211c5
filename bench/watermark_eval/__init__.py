"""Evaluation of the lexical watermark against the targets of issue 6 (one command, deterministic).

    python -m bench.watermark_eval                   # full run, both strengths (~25 min on 2 cores)
    python -m bench.watermark_eval --strength exact  # one strength (the default tier's)
    python -m bench.watermark_eval --quick           # small run, as the CI test uses
    python -m bench.watermark_eval --sections robustness,attribution   # some sections only

Corpora, all offline: human-written English (docstrings of the Python standard
library), model-like English (the mock model's answers, gateway/mock/text.py,
and the model-written articles in shared/seeds when present). Attacks: random
word deletion and synonym substitution with a synonym list written for this
evaluation, independent of the variant dictionary. Every figure is measured, none is
assumed. Each section runs once per strength (``exact``: exact equivalents only;
``near``: plus the guarded near synonyms): text is marked at that strength and
tested by the detector at that strength (as ``watermark detect --strength``); the
FPR is also measured with ``--strength auto`` (both tests, Bonferroni), which is
what a deployment that mixes strengths uses.

Modules: ``corpora`` (the texts), ``attack`` (deletion and synonym
substitution), ``measures`` (detection, FPR, attribution, corpus level),
``quality`` (what marking changes), ``cli`` (the command and its sections).
The package itself exports what the tests use.
"""

from bench.watermark_eval.attack import attack
from bench.watermark_eval.corpora import mock_answers, stdlib_docstrings, windows
from bench.watermark_eval.measures import MASTER, attribution, p_value
from bench.watermark_eval.quality import quality

__all__ = [
    "MASTER",
    "attack",
    "attribution",
    "mock_answers",
    "p_value",
    "quality",
    "stdlib_docstrings",
    "windows",
]
