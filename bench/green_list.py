"""The green-list watermark on real SmolLM2 answers through llama.cpp: a gamma/delta grid.

    python -m bench.green_list [--prompts 24] [--tokens 300] [--accounts 1000]
        [--grid 0.25:2,0.25:2:p1,0.5:2:f0.5] [--paraphrase 0.25:2:p1] [--questions] [--json gl.json]
    python -m bench.green_list --speed 8 --grid 0.25:2:f0.5     # decode tokens/s, marked vs unmarked

Starts llama.cpp's server with SmolLM2-135M-Instruct (its own chat template; tests/llamacpp/server.py,
4 slots decoded in one batch) and, for each prompt of a fixed set (16 explanations and stories, 4 code,
4 short factual answers), asks for one unmarked answer and, per grid point ``gamma:delta[:penalties]``,
one answer marked for account ``acct-0`` with exactly the bias the gateway adds
(:func:`policies.watermark.green_list.build_layout_bias`: provider-wide plus account list, and the
end tokens of SmolLM2's ``green_list.models`` entry, ``tests.llamacpp.server.SMOLLM2_ENTRY``), sampled at
temperature 0.8 with the same seed, and with the penalties given (``p1``: ``presence_penalty`` 1,
``f0.5``: ``frequency_penalty`` 0.5, ``p1+f0.5`` both; a bare number is a presence penalty: what the
gateway's ``green_list.models[].min_presence_penalty`` / ``min_frequency_penalty`` enforce; the
unmarked answers compared with a point are sampled with the same penalties). Answers are cached on disk
(bench/green_harvest.py): a rerun costs no decoding.

Every answer is re-tokenized through ``/tokenize`` and scored (each distinct token once, unweighted:
bench.green_attrib compares the product's count-weighted test with it) with the
detector against ``--accounts`` candidate accounts. Printed per grid point, for answers cut to 200
tokens and to 300 tokens: TPR at p <= 1e-3 of the provider-wide test, attribution (Holm over the
accounts, p <= 1e-3) at 300 tokens, both after 10% of tokens are deleted or replaced at random,
false positives (unmarked answers, human text cut to the same length, and the marked answers against
1,000 accounts that exclude the one they were marked for), distinct tokens, the model's own
perplexity (raw logits) marked vs unmarked, answer accuracy on a fixed question set, decode tokens/s.
With ``--json`` the figures are written there too, with the provider TPR at 25 to 300 tokens per kind
of prompt and grid point, and drawn beside it (bench/figures.py: TPR against tokens).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import figures
from bench.green_harvest import PROMPTS, QUESTIONS, Answer, Harvester, answered, tokenize_all
from bench.token_edits import edit
from bench.watermark_eval.corpora import stdlib_docstrings
from policies.watermark.detector import candidates
from policies.watermark.green_detect import GreenListDetector
from policies.watermark.green_list import BiasMap, GreenLayout, build_layout_bias, provider_key
from policies.watermark.keys import MasterKey
from tests.llamacpp.server import SMOLLM2_ENTRY, LlamaServer
from tests.support import free_port

VOCAB = int(SMOLLM2_ENTRY["vocab_size"])  # type: ignore[call-overload]  # SmolLM2's n_vocab
END_TOKENS = tuple(int(t) for t in SMOLLM2_ENTRY["end_tokens"])  # type: ignore[attr-defined]


def bias_of(gamma: float, delta: float, account: str = "acct-0") -> BiasMap:
    """The gateway's bias for SmolLM2's model entry: both lists, its end tokens at the top level."""
    layout = GreenLayout.of(gamma, delta)
    return build_layout_bias(provider_key(MASTER), MASTER.account_key(account), VOCAB, layout, END_TOKENS)


ALPHA = 1e-3
MASTER = MasterKey("bench", b"bench-green-list-master-key-0123")
Penalties = tuple[tuple[str, float], ...]  # sorted (field, value) pairs, the request's sampling
Point = tuple[float, float, Penalties]  # gamma, delta, penalties


def parse_point(text: str) -> Point:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"{text!r}: expected gamma:delta[:p1+f0.5]")
    penalties: dict[str, float] = {}
    for item in parts[2].split("+") if len(parts) == 3 else []:
        field = {"p": "presence_penalty", "f": "frequency_penalty"}.get(item[0])
        value = float(item[1:] if field else item)
        penalties[field or "presence_penalty"] = value
    return float(parts[0]), float(parts[1]), tuple(sorted((k, v) for k, v in penalties.items() if v))


class Scorer:
    """The detector over 1,000 accounts (``acct-0`` first) and the same without ``acct-0``."""

    def __init__(self, gamma: float, accounts: int) -> None:
        names = [f"acct-{i}" for i in range(accounts + 1)]
        self.with_target = GreenListDetector(
            [MASTER],
            candidates([MASTER], names[:accounts]),
            vocab_size=VOCAB,
            gamma=gamma,
            tokenize=list,
            end_tokens=END_TOKENS,
        )
        self.others = GreenListDetector(
            [MASTER],
            candidates([MASTER], names[1:]),
            vocab_size=VOCAB,
            gamma=gamma,
            tokenize=list,
            end_tokens=END_TOKENS,
        )

    @staticmethod
    def distinct(ids: Sequence[int]) -> np.ndarray:
        unique = np.unique(np.asarray(ids, dtype=np.int64))
        return unique[(unique >= 0) & (unique < VOCAB) & ~np.isin(unique, END_TOKENS)]

    def verdict(self, ids: Sequence[int]) -> dict[str, Any]:
        result = self.with_target.score(self.distinct(ids))
        named = {name.split("@")[0] for name in result["attributed"]}
        return {
            "provider": result["provider_detected"],
            "right": "acct-0" in named,
            "wrong": len(named - {"acct-0"}),
            "scored": result["scored_tokens"],
            "log10_p": result["provider"][0]["log10_p"],
        }

    def null_hits(self, ids: Sequence[int], detector: GreenListDetector | None = None) -> tuple[int, int]:
        """(keys at raw p <= alpha, keys tested): the provider key and every account key."""
        result = (detector or self.with_target).score(self.distinct(ids))
        rows = result["provider"] + result["candidates"]
        return sum(r["p_value"] <= ALPHA for r in rows), len(rows)


def stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of a set of verdicts (what one printed line says)."""
    n = len(rows)
    if not n:
        return {"n": 0}
    return {
        "n": n,
        "provider_tpr": sum(r["provider"] for r in rows) / n,
        "attributed_right": sum(r["right"] for r in rows) / n,
        "wrong_named": sum(r["wrong"] for r in rows),
        "median_distinct": statistics.median(r["scored"] for r in rows),
        "median_log10_p": statistics.median(r["log10_p"] for r in rows),
    }


