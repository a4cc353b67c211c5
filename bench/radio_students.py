"""Students for the radioactivity bench: models trained from scratch on harvested token ids.

A student's vocabulary is the upstream model's token ids (SmolLM2's, or the mock's), so what it
samples is tested for the green list by counting green ids directly, as the detector does after
re-tokenizing text. Two kinds:

* :class:`TransformerStudent`: a compact causal transformer (PyTorch, CPU). PyTorch is never part of
  the default install: the bench runs it from a separate environment
  (``/work/venvs/torch/bin/pip install torch==2.13.0``, see docs/watermark.md). Its output layer
  covers the token ids seen in training (a student trained from scratch puts almost no mass on the
  others anyway; leaving them out makes a 49,152-token softmax a few-thousand-token one on CPU).
* :class:`NgramStudent`: an interpolated bigram model (numpy only): the fallback when PyTorch is
  missing, and what CI runs. It learns exactly the statistic the green list shifts (which tokens
  are used), so it shows the pipeline end to end in seconds.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

BOS, EOS = -1, -2  # sequence markers of the n-gram student (never token ids)


class Student(Protocol):
    name: str

    def fit(self, sequences: Sequence[Sequence[int]]) -> dict[str, Any]: ...

    def sample(self, count: int, length: int, seed: int, prefix: Sequence[int] = ()) -> list[list[int]]: ...


class NgramStudent:
    """P(w | v) = (c(v, w) + beta * P(w)) / (c(v) + beta): bigram counts smoothed by unigram counts."""

    name = "ngram"

    def __init__(self, beta: float = 2.0) -> None:
        self.beta = beta
        self._next: dict[int, Counter[int]] = defaultdict(Counter)
        self._unigram: Counter[int] = Counter()

    def fit(self, sequences: Sequence[Sequence[int]]) -> dict[str, Any]:
        started = time.perf_counter()
        for seq in sequences:
            padded = [BOS, *seq, EOS]
            self._unigram.update(padded[1:])
            for prev, token in itertools.pairwise(padded):
                self._next[prev][token] += 1
        self._uni_ids = np.array(list(self._unigram), dtype=np.int64)
        counts = np.array([self._unigram[t] for t in self._uni_ids], dtype=float)
        self._uni_p = counts / counts.sum()
        return {
            "kind": self.name,
            "parameters": sum(len(c) for c in self._next.values()),
            "train_s": round(time.perf_counter() - started, 3),
        }

    def sample(self, count: int, length: int, seed: int, prefix: Sequence[int] = ()) -> list[list[int]]:
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(count):
            prev, seq = (prefix[-1] if prefix else BOS), []
            for _ in range(length):
                following = self._next.get(prev)
                total = sum(following.values()) if following else 0
                if following and rng.random() < total / (total + self.beta):
                    ids = list(following)
                    p = np.array([following[t] for t in ids], dtype=float)
                    token = ids[int(rng.choice(len(ids), p=p / p.sum()))]
                else:
                    token = int(self._uni_ids[rng.choice(len(self._uni_ids), p=self._uni_p)])
                if token == EOS:
                    break
                seq.append(token)
                prev = token
            out.append(seq)
        return out


class TransformerStudent:
    """A small pre-norm causal transformer with tied embeddings, trained with AdamW on random windows."""

    name = "transformer"

    def __init__(
        self,
        dim: int = 128,
        layers: int = 2,
        heads: int = 4,
        context: int = 64,
        steps: int = 300,
        batch: int = 16,
        lr: float = 3e-3,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        import torch  # only here: the n-gram student and CI need no torch

        self.torch = torch
        self.dim, self.layers, self.heads, self.context = dim, layers, heads, context
        self.steps, self.batch, self.lr, self.seed = steps, batch, lr, seed
        torch.set_num_threads(threads)  # a shared machine: more threads only wait for each other

    def _network(self, vocab: int) -> Any:
        torch = self.torch
        nn = torch.nn
        dim, context = self.dim, self.context

        class Net(nn.Module):  # type: ignore[misc]
            def __init__(self, layers: int, heads: int) -> None:
                super().__init__()
                self.embed = nn.Embedding(vocab, dim)
                self.position = nn.Embedding(context, dim)
                layer = nn.TransformerEncoderLayer(
                    dim, heads, 4 * dim, dropout=0.1, batch_first=True, norm_first=True
                )
                self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
                self.norm = nn.LayerNorm(dim)

            def forward(self, x: Any) -> Any:
                length = x.shape[1]
                h = self.embed(x) + self.position(torch.arange(length))
                mask = nn.Transformer.generate_square_subsequent_mask(length)
                h = self.norm(self.blocks(h, mask=mask, is_causal=True))
                return h @ self.embed.weight.T  # tied output layer

        return Net(self.layers, self.heads)

    def fit(self, sequences: Sequence[Sequence[int]]) -> dict[str, Any]:
        torch = self.torch
        started = time.perf_counter()
        torch.manual_seed(self.seed)
        self.ids = np.array(sorted({t for seq in sequences for t in seq}), dtype=np.int64)
        index = {int(t): i for i, t in enumerate(self.ids)}
        self.bos, self.eos = len(self.ids), len(self.ids) + 1
        stream: list[int] = []
        for seq in sequences:
            stream += [self.bos, *(index[int(t)] for t in seq), self.eos]
        data = torch.tensor(stream, dtype=torch.long)
        self.net = self._network(len(self.ids) + 2)
        optimiser = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, self.lr, total_steps=self.steps)
        generator = torch.Generator().manual_seed(self.seed)
        self.net.train()
        losses = []
        for _ in range(self.steps):
            starts = torch.randint(0, len(data) - self.context - 1, (self.batch,), generator=generator)
            window = torch.stack([data[s : s + self.context + 1] for s in starts.tolist()])
            logits = self.net(window[:, :-1])
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), window[:, 1:].reshape(-1)
            )
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
        self.net.eval()
        return {
            "kind": self.name,
            "parameters": sum(p.numel() for p in self.net.parameters()),
            "vocabulary": len(self.ids),
            "steps": self.steps,
            "final_loss": round(sum(losses[-20:]) / min(20, len(losses)), 3),
            "train_s": round(time.perf_counter() - started, 1),
        }

    def sample(self, count: int, length: int, seed: int, prefix: Sequence[int] = ()) -> list[list[int]]:
        torch = self.torch
        generator = torch.Generator().manual_seed(seed)
        lookup = {int(t): i for i, t in enumerate(self.ids)}
        start = [self.bos, *(lookup[int(t)] for t in prefix if int(t) in lookup)]
        x = torch.tensor([start] * count, dtype=torch.long)
        done = torch.zeros(count, dtype=torch.bool)
        out: list[list[int]] = [[] for _ in range(count)]
        with torch.no_grad():
            for _ in range(length):
                logits = self.net(x[:, -self.context :])[:, -1]
                logits[:, self.bos] = -float("inf")
                token = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
                x = torch.cat([x, token], dim=1)
                for row, value in enumerate(token[:, 0].tolist()):
                    if done[row] or value == self.eos:
                        done[row] = True
                    else:
                        out[row].append(int(self.ids[value]))
                if bool(done.all()):
                    break
        return out


TORCH_VENV = os.environ.get("DISTILLGUARD_TORCH_VENV", "/work/venvs/torch")


def find_torch() -> bool:
    """Whether torch imports: from this environment, else from ``$DISTILLGUARD_TORCH_VENV``'s
    site-packages, appended to the path (after this environment's, so numpy stays ours)."""
    if importlib.util.find_spec("torch") is not None:
        return True
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = Path(TORCH_VENV) / "lib" / version / "site-packages"
    if (site / "torch").is_dir() and str(site) not in sys.path:
        sys.path.append(str(site))
        importlib.invalidate_caches()
    return importlib.util.find_spec("torch") is not None


def make_student(kind: str, **options: Any) -> Student:
    """``transformer`` (needs torch), ``ngram``, or ``auto``: the transformer when torch imports."""
    if kind in ("auto", "transformer") and not find_torch():
        if kind == "transformer":
            raise SystemExit(
                f"the transformer student needs torch (pip install torch==2.13.0 into {TORCH_VENV})"
            )
        kind = "ngram"
    if kind == "auto":
        kind = "transformer"
    if kind == "ngram":
        return NgramStudent()
    if kind == "transformer":
        return TransformerStudent(**options)
    raise ValueError(f"unknown student {kind!r}: transformer, ngram or auto")
