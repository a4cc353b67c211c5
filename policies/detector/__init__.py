"""Distillation-campaign detection: per-account and cross-account signals, risk levels, audit, evidence.

See docs/detection.md. The policy is :class:`DetectorPolicy` (registered as ``detector``); its
admin routes are in :mod:`policies.detector.admin`, the traffic simulator in
:mod:`policies.detector.sim`.
"""

from policies.detector.config import DetectorConfig
from policies.detector.policy import DetectorPolicy

__all__ = ["DetectorConfig", "DetectorPolicy"]
