"""The upstream model's own tokenizer, which green-list detection re-tokenizes text with.

Three sources, configured per ``green_list.models`` entry: the model's llama.cpp server
(``tokenizer_url``: its ``/tokenize`` endpoint), a Hugging Face ``tokenizer.json``
(``tokenizer_json``), or the model's GGUF file (``tokenizer_gguf``: the vocabulary and merges in its
metadata, rebuilt as a byte-level BPE). The last two run in process and need the optional
``tokenizer`` extra (``tokenizers``; ``gguf`` for the GGUF file). A control token written out in the
text (``<|im_end|>``) is read as that token, as llama.cpp's ``/tokenize`` reads it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Protocol


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...


class LlamaServerTokenizer:
    """A llama.cpp server's ``POST /tokenize`` (the model's own vocabulary, no special tokens added)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        import httpx  # here: a served worker that never detects does not keep httpx in memory

        self._client = httpx.Client(timeout=timeout)

    def encode(self, text: str) -> list[int]:
        response = self._client.post(f"{self.url}/tokenize", json={"content": text, "add_special": False})
        response.raise_for_status()
        tokens = response.json().get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise ValueError(f"{self.url}/tokenize did not answer a list of token ids")
        return tokens


class HuggingFaceTokenizer:
    """A ``tokenizers.Tokenizer``: read from a ``tokenizer.json`` (:meth:`from_json`) or built."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def from_json(cls, path: str | Path) -> HuggingFaceTokenizer:
        hf = _import("tokenizers", "tokenizer_json")
        try:
            return cls(hf.Tokenizer.from_file(str(path)))
        except Exception as exc:  # the library raises its own error types for unreadable files
            raise ValueError(f"{path}: not a readable tokenizer.json ({exc})") from exc

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)


# llama.cpp's pre-tokenizer (``tokenizer.ggml.pre``, src/llama-vocab.cpp) as Hugging Face splits: each
# name maps to whether digits are split one by one before the GPT-2 pattern. Only these two are read
# (checked against llama.cpp's own /tokenize in tests/llamacpp); any other is refused, never guessed.
_GGUF_PRE_SPLITS_DIGITS = {"gpt2": False, "smollm": True}
_CONTROL = 3  # llama_token_type LLAMA_TOKEN_TYPE_CONTROL


def gguf_tokenizer(path: str | Path) -> HuggingFaceTokenizer:
    """The byte-level BPE tokenizer in a GGUF file's metadata; ValueError names what it cannot read."""
    gguf = _import("gguf", "tokenizer_gguf")
    hf = _import("tokenizers", "tokenizer_gguf")
    try:
        fields = gguf.GGUFReader(str(path)).fields
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable GGUF file ({exc})") from exc

    def field(name: str, default: Any = None) -> Any:
        found = fields.get(name)
        if found is None:
            if default is None:
                raise ValueError(f"{path}: no {name} in the GGUF metadata")
            return default
        return found.contents()

    model, pre = field("tokenizer.ggml.model"), field("tokenizer.ggml.pre", "default")
    if model != "gpt2" or pre not in _GGUF_PRE_SPLITS_DIGITS:
        raise ValueError(
            f"{path}: a {model!r} tokenizer with the {pre!r} pre-tokenizer is not read from GGUF here "
            f"(byte-level BPE with the {' or '.join(sorted(_GGUF_PRE_SPLITS_DIGITS))} pre-tokenizer only); "
            "use tokenizer_url (the model's llama.cpp server) or tokenizer_json"
        )
    tokens: list[str] = field("tokenizer.ggml.tokens")
    kinds = field("tokenizer.ggml.token_type", [])
    merges = [tuple(m.split(" ", 1)) for m in field("tokenizer.ggml.merges")]
    tokenizer = hf.Tokenizer(hf.models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    splits = [hf.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    if _GGUF_PRE_SPLITS_DIGITS[pre]:
        splits.insert(0, hf.pre_tokenizers.Digits(individual_digits=True))
    tokenizer.pre_tokenizer = hf.pre_tokenizers.Sequence(splits)
    tokenizer.decoder = hf.decoders.ByteLevel()
    # llama.cpp's token type 3 is CONTROL (<|im_end|>): matched whole wherever the text spells it.
    tokenizer.add_special_tokens([t for t, kind in zip(tokens, kinds, strict=False) if kind == _CONTROL])
    return HuggingFaceTokenizer(tokenizer)


def make_tokenizer(
    url: str | None, tokenizer_json: str | None, tokenizer_gguf: str | None = None
) -> Tokenizer:
    """The first source configured: the server, the tokenizer.json, the GGUF file."""
    if url:
        return LlamaServerTokenizer(url)
    if tokenizer_json:
        return HuggingFaceTokenizer.from_json(tokenizer_json)
    if tokenizer_gguf:
        return gguf_tokenizer(tokenizer_gguf)
    raise ValueError(
        "the green-list detector needs the model's tokenizer: a tokenizer URL, tokenizer.json or GGUF file"
    )


def cached_tokenizer(
    url: str | None, tokenizer_json: str | None, tokenizer_gguf: str | None = None
) -> Tokenizer:
    """:func:`make_tokenizer`, kept for the next call while the file it read is unchanged (the admin
    API's detector: a GGUF file takes seconds to read, a server's client keeps its connections)."""
    path = None if url else tokenizer_json or tokenizer_gguf
    try:
        stamp = Path(path).stat() if path else None
    except OSError:
        stamp = None  # the reader names the missing file
    version = (stamp.st_mtime_ns, stamp.st_size) if stamp else None
    return _cached(url, tokenizer_json, tokenizer_gguf, version)


@functools.lru_cache(maxsize=8)
def _cached(
    url: str | None, tokenizer_json: str | None, tokenizer_gguf: str | None, version: object
) -> Tokenizer:
    return make_tokenizer(url, tokenizer_json, tokenizer_gguf)


def _import(name: str, option: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:  # an optional dependency: say what to install
        raise ValueError(
            f"{option} needs the `{name}` package (pip install 'distillguard[tokenizer]')"
        ) from exc
