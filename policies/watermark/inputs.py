"""Reading documents for the detector: plain text or JSONL in the shapes harvested corpora come in."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import orjson

from gateway.plugins import load_keys_file, response_texts
from policies.watermark.config import GreenListModel, WatermarkConfig
from policies.watermark.green_list import GreenLayout
from policies.watermark.keys import KeySpec

_TEXT_FIELDS = ("text", "content", "completion", "output", "response", "answer")


def extract_text(value: Any, field: str | None = None) -> str:
    """The assistant text of one JSON record (chat transcripts, API responses, {"text": ...})."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n\n".join(t for t in (extract_text(v) for v in value) if t)
    if not isinstance(value, dict):
        return ""
    if field is not None:
        return extract_text(value.get(field))
    if isinstance(value.get("messages"), list):
        return "\n\n".join(
            extract_text(m.get("content"))
            for m in value["messages"]
            if isinstance(m, dict) and m.get("role") == "assistant"
        )
    texts = response_texts(value)  # an API response body of any family the gateway knows, or a part
    if texts is not None:
        return "\n\n".join(t for t in texts if t)
    for name in _TEXT_FIELDS:
        if name in value:
            found = extract_text(value[name])
            if found:
                return found
    return ""


def read_documents(raw: str, fmt: str = "auto", field: str | None = None) -> list[str]:
    """Documents of a file's text: one per JSONL line, or the whole text."""
    if fmt == "auto":
        first = raw.lstrip()[:1]
        fmt = "jsonl" if first in ("{", "[", '"') else "text"
    if fmt == "text":
        return [raw]
    docs = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"line {number} is not JSON: {exc}") from None
        docs.append(extract_text(value, field))
    return docs


def read_accounts(path: Path) -> list[str]:
    """Account ids from a file: a gateway keys file (JSONL with ``account``) or one id per line."""
    text = path.read_text("utf-8")
    if text.lstrip().startswith("{"):
        return sorted({entry.account for entry in load_keys_file(path).values()})
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def key_specs_from_policy(config: dict[str, Any]) -> tuple[list[KeySpec], float, str]:
    """The key specs, lexical density and lexical strength of a ``watermark`` policy config dict."""
    cfg = WatermarkConfig.model_validate(config)
    specs = [KeySpec(k.id, k.env) for k in cfg.keys] or [KeySpec(cfg.key_id, cfg.key_env)]
    return specs, cfg.lexical.density, cfg.lexical.strength


def detect_strength(strengths: set[str]) -> str:
    """The detector's strength for the strengths configured: the one used, or ``auto`` for several/none."""
    return next(iter(strengths)) if len(strengths) == 1 else "auto"


def watermark_configs(loaded: Any) -> list[dict[str, Any]]:
    """Every watermark policy config in a loaded gateway config (tiers, accounts, risk levels)."""
    out = []
    for spec in loaded.pipelines.values():
        for policy in spec.policies:
            if policy.name == "watermark" or getattr(policy.cls, "__name__", "") == "WatermarkPolicy":
                out.append(policy.config.model_dump())
    return out


def green_list_settings(configs: list[dict[str, Any]], model: str | None) -> tuple[Any, GreenLayout] | None:
    """The green_list model entry (for ``model``, else the first) and the lists' layout of the first
    config with one (detection needs both lists' fractions and whether the account's is nested)."""
    for config in configs:
        green = WatermarkConfig.model_validate(config).green_list
        if not green.models:
            continue
        entry: GreenListModel | None = green.models[0]
        if model:  # the entry for that model, whether or not this tier has the scheme on
            name = model.lower()
            entry = next((m for m in green.models if fnmatch.fnmatchcase(name, m.match.lower())), None)
        if entry is not None:
            return entry, green.layout()
    return None
