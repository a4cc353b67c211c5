"""The watermark policy's config schema."""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from gateway.plugins import (
    HIGHER_IS_STRICTER,
    NEUTRAL,
    OPERATION_NAMES,
    SUPERSET_IS_STRICTER,
    TRUE_IS_STRICTER,
    PolicyConfig,
    Ranked,
)
from policies.watermark.green_list import GreenLayout

ClassName = Literal["spelling", "contraction", "function", "connective", "compound"]
ALL_CLASSES: tuple[ClassName, ...] = ("spelling", "contraction", "function", "connective", "compound")
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_ENV = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


class KeyEntry(PolicyConfig):
    """A master key: its id (recorded as evidence) and the env var holding its secret."""

    id: str = Field(pattern=_ID)
    env: str = Field(pattern=_ENV)


Strength = Literal["exact", "near"]


class LexicalConfig(PolicyConfig):
    # Stricter means more of the text is marked (traceable to the account).
    enabled: Annotated[bool, TRUE_IS_STRICTER] = True
    density: Annotated[float, HIGHER_IS_STRICTER] = Field(
        1.0, gt=0, le=1, description="fraction of eligible positions that carry the mark"
    )
    strength: Annotated[Strength, Ranked("exact", "near")] = Field(
        "exact",
        description="exact: only exactly equivalent forms; near: plus curated near synonyms with context "
        "guards (more positions per word, a small documented quality cost)",
    )
    enforce: Annotated[float, HIGHER_IS_STRICTER] = Field(
        1.0, ge=0, le=1, description="fraction of marked positions where it is enforced"
    )
    classes: Annotated[list[ClassName], SUPERSET_IS_STRICTER] = Field(
        default_factory=lambda: list(ALL_CLASSES), min_length=1
    )

    @model_validator(mode="before")
    @classmethod
    def _numeric_strength(cls, data: Any) -> Any:
        # The first version's `strength` was the enforced fraction (a number); it is `enforce` now.
        if not isinstance(data, dict) or "enforce" in data:
            return data
        legacy = data.get("strength")
        if isinstance(legacy, int | float) and not isinstance(legacy, bool):
            data = {k: v for k, v in data.items() if k != "strength"}
            data["enforce"] = legacy
        return data


class CanaryConfig(PolicyConfig):
    enabled: Annotated[bool, TRUE_IS_STRICTER] = False
    fraction: Annotated[float, HIGHER_IS_STRICTER] = Field(
        0.02, ge=0, le=1, description="fraction of an account's responses that get one"
    )
    # variants declares no order: it changes which canaries an account gets, not how many
    variants: int = Field(4, ge=1, le=16, description="distinct canaries per account and key")


class UnicodeConfig(PolicyConfig):
    enabled: Annotated[bool, TRUE_IS_STRICTER] = False
    rate: Annotated[float, HIGHER_IS_STRICTER] = Field(
        0.1, gt=0, le=1, description="fraction of words followed by an invisible mark"
    )
    mode: Literal["zero_width", "space"] = "zero_width"  # no order: a different mark, not more of it