def summarise(label: str, rows: list[dict[str, Any]]) -> str:
    found = stats(rows)
    if not found["n"]:
        return f"  {label:22} n=0"
    return (
        f"  {label:22} n={found['n']:<3} provider TPR {found['provider_tpr']:.3f}  "
        f"acct-0 {found['attributed_right']:.3f}  wrong named {found['wrong_named']}  "
        f"median distinct {found['median_distinct']:.0f}  median log10 p {found['median_log10_p']:.1f}"
    )


CURVE_LENGTHS = (25, 50, 100, 150, 200, 250, 300)


def tpr_curves(
    scorer: Scorer, prompts: Sequence[tuple[str, str]], marked_ids: Sequence[list[int]], max_tokens: int
) -> dict[str, list[list[float]]]:
    """Per kind of prompt (and prose after 10% random edits): [tokens, provider TPR, answers] at each cut."""
    lengths = [n for n in CURVE_LENGTHS if n <= max_tokens]
    curves: dict[str, list[list[float]]] = {}
    for kind in dict.fromkeys(k for k, _ in prompts):
        chosen = [ids for (k, _), ids in zip(prompts, marked_ids, strict=True) if k == kind]
        curves[kind] = [
            [n, sum(scorer.verdict(ids[:n])["provider"] for ids in chosen) / len(chosen), len(chosen)]
            for n in lengths
        ]
    prose = [ids for (k, _), ids in zip(prompts, marked_ids, strict=True) if k == "prose"]
    if prose:
        rng = random.Random(11)
        curves["prose, 10% edited"] = [
            [
                n,
                sum(scorer.verdict(edit(ids[:n], 0.1, rng, VOCAB))["provider"] for ids in prose) / len(prose),
                len(prose),
            ]
            for n in lengths
        ]
    return curves


def point_label(point: Point) -> str:
    gamma, delta, penalties = point
    extra = " ".join(f"{'presence' if k.startswith('presence') else 'frequency'} {v:g}" for k, v in penalties)
    return f"green list gamma {gamma:g} delta {delta:g}" + (f", {extra}" if extra else "")


