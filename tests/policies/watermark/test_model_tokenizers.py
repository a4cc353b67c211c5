"""The model's tokenizer for green-list detection, read in process from a GGUF file or a tokenizer.json.

Tiny GGUF files written here with the ``gguf`` package's own writer; the real SmolLM2 file against
llama.cpp's ``/tokenize`` is in tests/llamacpp/test_green_list.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gguf import GGUFWriter

from policies.watermark.config import GreenListModel
from policies.watermark.model_tokenizers import (
    HuggingFaceTokenizer,
    LlamaServerTokenizer,
    cached_tokenizer,
    gguf_tokenizer,
    make_tokenizer,
)
from tests.support import GatewayHandle, MockHandle, base_config

# Byte-level symbols: "Ġ" is the space. Merges are ranked: " a" first, then " ab", then "ab".
TOKENS = ["<|end|>", "a", "b", "Ġ", "1", "2", "ab", "Ġa", "Ġab"]
MERGES = ["Ġ a", "Ġa b", "a b"]
TYPES = [3, 1, 1, 1, 1, 1, 1, 1, 1]  # the first a control token


def write_gguf(path: Path, model: str = "gpt2", pre: str | None = "smollm", merges: bool = True) -> Path:
    writer = GGUFWriter(str(path), arch="llama")
    writer.add_tokenizer_model(model)
    if pre is not None:
        writer.add_tokenizer_pre(pre)
    writer.add_token_list(TOKENS)
    if merges:
        writer.add_token_merges(MERGES)
    writer.add_token_types(TYPES)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_gguf_files_bpe_tokenizes_as_its_merges_and_pre_tokenizer_say(tmp_path: Path) -> None:
    tokenizer = gguf_tokenizer(write_gguf(tmp_path / "m.gguf"))
    # smollm splits digits one by one before the GPT-2 pattern: "12" is two pieces.
    assert tokenizer.encode("ab ab 12") == [6, 8, 3, 4, 5]
    assert tokenizer.encode("ab<|end|>") == [6, 0]  # a control token spelled out is that token
    gpt2 = gguf_tokenizer(write_gguf(tmp_path / "g.gguf", pre="gpt2"))
    assert gpt2.encode("ab ab") == [6, 8]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"pre": "llama-bpe"}, "'llama-bpe' pre-tokenizer"),  # another split pattern: never guessed
        ({"model": "llama"}, "a 'llama' tokenizer"),  # SentencePiece, not byte-level BPE
        ({"merges": False}, "no tokenizer.ggml.merges"),
    ],
)
def test_what_the_reader_cannot_rebuild_is_refused_naming_the_file(
    tmp_path: Path, kwargs: dict[str, Any], named: str
) -> None:
    path = write_gguf(tmp_path / "m.gguf", **kwargs)
    with pytest.raises(ValueError, match=named) as raised:
        gguf_tokenizer(path)
    assert str(path) in str(raised.value)


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        gguf_tokenizer(path)
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        gguf_tokenizer(tmp_path / "missing.gguf")


def test_a_tokenizer_json_reads_as_the_tokenizer_it_was_saved_from(tmp_path: Path) -> None:
    built = gguf_tokenizer(write_gguf(tmp_path / "m.gguf"))
    built.tokenizer.save(str(tmp_path / "tokenizer.json"))
    loaded = HuggingFaceTokenizer.from_json(tmp_path / "tokenizer.json")
    for text in ("ab ab 12", "ab<|end|> a", "b2a1"):
        assert loaded.encode(text) == built.encode(text)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match=r"not a readable tokenizer\.json"):
        HuggingFaceTokenizer.from_json(tmp_path / "broken.json")


def test_the_first_configured_source_is_used(tmp_path: Path) -> None:
    gguf = str(write_gguf(tmp_path / "m.gguf"))
    assert isinstance(make_tokenizer("http://127.0.0.1:9", None, gguf), LlamaServerTokenizer)
    assert make_tokenizer(None, None, gguf).encode("ab") == [6]
    with pytest.raises(ValueError, match=r"tokenizer URL, tokenizer\.json or GGUF file"):
        make_tokenizer(None, None, None)


def test_a_model_entry_takes_a_gguf_file() -> None:
    entry = GreenListModel(match="smollm2*", vocab_size=49152, tokenizer_gguf="/models/smollm2.gguf")
    assert entry.tokenizer_gguf == "/models/smollm2.gguf"


def test_the_admin_apis_tokenizer_is_read_once_while_its_file_is_unchanged(tmp_path: Path) -> None:
    path = str(write_gguf(tmp_path / "m.gguf"))
    first = cached_tokenizer(None, None, path)
    assert cached_tokenizer(None, None, path) is first
    write_gguf(tmp_path / "m.gguf", pre="llama-bpe")  # replaced (another size): read again
    with pytest.raises(ValueError, match="'llama-bpe' pre-tokenizer"):
        cached_tokenizer(None, None, path)
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        cached_tokenizer(None, None, str(tmp_path / "missing.gguf"))


@pytest.mark.parametrize("readable", [True, False])
def test_the_admin_detector_reads_a_gguf_tokenizer_or_says_which_file_it_cannot(
    start_gateway: Callable[..., GatewayHandle],
    mock_upstream: MockHandle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    readable: bool,
) -> None:
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", "admin-gguf-master-key-0123456789")
    monkeypatch.setenv("DG_TEST_ADMIN", "admin-token")
    path = tmp_path / "model.gguf"
    if readable:
        write_gguf(path)
    else:
        path.write_bytes(b"GGUF? no")
    model = {"match": "mock-*", "vocab_size": len(TOKENS), "tokenizer_gguf": str(path)}
    config = base_config(mock_upstream.url)
    config["admin"] = {"token_env": "DG_TEST_ADMIN"}
    config["tiers"]["free"]["policies"] = [
        {"name": "watermark", "config": {"green_list": {"enabled": True, "models": [model]}}}
    ]
    gw = start_gateway(config)
    body = {"texts": ["ab ab 12"], "accounts": ["free"], "scheme": "green_list", "model": "mock-small"}
    response = gw.admin("POST", "/watermark/detect", "admin-token", json=body)
    if readable:
        assert response.status_code == 200, response.text
        # "ab ab 12" is the ids 6, 8, 3, 4, 5 in this file's vocabulary: five distinct tokens scored
        assert response.json()["corpus"]["scored_tokens"] == 5
    else:
        assert response.status_code == 503
        error = response.json()["error"]
        assert str(path) in error["message"] and "not a readable GGUF file" in error["message"]
