"""Radioactivity of the green list: a student trained on marked answers carries the provider-wide key.

    python -m bench.radioactivity [--answers 48] [--tokens 200] [--accounts 4] [--student auto]
        [--samples 64] [--sample-tokens 128] [--steps 400] [--json report.json]   # + report.png
    python -m bench.radioactivity --tiny      # the mock model and the n-gram student: seconds (CI)

Harvests answers through the gateway (in process, on real sockets) from llama.cpp + SmolLM2-135M-
Instruct: ``--accounts`` accounts on a tier with the watermark policy of ``--config`` (the default
preset: the green list with the provider-wide and each account's key, the model's penalty floors,
from ``--presence``/``--frequency`` when the preset declares no such model; canaries in
``--canary-fraction`` of the answers, as at the ``high`` risk level), and one control account on a
tier with no policy, which sends the same penalties itself. The same
prompts (topics x styles, none from bench.green_list) and seeds go to both. Each harvest trains a
student from scratch (bench/radio_students.py: an interpolated bigram model, and a compact transformer
when PyTorch can be found), each student samples ``--samples`` sequences, and the samples,
each token id counted once over all of them, are tested for the provider-wide key (exact binomial);
``watermark probe`` runs the canary triggers through both students. Printed and, with ``--json``,
written: the p-values (also over 1, 2, 4, ... samples), sizes and times, and beside the JSON its
figure (bench/figures.py: the p-value of the marked and the control student over samples).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from bench import figures
from bench.green_harvest import Harvester, harvest_prompts, tokenize_all
from bench.radio_students import Student, find_torch, make_student
from policies.watermark.detector import candidates
from policies.watermark.green_detect import GreenListDetector
from policies.watermark.keys import MasterKey
from policies.watermark.probe import probe
from tests.support import GatewayHandle, MockHandle, base_config, digest, free_port

ROOT = Path(__file__).resolve().parent.parent
KEY_ENV = "DISTILLGUARD_WATERMARK_KEY"
BENCH_SECRET = "radioactivity-bench-master-key-0123"
CONTROL_KEY = "dg-radio-control"


@dataclass
class Backend:
    """Where answers come from and how text maps to the upstream model's token ids."""

    url: str
    model: str
    entry: dict[str, Any]  # the green_list.models entry used when the preset declares none
    tokenize: Callable[[list[str]], list[list[int]]]
    detokenize: Callable[[list[int]], str]
    stop: Callable[[], None]


def llama_backend(presence: float, frequency: float) -> Backend:
    from tests.llamacpp.server import SMOLLM2_ENTRY, LlamaServer

    server = LlamaServer(free_port(), threads=1, reasoning=False, parallel=4).wait_ready()

    def detokenize(ids: list[int]) -> str:
        response = httpx.post(f"{server.url}/detokenize", json={"tokens": ids}, timeout=60)
        response.raise_for_status()
        return str(response.json()["content"])

    # the model's entry (end tokens included), with the penalty floors of the command line
    entry = {**SMOLLM2_ENTRY, "min_presence_penalty": presence, "min_frequency_penalty": frequency}
    return Backend(
        server.url, "smollm2", entry, lambda texts: tokenize_all(server.url, texts), detokenize, server.stop
    )


def mock_backend() -> Backend:
    from gateway.mock.text import tokenize
    from gateway.mock.toymodel import toy_model

    mock = MockHandle().start()
    model = toy_model()

    longest = max(len(t) for t in model.vocab)

    def split(chunk: str) -> list[int]:
        # The mock joins biased tokens as they are ("plan" after "the" gives "theplan"): greedy
        # longest match over its vocabulary recovers them, as a BPE tokenizer would.
        out, at = [], 0
        while at < len(chunk):
            for end in range(min(len(chunk), at + longest), at, -1):
                if chunk[at:end] in model.index:
                    out.append(model.index[chunk[at:end]])
                    at = end
                    break
            else:
                at += 1  # a character no token covers (never in the mock's text)
        return out

    def ids(texts: list[str]) -> list[list[int]]:
        return [[i for t in tokenize(text) if t.strip() for i in split(t)] for text in texts]

    entry = {"match": "mock-*", "vocab_size": len(model.vocab)}
    return Backend(
        mock.url, "mock-small", entry, ids, lambda toks: " ".join(model.vocab[t] for t in toks), mock.stop
    )


def watermark_config(preset: Path, backend: Backend, canary_fraction: float) -> dict[str, Any]:
    """The preset's first-tier watermark config, with the backend's model declared when it is not."""
    data = yaml.safe_load(preset.read_text())
    tier = data["tiers"][data.get("default_tier", "free")]
    config = next(p["config"] for p in tier["policies"] if p["name"] == "watermark")
    config = json.loads(json.dumps(config))  # a copy, free of YAML anchors
    green = config.setdefault("green_list", {})
    if not green.get("enabled"):
        raise SystemExit(f"{preset}: the watermark's green_list is not enabled")
    models = green.setdefault("models", [])
    if not any(fnmatch.fnmatchcase(backend.model, m["match"].lower()) for m in models):
        models.insert(0, backend.entry)
    if canary_fraction > 0:
        config["canary"] = {**config.get("canary", {}), "enabled": True, "fraction": canary_fraction}
    return config


