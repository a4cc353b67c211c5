"""The ``logprobs`` policy configs recommended for the shipped presets (docs/logprobs.md).

:func:`preset_config` prefers what ``policies/<preset>.yaml`` ships for the
tier, once the preset has a ``logprobs`` entry, so that the attack tests follow
the shipped files; until then it returns the recommendation below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

RECOMMENDED: dict[str, dict[str, dict[str, Any]]] = {
    "default": {
        "free": {"top_k": 5, "max_n": 4, "logit_bias": {"mode": "exclusive", "max_entries": 50}},
        "pro": {"top_k": 10, "max_n": 8, "logit_bias": {"mode": "exclusive", "max_entries": 300}},
        "trusted": {"top_k": 20, "max_n": 16, "logit_bias": {"mode": "exclusive"}},
    },
    "strict": {
        "free": {
            "top_k": 0,
            "grid": 0.5,
            "noise": {"scale": 0.5},
            "max_n": 1,
            "logit_bias": {"mode": "refuse"},
        },
        "pro": {
            "top_k": 5,
            "grid": 0.5,
            "noise": {"scale": 0.5},
            "max_n": 4,
            "logit_bias": {"mode": "exclusive", "max_entries": 20, "max_magnitude": 20},
        },
        "trusted": {
            "top_k": 5,
            "grid": 0.25,
            "noise": {"scale": 0.25},
            "max_n": 8,
            "logit_bias": {"mode": "exclusive", "max_entries": 100},
        },
    },
}


def preset_config(preset: str, tier: str) -> dict[str, Any]:
    """The logprobs config of ``tier`` in the shipped preset, else the recommendation."""
    path = ROOT / "policies" / f"{preset}.yaml"
    if path.exists():
        data = yaml.safe_load(path.read_text()) or {}
        policies = ((data.get("tiers") or {}).get(tier) or {}).get("policies") or []
        for entry in policies:
            if isinstance(entry, dict) and entry.get("name") == "logprobs":
                return dict(entry.get("config") or {})
    return RECOMMENDED[preset][tier]