class GreenListModel(PolicyConfig):
    """A model (glob) served by an upstream that honours ``logit_bias``, and its vocabulary."""

    match: str = Field(
        min_length=1, max_length=200, description="glob over the request's model, case-insensitive"
    )
    vocab_size: int = Field(ge=2, le=4_000_000, description="the model's vocabulary size (n_vocab)")
    tokenizer_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="detection: a llama.cpp server of this model; its /tokenize endpoint re-tokenizes text",
    )
    tokenizer_json: str | None = Field(
        None, description="detection: a tokenizer.json of this model (the `tokenizer` extra)"
    )
    tokenizer_gguf: str | None = Field(
        None,
        description="detection: this model's GGUF file, whose byte-level BPE tokenizer is read from its "
        "metadata (the `tokenizer` extra; the gpt2 and smollm pre-tokenizers)",
    )
    end_tokens: list[int] = Field(
        default_factory=list,
        max_length=64,
        description="ids of the tokens that end a turn (EOS, end-of-turn: SmolLM2's 0 and 2): given the "
        "layout's neutral bias (the mean factor it applies to the vocabulary) so a mark neither holds "
        "an answer's end back nor brings it early, and left out of detection",
    )
    # A small model loops under the bias (the loop's tokens are green, so they gain at every step);
    # a penalty on repeated tokens breaks the loop and, since detection scores each distinct token
    # once, it also raises the evidence per answer. Measured per model: docs/watermark.md.
    min_presence_penalty: float = Field(
        0.0,
        ge=0,
        le=2,
        description="a marked request's presence_penalty is raised to at least this (OpenAI's range, 0..2)",
    )
    min_frequency_penalty: float = Field(
        0.0,
        ge=0,
        le=2,
        description="a marked request's frequency_penalty is raised to at least this (OpenAI's range, 0..2)",
    )

    # The floors above leave loops whose period is a sentence (llama.cpp applies them over the last
    # 64 tokens); its DRY sampler penalises extending any phrase already in the context, growing
    # with the phrase's length. Only llama.cpp has it (vLLM ignores the fields). Measured in
    # docs/watermark.md.
    min_dry_multiplier: float = Field(
        0.0,
        ge=0,
        le=5,
        description="llama.cpp servers: a marked request's dry_multiplier (its penalty on repeated phrases) "
        "is raised to at least this; 0 leaves it as sent",
    )
    max_dry_allowed_length: int = Field(
        2,
        ge=1,
        le=64,
        description="with min_dry_multiplier: repeats up to this many tokens long go unpenalised "
        "(dry_allowed_length is lowered to at most this; the client's other dry_* settings are dropped)",
    )

    @model_validator(mode="after")
    def _end_tokens_in_vocabulary(self) -> GreenListModel:
        outside = [t for t in self.end_tokens if not 0 <= t < self.vocab_size]
        if outside:
            raise ValueError(f"end_tokens {outside} are not ids of a {self.vocab_size}-token vocabulary")
        return self


class GreenListConfig(PolicyConfig):
    """``scheme: green_list``: a keyed bias over the vocabulary, added to chat/completions requests."""

    enabled: Annotated[bool, TRUE_IS_STRICTER] = False
    # gamma and delta declare no order: both are the measured trade of docs/watermark.md, and a
    # different gamma is a different test (detection must know it), not more of the same mark.
    gamma: float = Field(0.25, gt=0, lt=1, description="fraction of the vocabulary in each green list")
    delta: Annotated[float, HIGHER_IS_STRICTER] = Field(
        2.0, gt=0, le=20, description="bias added to each green token's logit, per list"
    )
    # The account's own list (attribution), when it differs from the provider-wide one above:
    # attribution among many accounts needs more evidence per answer than the provider test (Holm
    # over 1,000 accounts asks for p <= 1e-6). No order either: detection must know all three.
    account_gamma: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="fraction in the account's list (of the provider list when nested); default: gamma",
    )
    account_delta: float | None = Field(
        None, gt=0, le=20, description="bias added to the account's green tokens; default: delta"
    )
    nested: bool = Field(
        False,
        description="the account list is a keyed subset of the provider list (tested on its green tokens)",
    )
    # the models whose upstream honours logit_bias (llama.cpp, vLLM); others keep the text schemes
    models: Annotated[list[GreenListModel], NEUTRAL] = Field(default_factory=list, max_length=64)
    cache_maps: Annotated[int, NEUTRAL] = Field(
        128,
        ge=1,
        le=100_000,
        description="bias maps kept per process (0.45-0.76 MB each at 49,152 tokens); a miss costs ~3 ms",
    )
    with_lexical: Annotated[bool, TRUE_IS_STRICTER] = Field(
        False, description="also apply the lexical scheme where the green list marks a request"
    )

    def layout(self) -> GreenLayout:
        """Both lists' fractions and biases, as the bias and the detector use them."""
        return GreenLayout.of(self.gamma, self.delta, self.account_gamma, self.account_delta, self.nested)

    def model_for(self, model: str | None) -> GreenListModel | None:
        """The first entry whose glob matches ``model`` (None: the green list does not apply)."""
        if not self.enabled or not model:
            return None
        name = model.lower()
        return next((m for m in self.models if fnmatch.fnmatchcase(name, m.match.lower())), None)