def detection(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON's ``detection`` object (bench/figures.py): one panel per kind, one line per grid point."""
    panels: dict[str, dict[str, list[list[float]]]] = {}
    for point in points:
        for kind, curve in point["tpr_curves"].items():
            panels.setdefault(kind, {})[point["label"]] = curve
    return {
        "title": "Green-list watermark on SmolLM2-135M answers (llama.cpp): provider-wide key",
        "unit": "tokens",
        "alpha": ALPHA,
        "target": {"tpr": 0.95, "at": 200},
        "panels": panels,
    }


def accuracy(answers: Sequence[Answer]) -> float:
    good = sum(answered(q, a.text) for a, (q, _) in zip(answers, QUESTIONS, strict=True))
    return good / len(QUESTIONS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=len(PROMPTS))
    parser.add_argument("--tokens", type=int, default=300, help="max_tokens (200-token figures cut these)")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--grid", type=lambda s: [parse_point(p) for p in s.split(",")], default="0.25:2")
    parser.add_argument("--paraphrase", type=parse_point, default=None, help="grid point to paraphrase")
    parser.add_argument("--questions", action="store_true", help="accuracy on the fixed question set")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here (and a .png beside)")
    parser.add_argument("--parallel", type=int, default=4, help="llama.cpp slots (and client threads)")
    # One decoding thread: on a shared, oversubscribed machine llama.cpp's two threads wait for each
    # other at every barrier (measured 0.6-0.9 tok/s with -t 2 against 24-32 with -t 1 at load 10).
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp decoding threads")
    parser.add_argument(
        "--speed",
        type=int,
        default=0,
        help="only the decode speed: N marked/unmarked pairs, one slot, alternating",
    )
    args = parser.parse_args()
    if args.speed:
        speed(args)
        return
    prompts = sorted(PROMPTS, key=lambda kp: (PROMPTS.index(kp) % 4, PROMPTS.index(kp)))[: args.prompts]
    started = time.perf_counter()
    server = LlamaServer(free_port(), args.threads, reasoning=False, parallel=args.parallel).wait_ready()
    try:
        harvester = Harvester(server.url, workers=args.parallel)
        human = [" ".join(doc.split()) for doc in stdlib_docstrings(80) if len(doc.split()) >= 250]
        human_ids = tokenize_all(server.url, human[:60])
        unmarked: dict[Penalties, list[Answer]] = {}
        for presence in sorted({p for _, _, p in args.grid}):
            sampling = dict(presence)
            bodies = [
                harvester.body(p, max_tokens=args.tokens, seed=100 + i, sampling=sampling)
                for i, (_, p) in enumerate(prompts)
            ]
            unmarked[presence] = harvester.ask_all(bodies)
        unmarked_ids = {k: tokenize_all(server.url, [a.text for a in v]) for k, v in unmarked.items()}
        points = [
            report_point(args, harvester, server.url, prompts, point, unmarked, unmarked_ids, human_ids)
            for point in args.grid
        ]
        print(f"\n{time.perf_counter() - started:.0f} s, {harvester.decoded} answers decoded (rest cached)")
    finally:
        server.stop()
    if args.json:
        settings = {
            "prompts": len(prompts),
            "max_tokens": args.tokens,
            "accounts": args.accounts,
            "vocab": VOCAB,
        }
        result = {"settings": settings, "points": points, "detection": detection(points)}
        args.json.write_text(json.dumps(result, indent=2))
        figures.draw_beside(args.json, figures.detection_figure, result["detection"])


def report_point(
    args: argparse.Namespace,
    harvester: Harvester,
    url: str,
    prompts: list[tuple[str, str]],
    point: Point,
    unmarked: dict[Penalties, list[Answer]],
    unmarked_ids: dict[Penalties, list[list[int]]],
    human_ids: list[list[int]],
) -> dict[str, Any]:
    """Prints one grid point's figures and returns them (the JSON's ``points`` entry)."""
    gamma, delta, presence = point
    sampling = dict(presence)
    bias_map = bias_of(gamma, delta)
    bias = bias_map.bias()
    bodies = [
        harvester.body(p, max_tokens=args.tokens, seed=100 + i, bias=bias, sampling=sampling)
        for i, (_, p) in enumerate(prompts)
    ]
    marked = harvester.ask_all(bodies)
    marked_ids = tokenize_all(url, [a.text for a in marked])
    scorer = Scorer(gamma, args.accounts)
    print(
        f"\n== gamma {gamma} delta {delta} {sampling or 'no penalty'}: bias map "
        f"{len(bias_map.fragment):,} bytes, {len(bias_map.ids):,} entries"
    )
    rng = random.Random(7)
    found: dict[str, Any] = {
        "label": point_label(point),
        "gamma": gamma,
        "delta": delta,
        "penalties": sampling,
        "bias_bytes": len(bias_map.fragment),
        "cuts": {},
        "tpr_curves": tpr_curves(scorer, prompts, marked_ids, args.tokens),
    }
    for cut in (200, 300):
        rows: dict[str, list[dict[str, Any]]] = {}
        for (kind, _), ids in zip(prompts, marked_ids, strict=True):
            rows.setdefault(f"marked/{kind}", []).append(scorer.verdict(ids[:cut]))
            if kind == "prose":
                rows.setdefault("marked/prose+code", []).append(scorer.verdict(ids[:cut]))
                rows.setdefault("edited10/prose", []).append(scorer.verdict(edit(ids[:cut], 0.1, rng, VOCAB)))
            elif kind == "code":
                rows.setdefault("marked/prose+code", []).append(scorer.verdict(ids[:cut]))
        length = statistics.median(min(len(i), cut) for i in marked_ids)
        print(f" cut to {cut} tokens (median length {length:.0f})")
        for label, verdicts in rows.items():
            print(summarise(label, verdicts))
        false = [scorer.null_hits(ids[:cut]) for ids in unmarked_ids[presence] + human_ids]
        others = [scorer.others.score(scorer.distinct(ids[:cut]))["attributed"] for ids in marked_ids]
        found["cuts"][str(cut)] = {
            "rows": {label: stats(verdicts) for label, verdicts in rows.items()},
            "false_positive_tests": [sum(f[0] for f in false), sum(f[1] for f in false)],
            "attributed_to_others": [sum(bool(o) for o in others), len(others)],
        }
        print(
            f"  false positives: unmarked+human {sum(f[0] for f in false)} of {sum(f[1] for f in false):,} "
            f"(document, key) tests at p <= 1e-3 ({len(false)} documents x provider + {args.accounts} "
            f"accounts); marked answers against {args.accounts} other accounts: "
            f"{sum(bool(o) for o in others)} of {len(others)} attributed"
        )
    base = unmarked[presence]
    plain = unmarked.get((), base)
    print(
        f" own perplexity median: marked {statistics.median(a.perplexity for a in marked):.2f}, unmarked "
        f"{statistics.median(a.perplexity for a in base):.2f} (same penalties), unmarked plain "
        f"{statistics.median(a.perplexity for a in plain):.2f}; distinct/length median marked "
        f"{statistics.median(len(set(i)) / max(1, len(i)) for i in marked_ids):.2f}, unmarked "
        f"{statistics.median(len(set(i)) / max(1, len(i)) for i in unmarked_ids[presence]):.2f}"
    )
    print(
        f" decode tok/s median (shared machine, batched slots): marked "
        f"{statistics.median(a.decode_per_s for a in marked):.1f}, unmarked "
        f"{statistics.median(a.decode_per_s for a in base):.1f}"
    )
    if args.questions:
        asked = [
            harvester.body(q, max_tokens=32, seed=500 + i, bias=b, sampling=sampling)
            for b in (bias, None)
            for i, (q, _) in enumerate(QUESTIONS)
        ]
        answers = harvester.ask_all(asked)
        right, plain = accuracy(answers[: len(QUESTIONS)]), accuracy(answers[len(QUESTIONS) :])
        print(f" accuracy on {len(QUESTIONS)} fixed questions: marked {right:.2f}, unmarked {plain:.2f}")
    if args.paraphrase == point:
        paraphrase(harvester, url, scorer, marked)
    return found


def speed(args: argparse.Namespace) -> None:
    """Decode tokens/s marked vs unmarked in one run: one slot, requests alternating, nothing cached."""
    server = LlamaServer(free_port(), args.threads, reasoning=False, parallel=1).wait_ready()
    try:
        harvester = Harvester(server.url, workers=1, cache=False)
        for gamma, delta, penalties in args.grid:
            bias = bias_of(gamma, delta).bias()
            rates: dict[str, list[float]] = {"marked": [], "unmarked": []}
            for i in range(args.speed):
                prompt = PROMPTS[i % 16][1]
                order = [("marked", bias), ("unmarked", None)]
                for name, b in order if i % 2 == 0 else reversed(order):
                    body = harvester.body(
                        prompt, max_tokens=128, seed=700 + i, bias=b, sampling=dict(penalties), logprobs=False
                    )
                    rates[name].append(harvester.ask(body).decode_per_s)
            marked, plain = statistics.median(rates["marked"]), statistics.median(rates["unmarked"])
            print(
                f"gamma {gamma} delta {delta} {dict(penalties) or 'no penalty'}: decode tok/s median of "
                f"{args.speed}, marked {marked:.1f}, unmarked {plain:.1f}, ratio {marked / plain:.3f}"
            )
    finally:
        server.stop()


def paraphrase(harvester: Harvester, url: str, scorer: Scorer, marked: list[Answer]) -> None:
    """The model itself (unmarked) paraphrases each marked answer; the paraphrase is tested."""
    bodies = [
        harvester.body(
            f"Paraphrase the following text in your own words:\n\n{a.text}", max_tokens=350, seed=900 + i
        )
        for i, a in enumerate(marked)
    ]
    ids = tokenize_all(url, [a.text for a in harvester.ask_all(bodies)])
    print(summarise("paraphrased (all kinds)", [scorer.verdict(i[:300]) for i in ids]))


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    main()