def start_gateway(
    backend: Backend, watermark: dict[str, Any], accounts: int
) -> tuple[GatewayHandle, list[str]]:
    keys = [f"dg-radio-{i}" for i in range(accounts)]
    config = base_config(backend.url)
    config["auth"]["keys"] += [
        {"sha256": digest(key), "account": f"acct-{i}", "tier": "free"} for i, key in enumerate(keys)
    ]
    config["auth"]["keys"].append({"sha256": digest(CONTROL_KEY), "account": "control", "tier": "pro"})
    config["tiers"]["free"]["policies"] = [{"name": "watermark", "config": watermark}]
    for upstream in config["upstreams"]:
        upstream["timeouts"] = {"connect": 5, "first_byte": 900, "idle": 300, "total": 1800}
    return GatewayHandle(config, Path(tempfile.mkdtemp(prefix="dg-radio-"))).start(), keys


def harvest(
    gateway: GatewayHandle,
    backend: Backend,
    keys: list[str],
    args: argparse.Namespace,
    penalties: dict[str, float],
    tag: str,
) -> tuple[list[str], list[str]]:
    """(marked answers, control answers): the same prompts and seeds, marked round-robin over accounts."""
    prompts = harvest_prompts(args.answers)
    marked: list[str] = [""] * len(prompts)
    for a, key in enumerate(keys):
        harvester = Harvester(
            gateway.url,
            headers={"authorization": f"Bearer {key}"},
            workers=args.parallel,
            cache=not args.tiny,
        )
        chosen = [i for i in range(len(prompts)) if i % len(keys) == a]
        bodies = [body(harvester, backend, prompts[i], args, i, {}) for i in chosen]
        for i, answer in zip(chosen, harvester.ask_all(bodies, f"{tag}:acct-{a}"), strict=True):
            marked[i] = answer.text
    control = Harvester(
        gateway.url,
        headers={"authorization": f"Bearer {CONTROL_KEY}"},
        workers=args.parallel,
        cache=not args.tiny,
    )
    sampling = {k: v for k, v in penalties.items() if v}
    bodies = [body(control, backend, p, args, i, sampling) for i, p in enumerate(prompts)]
    return marked, [a.text for a in control.ask_all(bodies, f"{tag}:control")]


def body(
    harvester: Harvester,
    backend: Backend,
    prompt: str,
    args: argparse.Namespace,
    i: int,
    sampling: dict[str, Any],
) -> dict[str, Any]:
    made = harvester.body(prompt, max_tokens=args.tokens, seed=1000 + i, sampling=sampling, logprobs=False)
    made["model"] = backend.model
    return made


def provider_test(detector: GreenListDetector, sequences: Sequence[Sequence[int]]) -> dict[str, Any]:
    """The provider-wide key over a corpus: each token id once over all sequences."""
    ids = np.unique(np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences if len(s)]))
    row = detector.score(ids[(ids >= 0) & (ids < detector.vocab_size)])["provider"][0]
    return {"tokens": int(sum(len(s) for s in sequences)), **row}


def sample_counts(total: int) -> list[int]:
    """1, 2, 4, ... samples, and all of them: where the p-value over samples is read."""
    counts = [1 << i for i in range(max(0, total).bit_length()) if 1 << i < total]
    return [*counts, total] if total else []


def student_kinds(choice: str) -> list[str]:
    """The n-gram student always (cheap, no torch); the transformer too unless ``ngram`` was chosen
    (``auto``: when torch can be found)."""
    if choice == "ngram":
        return ["ngram"]
    if choice == "auto" and not find_torch():
        return ["ngram"]
    return ["ngram", "transformer"]


