"""Per-account quotas that hold exactly across replicas: requests, tokens, budgets and concurrency.

Modules, one job each: ``config`` (the schema), ``estimate`` (what a request
will cost), ``plan`` (the checks of one decision and the settlement),
``limiter`` (the atomic scripts, GCRA maths in its docstring; their bodies in
``lua`` and ``twin``), ``headers``
(OpenAI's x-ratelimit-* format), ``metrics`` and ``policy`` (the phases).
"""

from policies.quota.config import ModelLimits, QuotaConfig
from policies.quota.policy import QuotaPolicy

__all__ = ["ModelLimits", "QuotaConfig", "QuotaPolicy"]
