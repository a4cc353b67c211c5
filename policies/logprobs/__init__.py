"""The ``logprobs`` policy: logit truncation against logprob-based extraction and distillation.

See ``docs/logprobs.md``. Modules: ``config`` (schema), ``requests`` (request
limits), ``values`` (top-k, keyed noise, grid), ``rewriter`` (every run of
logprobs the adapter's response view finds), ``policy`` (the plugin).
"""

from policies.logprobs.config import LogitBiasConfig, LogprobsConfig, NoiseConfig
from policies.logprobs.policy import LogprobsPolicy

__all__ = ["LogitBiasConfig", "LogprobsConfig", "LogprobsPolicy", "NoiseConfig"]