def run_student(
    student: Student,
    data: list[list[int]],
    backend: Backend,
    detector: GreenListDetector,
    masters: list[MasterKey],
    args: argparse.Namespace,
) -> dict[str, Any]:
    fitted = student.fit(data)
    started = time.perf_counter()
    samples = student.sample(args.samples, args.sample_tokens, seed=11)
    sample_s = time.perf_counter() - started
    found = provider_test(detector, samples)
    curve = [
        {"samples": count, **provider_test(detector, samples[:count])}
        for count in sample_counts(len(samples))
    ]

    def ask(trigger: str) -> list[str]:
        prefix = backend.tokenize([trigger])[0]
        return [backend.detokenize(s) for s in student.sample(4, 24, seed=13, prefix=prefix)]

    probed = probe(ask, candidates(masters, [f"acct-{i}" for i in range(args.accounts)]), decoys=999)
    best = probed["results"][0]
    return {
        "student": fitted,
        "samples": {"count": len(samples), "sample_s": round(sample_s, 1), **found, "curve": curve},
        "probe": {
            "best": f"{best['account']}",
            "score": best["score"],
            "p_value": best["p_value"],
            "p_corrected": best["p_corrected"],
        },
        "example": backend.detokenize(samples[0][:40]) if samples and samples[0] else "",
    }


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "policies" / "default.yaml")
    parser.add_argument("--answers", type=int, default=48)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--presence", type=float, default=0.0, help="floor when the preset declares no model")
    parser.add_argument(
        "--frequency", type=float, default=0.5, help="floor when the preset declares no model"
    )
    parser.add_argument("--canary-fraction", type=float, default=0.1)
    parser.add_argument("--student", default="auto", choices=["auto", "transformer", "ngram"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--sample-tokens", type=int, default=128)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--tiny", action="store_true", help="the mock model and the n-gram student (CI)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.tiny and args.student == "auto":
        args.student = "ngram"  # CI: no torch
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    os.environ.setdefault(KEY_ENV, BENCH_SECRET)
    masters = [MasterKey("2026-01", os.environ[KEY_ENV].encode())]
    started = time.perf_counter()
    backend = mock_backend() if args.tiny else llama_backend(args.presence, args.frequency)
    try:
        watermark = watermark_config(args.config, backend, 0.0 if args.tiny else args.canary_fraction)
        green = watermark["green_list"]
        gamma, delta = float(green.get("gamma", 0.25)), float(green.get("delta", 2.0))
        entry = next(m for m in green["models"] if fnmatch.fnmatchcase(backend.model, m["match"].lower()))
        penalties = {
            "presence_penalty": float(entry.get("min_presence_penalty", 0.0)),
            "frequency_penalty": float(entry.get("min_frequency_penalty", 0.0)),
        }
        if float(entry.get("min_dry_multiplier", 0.0)) > 0:  # the control samples as marked requests do
            penalties["dry_multiplier"] = float(entry["min_dry_multiplier"])
            penalties["dry_allowed_length"] = float(entry.get("max_dry_allowed_length", 2))
        gateway, keys = start_gateway(backend, watermark, args.accounts)
        try:
            settings = json.dumps([watermark, os.environ[KEY_ENV]], sort_keys=True).encode()
            tag = "radio:" + hashlib.sha256(settings).hexdigest()[:16]
            harvest_started = time.perf_counter()
            marked, control = harvest(gateway, backend, keys, args, penalties, tag)
            harvest_s = time.perf_counter() - harvest_started
        finally:
            gateway.stop()
        data = {"marked": backend.tokenize(marked), "control": backend.tokenize(control)}
        detector = GreenListDetector(
            masters,
            [],
            vocab_size=int(entry["vocab_size"]),
            gamma=gamma,
            tokenize=lambda _t: [],
            end_tokens=entry.get("end_tokens", ()),
        )
        report: dict[str, Any] = {
            "settings": {
                "gamma": gamma,
                "delta": delta,
                "penalties": penalties,
                "model": backend.model,
                "accounts": args.accounts,
                "answers": args.answers,
                "max_tokens": args.tokens,
            },
            "harvest_s": round(harvest_s, 1),
            "marked_differs": sum(m != c for m, c in zip(marked, control, strict=True)),
        }
        kinds = student_kinds(args.student)
        for name, sequences in data.items():
            report[name] = {
                "harvest": {
                    "answers": len(sequences),
                    "median_tokens": statistics.median(len(s) for s in sequences),
                    **provider_test(detector, sequences),
                },
                "students": {
                    kind: run_student(
                        make_student(kind, steps=args.steps), sequences, backend, detector, masters, args
                    )
                    for kind in kinds
                },
            }
        report["total_s"] = round(time.perf_counter() - started, 1)
    finally:
        backend.stop()
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        figures.draw_beside(args.json, figures.radioactivity_figure, report)
    return report


def print_report(report: dict[str, Any]) -> None:
    s = report["settings"]
    print(
        f"green list gamma {s['gamma']} delta {s['delta']} penalty floors {s['penalties']}, "
        f"model {s['model']}, {s['answers']} answers of <= {s['max_tokens']} tokens per harvest over "
        f"{s['accounts']} accounts; harvest {report['harvest_s']} s; "
        f"{report['marked_differs']} marked answers differ from the control's"
    )
    for name in ("marked", "control"):
        r = report[name]
        h = r["harvest"]
        print(
            f"\n{name}: harvest {h['tokens']} tokens (median {h['median_tokens']} per answer), "
            f"provider key {h['hits']}/{h['scored']} distinct green, p={h['p_value']:.3g}"
        )
        for kind, found in r["students"].items():
            smp, probed = found["samples"], found["probe"]
            print(f"  {kind} student {found['student']}")
            print(
                f"    samples {smp['count']}: {smp['tokens']} tokens, {smp['scored']} distinct, "
                f"{smp['hits']} green, provider-wide p={smp['p_value']:.3g} (log10 {smp['log10_p']:.1f}), "
                f"sampled in {smp['sample_s']} s"
            )
            print(
                f"    canary probe: best {probed['best']} score {probed['score']}, "
                f"p={probed['p_value']:.3g}, corrected {probed['p_corrected']:.3g}"
            )
            print(f"    sample: {found['example'][:160]!r}")
    print(f"\ntotal {report['total_s']} s")


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    main()
