"""The ``reasoning`` policy's config schema (see docs/reasoning.md for the reference)."""

from __future__ import annotations

import re
import string
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from gateway.plugins import (
    FALSE_IS_STRICTER,
    LOWER_IS_STRICTER,
    NEUTRAL,
    SUPERSET_IS_STRICTER,
    PolicyConfig,
    Ranked,
)

ReasoningMode = Literal["drop", "redact", "summary", "seal", "allow"]
# Loosest first, by what a client can read or get back (docs/reasoning.md): allow gives everything;
# seal gives a blob the model reads back on the next turn (a client can ask it to repeat its
# reasoning) and, on Responses, the provider's summary too; summary gives only provider summaries;
# redact only a placeholder with a token estimate (the exact count is in usage anyway); drop nothing.
MODE_ORDER = Ranked("allow", "seal", "summary", "redact", "drop")
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
# OpenAI's ReasoningEffort literal (openai/types/shared/reasoning_effort.py), weakest first.
EFFORT_ORDER: tuple[Effort, ...] = ("none", "minimal", "low", "medium", "high", "xhigh", "max")

_TAG = r"^[A-Za-z][A-Za-z0-9_:-]{0,31}$"
_KEY_ID = r"^[A-Za-z0-9_-]{1,32}$"
_ENV = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


class SealKeyConfig(PolicyConfig):
    """One sealing key: its id (written into every blob) and the env var holding the secret."""

    id: str = Field(pattern=_KEY_ID)
    env: str = Field(pattern=_ENV)


class SealConfig(PolicyConfig):
    """Keys for ``seal`` mode. ``keys`` (first = current, all accepted) overrides ``key_env``/``key_id``."""

    key_env: Annotated[str, NEUTRAL] = Field("DISTILLGUARD_SEAL_KEY", pattern=_ENV)
    key_id: Annotated[str, NEUTRAL] = Field("k1", pattern=_KEY_ID)
    keys: Annotated[list[SealKeyConfig], NEUTRAL] = Field(default_factory=list, max_length=16)
    # Chat UIs (Open WebUI, LibreChat, Chatbox...) render `reasoning_content` and `<think>` spans as the
    # model's thinking, so a blob there is gibberish on an end user's screen. Loosest first by what a
    # UI shows: inline shows the blob, field shows nothing, omit delivers nothing.
    chat: Annotated[Literal["inline", "field", "omit"], Ranked("inline", "field", "omit")] = Field(
        "field",
        description="chat/completions: field puts the blob in the message's own `sealed_reasoning` field "
        "(no UI renders it; it round-trips when sent back) and drops inline think spans; inline puts it in "
        "`reasoning_content` and `<think>blob</think>`; omit delivers no blob",
    )

    @field_validator("keys")
    @classmethod
    def _unique_ids(cls, keys: list[SealKeyConfig]) -> list[SealKeyConfig]:
        ids = [key.id for key in keys]
        if len(set(ids)) != len(ids):
            raise ValueError("key ids must be unique")
        return keys

    def key_list(self) -> list[SealKeyConfig]:
        return list(self.keys) or [SealKeyConfig(id=self.key_id, env=self.key_env)]


class ReasoningLimits(PolicyConfig):
    """Request-side caps on reasoning parameters; ``on_limit`` says whether to clamp or reject."""

    # a lower cap is stricter; null (no cap) the loosest
    max_reasoning_effort: Annotated[Effort | None, Ranked(*reversed(EFFORT_ORDER))] = Field(
        None, description="cap on chat `reasoning_effort` and Responses `reasoning.effort`"
    )
    max_budget_tokens: Annotated[int | None, LOWER_IS_STRICTER] = Field(
        None,
        ge=0,
        description="cap on Anthropic `thinking.budget_tokens` (and OpenRouter `reasoning.max_tokens`); "
        "0 forbids thinking",
    )
    allow_encrypted_include: Annotated[bool, FALSE_IS_STRICTER] = Field(
        True, description='whether Responses `include: ["reasoning.encrypted_content"]` is allowed'
    )
    on_limit: Annotated[Literal["clamp", "reject"], Ranked("clamp", "reject")] = "clamp"


class ReasoningConfig(PolicyConfig):
    """What reaches the client of the model's reasoning, in every API format, streamed or not."""

    mode: Annotated[ReasoningMode, MODE_ORDER] = "drop"
    redact_text: Annotated[str, NEUTRAL] = Field(
        "[reasoning withheld: {tokens} tokens]",
        min_length=1,
        max_length=500,
        description="placeholder in redact mode; {tokens} is the estimated token count of what was withheld",
    )
    # More tags or models parsed as reasoning withholds more: stricter. assume_open_think declares no
    # order (true can also swallow an answer whose template pre-fills nothing): risk levels keep it.
    think_tags: Annotated[list[str], SUPERSET_IS_STRICTER] = Field(
        default_factory=lambda: ["think"],
        max_length=8,
        description="inline tag names (`<think>...</think>`) in chat/completions text; [] turns parsing off",
    )
    assume_open_think: bool | Literal["auto"] = Field(
        "auto",
        description="whether the output starts inside a think block (templates that pre-fill `<think>`); "
        "auto: when the model matches open_think_models",
    )
    open_think_models: Annotated[list[str], SUPERSET_IS_STRICTER] = Field(
        default_factory=lambda: ["*deepseek-r1*", "*r1-distill*", "*qwq*"],
        max_length=64,
        description="glob patterns (case-insensitive) of models whose chat template pre-fills `<think>`",
    )
    keep_provider_encrypted: Annotated[bool, FALSE_IS_STRICTER] = Field(
        True,
        description="keep opaque provider continuity data (Anthropic signature-only thinking and "
        "redacted_thinking blocks, Responses encrypted_content, OpenRouter reasoning.encrypted)",
    )
    omit_upstream_thinking: Annotated[
        Literal["auto", "always", "never"], Ranked("never", "auto", "always")
    ] = Field(
        "auto",
        description="ask the upstream not to send the reasoning text where its API can (Anthropic's "
        '`thinking.display: "omitted"`, Gemini\'s `includeThoughts: false`); auto: in drop and summary',
    )
    seal: SealConfig = SealConfig()
    limits: ReasoningLimits = ReasoningLimits()

    @field_validator("think_tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not re.match(_TAG, tag):
                raise ValueError(f"'{tag}' is not a tag name (letters, digits, _ : -; up to 32)")
        if len(set(tags)) != len(tags):
            raise ValueError("tag names must be unique")
        return tags

    @field_validator("redact_text")
    @classmethod
    def _placeholder(cls, text: str) -> str:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        except ValueError as exc:
            raise ValueError(f"not a valid template: {exc} (write {{{{ and }}}} for braces)") from None
        if fields - {"tokens"}:
            raise ValueError(f"unknown placeholder(s) {sorted(fields - {'tokens'})}; only {{tokens}} exists")
        return text

    @model_validator(mode="after")
    def _open_without_tags(self) -> ReasoningConfig:
        if self.assume_open_think is True and not self.think_tags:
            raise ValueError("assume_open_think: true needs at least one think_tags entry")
        return self

    def placeholder(self, tokens: int) -> str:
        return self.redact_text.format(tokens=tokens)