class WatermarkConfig(PolicyConfig):
    """``watermark`` policy: marks assistant text so a harvested corpus can be traced to an account."""

    key_env: Annotated[str, NEUTRAL] = Field("DISTILLGUARD_WATERMARK_KEY", pattern=_ENV)
    key_id: Annotated[str, NEUTRAL] = Field(
        "default", pattern=_ID, description="id of the key_env key (when keys is empty)"
    )
    keys: Annotated[list[KeyEntry], NEUTRAL] = Field(
        default_factory=list, max_length=16, description="first = current"
    )
    lexical: LexicalConfig = LexicalConfig()
    green_list: GreenListConfig = GreenListConfig()
    canary: CanaryConfig = CanaryConfig()
    unicode: UnicodeConfig = UnicodeConfig()
    # Every operation is marked (the engine refuses the policy where an adapter cannot show it the
    # text); no strictness order: excluding less is stricter, which no marker expresses, so only
    # tiers and accounts set it, never a risk level.
    exclude_operations: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="model operations whose text is not marked (names as in the route table: "
        "chat.completions, completions, responses, messages, generateContent, streamGenerateContent)",
    )
    strip_logprobs: Annotated[bool, TRUE_IS_STRICTER] = Field(
        True, description="drop logprobs of marked text (their tokens would reveal the unmarked text)"
    )
    # think_tags, assume_open_think, open_think_models declare no order: what counts as reasoning
    # is never marked, so here more is looser, the opposite of the reasoning policy's same keys.
    think_tags: list[str] = Field(
        default_factory=lambda: ["think"],
        max_length=8,
        description="inline reasoning tags (`<think>...</think>`) in chat/completions text, never marked; "
        "[] turns this off",
    )
    assume_open_think: bool | Literal["auto"] = Field(
        "auto",
        description="whether the text starts inside a think span (templates that pre-fill `<think>`): "
        "text before the first closing tag is then never marked; auto: when the model matches "
        "open_think_models",
    )
    open_think_models: list[str] = Field(
        default_factory=lambda: ["*deepseek-r1*", "*r1-distill*", "*qwq*"],
        max_length=64,
        description="glob patterns (case-insensitive) of models whose chat template pre-fills `<think>`",
    )
    record_evidence: Annotated[bool, TRUE_IS_STRICTER] = True
    evidence_ttl_days: Annotated[float, HIGHER_IS_STRICTER] = Field(730.0, gt=0, le=3650)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "operations" in data:
            # An allow-list would silently leave every operation added later unmarked (fail open).
            raise ValueError(
                "operations: replaced by exclude_operations (every operation is marked unless excluded)"
            )
        return data

    @field_validator("exclude_operations")
    @classmethod
    def _known_operations(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in OPERATION_NAMES]
        if unknown:
            raise ValueError(f"unknown operation(s) {unknown}; known: {sorted(OPERATION_NAMES)}")
        return names

    @model_validator(mode="after")
    def _think_tags(self) -> WatermarkConfig:
        for tag in self.think_tags:
            if not tag or len(tag) > 32 or not tag.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"think_tags: {tag!r} is not a tag name (letters, digits, - and _)")
        return self

    @model_validator(mode="after")
    def _unique_ids(self) -> WatermarkConfig:
        ids = [key.id for key in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError("key ids must be unique")
        return self
