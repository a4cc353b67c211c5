"""Attacks the policies are tested against, runnable against any OpenAI-compatible endpoint.

``logit_extraction``: the logit-bias + top-k attack of Carlini et al. (2024) and
Finlayson et al. (2024) that rebuilds full logit vectors, and its variant for
APIs whose logprobs ignore the bias. ``logprob_free``: the attack that reads no logprobs
(Carlini et al. §6: a bias bisected until the one-token answer flips). ``hidden_dimension``: the SVD step that
recovers the model's hidden dimension from many such vectors.
``python -m bench.attacks`` runs the scenarios of docs/logprobs.md.
"""

from bench.attacks.hidden_dimension import HiddenDimension, hidden_dimension, subspace_residual
from bench.attacks.logit_extraction import AttackReport, LogitExtractor

__all__ = ["AttackReport", "HiddenDimension", "LogitExtractor", "hidden_dimension", "subspace_residual"]
