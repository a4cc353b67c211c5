"""Attribution among many accounts with the green-list mark, on real SmolLM2 answers through llama.cpp.

    python -m bench.green_attrib [--answers 40] [--tokens 300] [--accounts 1000]
        --point ind:0.5/2:0.5/2:frequency_penalty=0.5 --point nested:0.5/2:0.5/2 ...
    python -m bench.green_attrib --cost --point ind:0.25/2:0.25/2 --point nested:0.75/1.5:0.33/3
    python -m bench.green_attrib --kind code --answers 16 --paraphrase --point nested:0.75/1.5:0.33/3:...
    python -m bench.green_attrib --speed 8 --point nested:0.75/1.5:0.33/3:frequency_penalty=0.5

A point is ``layout:gamma_p/delta_p:gamma_a/delta_a[:field=value,...]``: the provider-wide list
(fraction ``gamma_p`` of the vocabulary, bias ``delta_p``) and the account's list, either
``ind`` (an independent keyed split of fraction ``gamma_a``) or ``nested`` (a keyed subset of
fraction ``gamma_a`` *of the provider list*), each with the extra sampling fields given (what the
gateway sets on a marked request). For each point it asks llama.cpp + SmolLM2-135M-Instruct for
``--answers`` prose answers (bench.green_harvest's topics x styles, temperature 0.8, fixed seeds),
marked for ``acct-0``, and as many unmarked with the same sampling fields; answers are cached on disk.
``--kind code`` or ``--kind factual`` asks bench.green_harvest's low-entropy prompts of that kind
instead (4 each, cycled with a new seed per answer), ``--kind questions`` its 20 fixed questions
(cycled likewise) and prints how many answers, marked and unmarked, hold an accepted answer;
``--paraphrase`` has the model itself (unmarked)
paraphrase each marked answer and tests the paraphrase; ``--speed N`` only measures llama.cpp's decode
tokens/s, marked vs unmarked, in N alternating pairs on one slot (nothing cached). The bias is the
product's for SmolLM2's ``green_list.models`` entry (``tests.llamacpp.server.SMOLLM2_ENTRY``): its
``end_tokens`` at the layout's neutral level, left out of detection; ``--end-tokens none`` reproduces the
figures measured before the entry had them. ``--unmarked N`` asks only the first N prompts unmarked
(the false-positive set); ``--dump FILE`` writes every answer's token ids per point (JSON).

Printed per point: the provider-key TPR at 200 tokens (p <= 1e-3); the right account among
``--accounts`` (Holm, corrected p <= 1e-3) at 300 tokens, per answer, and with 2 and 4 answers of the
account pooled; both after 10% of the tokens are deleted or replaced at random; wrong accounts named;
false positives on unmarked answers, human text and answers
marked for an account not among the candidates; median distinct tokens; own perplexity.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from bench.green_harvest import PROMPTS, QUESTIONS, Answer, Harvester, answered, harvest_prompts, tokenize_all
from bench.green_score import ALPHA, END_TOKENS, MASTER, VOCAB, Layout, Scorer, counted, report
from bench.watermark_eval.corpora import stdlib_docstrings
from policies.watermark.green_list import GreenLayout, build_layout_bias, green_mask, provider_key
from policies.watermark.stats import BinomialTest
from tests.llamacpp.server import LlamaServer
from tests.support import free_port


@dataclass(frozen=True)
class Point:
    nested: bool
    gamma_p: float
    delta_p: float
    gamma_a: float
    delta_a: float
    sampling: tuple[tuple[str, float], ...]

    @classmethod
    def parse(cls, text: str) -> Point:
        parts = text.split(":")
        if len(parts) not in (3, 4) or parts[0] not in ("ind", "nested"):
            raise argparse.ArgumentTypeError(f"{text!r}: expected ind|nested:gp/dp:ga/da[:k=v,...]")
        gp, dp = (float(x) for x in parts[1].split("/"))
        ga, da = (float(x) for x in parts[2].split("/"))
        fields = [kv.split("=") for kv in parts[3].split(",")] if len(parts) == 4 and parts[3] else []
        return cls(parts[0] == "nested", gp, dp, ga, da, tuple(sorted((k, float(v)) for k, v in fields)))

    def label(self) -> str:
        """The ``--point`` text of this point."""
        fields = ",".join(f"{k}={v}" for k, v in self.sampling)
        kind = "nested" if self.nested else "ind"
        head = f"{kind}:{self.gamma_p}/{self.delta_p}:{self.gamma_a}/{self.delta_a}"
        return f"{head}:{fields}" if fields else head

    def layout(self) -> Layout:
        """What the detector needs of this point."""
        return Layout(self.gamma_p, self.gamma_a, self.nested)

    def sampling_dict(self) -> dict[str, Any]:
        return {k: int(v) if v == int(v) and k.endswith(("_n", "_length")) else v for k, v in self.sampling}


class Keys:
    """The provider list of one point's layout, and the bias each account's requests carry."""

    def __init__(self, point: Point, end_tokens: tuple[int, ...] = END_TOKENS) -> None:
        self.point = point
        self.end_tokens = end_tokens
        self.provider = green_mask(provider_key(MASTER), VOCAB, point.gamma_p)

    def bias(self, name: str) -> dict[str, float]:
        """Exactly what the gateway adds for account ``name`` (the product's bias map)."""
        p = self.point
        layout = GreenLayout.of(p.gamma_p, p.delta_p, p.gamma_a, p.delta_a, p.nested)
        account = MASTER.account_key(name)
        return build_layout_bias(provider_key(MASTER), account, VOCAB, layout, self.end_tokens).bias()


def cost(points: list[Point], rounds: int = 200) -> None:
    """Bytes of each point's bias and the gateway's cost of it: a map built (a cache miss) and the
    forwarded body serialised with it (every request), the points interleaved in one run."""
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 300}
    provider = provider_key(MASTER)
    times: dict[Point, dict[str, list[float]]] = {p: {"build": [], "send": []} for p in points}
    for r in range(rounds):
        for point in points:
            layout = GreenLayout.of(point.gamma_p, point.delta_p, point.gamma_a, point.delta_a, point.nested)
            t0 = time.perf_counter()
            made = build_layout_bias(provider, MASTER.account_key(f"acct-{r}"), VOCAB, layout)
            t1 = time.perf_counter()
            orjson.dumps({**body, "logit_bias": made.merged(None)})
            t2 = time.perf_counter()
            times[point]["build"].append(t1 - t0)
            times[point]["send"].append(t2 - t1)
    for point in points:
        layout = GreenLayout.of(point.gamma_p, point.delta_p, point.gamma_a, point.delta_a, point.nested)
        made = build_layout_bias(provider, MASTER.account_key("acct-0"), VOCAB, layout)
        build = statistics.median(times[point]["build"]) * 1e6
        send = statistics.median(times[point]["send"]) * 1e6
        print(
            f"{'nested' if point.nested else 'ind'} {point.gamma_p}/{point.delta_p} {point.gamma_a}/"
            f"{point.delta_a}: {len(made.fragment):,} bytes, {len(made.ids):,} entries; median of {rounds}: "
            f"map built {build:.0f} us (a cache miss), body serialised with it {send:.1f} us"
        )


def strata(keys: Keys, docs: list[np.ndarray]) -> None:
    """Independent lists: the account's hit rate among provider-green and provider-red tokens, and
    how often a test on the provider-green tokens alone beats the test on all of them."""
    own = green_mask(MASTER.account_key("acct-0"), VOCAB, keys.point.gamma_a)
    gamma = keys.point.gamma_a
    green_rate, red_rate, better = [], [], 0
    for ids in docs:
        in_p = keys.provider[ids]
        green_rate.append(own[ids][in_p].mean() if in_p.any() else np.nan)
        red_rate.append(own[ids][~in_p].mean() if (~in_p).any() else np.nan)
        whole = BinomialTest(int(own[ids].sum()), int(ids.size), gamma).p_value
        part = BinomialTest(int(own[ids][in_p].sum()), int(in_p.sum()), gamma).p_value
        better += part < whole
    print(
        f"  account hit rate among provider-green distinct tokens median {np.nanmedian(green_rate):.2f}, "
        f"among provider-red {np.nanmedian(red_rate):.2f} (null {gamma}); a test on the provider-green "
        f"tokens alone beats the test on all in {better} of {len(docs)} answers"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=40)
    parser.add_argument("--offset", type=int, default=0, help="first harvest prompt")
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--point", type=Point.parse, action="append", default=[])
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-unmarked", action="store_true", help="skip the unmarked answers (FPR)")
    parser.add_argument("--cost", action="store_true", help="only bytes and gateway us per point (no model)")
    kinds = ["prose", "code", "factual", "questions"]
    parser.add_argument("--kind", default="prose", choices=kinds, help="prompts")
    parser.add_argument("--paraphrase", action="store_true", help="also test the model's own paraphrases")
    parser.add_argument("--speed", type=int, default=0, help="only decode tokens/s: N alternating pairs")
    parser.add_argument(
        "--end-tokens",
        type=lambda s: () if s == "none" else tuple(int(t) for t in s.split(",")),
        default=END_TOKENS,
        help="the model entry's end tokens (default: SmolLM2's entry); 'none': the bias before they existed",
    )
    parser.add_argument("--unmarked", type=int, default=None, help="unmarked answers: the first N prompts")
    parser.add_argument("--dump", default=None, help="write each point's token ids here (JSON)")
    parser.add_argument("--rescore", default=None, help="only score the answers of a --dump (no model)")
    parser.add_argument(
        "--repeat-cap",
        type=lambda s: [int(c) for c in s.split(",")],
        default=[1, 3],
        help="detectors compared: 1 unweighted, 3 the product's default (a hit weighs min(count, 3))",
    )
    parser.add_argument("--draws", type=int, default=20, help="random-edit draws per answer")
    args = parser.parse_args()
    if args.rescore:
        rescore(args)
        return
    if not args.point:
        parser.error("--point is required (except with --rescore)")
    if args.cost:
        cost(args.point)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on a kill, too
    if args.speed:
        speed(args)
        return
    prompts = select_prompts(args.kind, args.offset, args.answers)
    started = time.perf_counter()
    server = LlamaServer(free_port(), args.threads, reasoning=False, parallel=args.parallel).wait_ready()
    try:
        harvester = Harvester(server.url, workers=args.parallel)
        human = [" ".join(d.split()) for d in stdlib_docstrings(80) if len(d.split()) >= 250][:40]
        human_ids = tokenize_all(server.url, human)
        names = [f"acct-{i}" for i in range(args.accounts + 1)]
        dumped: list[dict[str, Any]] = []
        for point in args.point:
            run_point(args, harvester, server.url, prompts, point, names, human_ids, dumped)
        print(f"\n{time.perf_counter() - started:.0f} s, {harvester.decoded} answers decoded (rest cached)")
    finally:
        server.stop()


def select_prompts(kind: str, offset: int, count: int) -> list[str]:
    """Prose: the harvest's topics x styles; code or factual: green_harvest's few prompts of that
    kind, cycled (each answer still gets its own seed, so repeats are new samples)."""
    if kind == "prose":
        return harvest_prompts(offset + count)[offset:]
    few = [q for q, _ in QUESTIONS] if kind == "questions" else [p for k, p in PROMPTS if k == kind]
    return [few[i % len(few)] for i in range(offset, offset + count)]


def speed(args: argparse.Namespace) -> None:
    """Decode tokens/s marked vs unmarked in one run: one slot, requests alternating, nothing cached."""
    server = LlamaServer(free_port(), args.threads, reasoning=False, parallel=1).wait_ready()
    try:
        harvester = Harvester(server.url, workers=1, cache=False)
        prompts = harvest_prompts(args.speed)
        for point in args.point:
            bias = Keys(point, args.end_tokens).bias("acct-0")
            rates: dict[str, list[float]] = {"marked": [], "unmarked": []}
            for i, prompt in enumerate(prompts):
                order = [("marked", bias), ("unmarked", None)]
                for name, b in order if i % 2 == 0 else reversed(order):
                    body = harvester.body(
                        prompt,
                        max_tokens=128,
                        seed=700 + i,
                        bias=b,
                        sampling=point.sampling_dict(),
                        logprobs=False,
                    )
                    rates[name].append(harvester.ask(body).decode_per_s)
            marked, plain = statistics.median(rates["marked"]), statistics.median(rates["unmarked"])
            print(
                f"{'nested' if point.nested else 'ind'} {point.gamma_p}/{point.delta_p} {point.gamma_a}/"
                f"{point.delta_a} {point.sampling_dict() or ''}: {len(bias):,} bias entries; decode tok/s "
                f"median of {args.speed}, marked {marked:.1f}, unmarked {plain:.1f}, "
                f"ratio {marked / plain:.3f}"
            )
    finally:
        server.stop()


def run_point(
    args: argparse.Namespace,
    harvester: Harvester,
    url: str,
    prompts: list[str],
    point: Point,
    names: list[str],
    human_ids: list[list[int]],
    dumped: list[dict[str, Any]],
) -> None:
    """Harvest one point's answers, ``--dump`` their ids (before scoring: ``--rescore`` can start at
    once), and print its figures."""
    keys = Keys(point, args.end_tokens)
    sampling = point.sampling_dict()
    bias = keys.bias("acct-0")
    t0 = time.perf_counter()
    bodies = [
        harvester.body(p, max_tokens=args.tokens, seed=100 + i, bias=bias, sampling=sampling)
        for i, p in enumerate(prompts)
    ]
    marked = harvester.ask_all(bodies)
    marked_ids = tokenize_all(url, [a.text for a in marked])
    unmarked: list[Answer] = []
    unmarked_ids: list[list[int]] = []
    if not args.no_unmarked:
        bodies = [
            harvester.body(p, max_tokens=args.tokens, seed=100 + i, sampling=sampling)
            for i, p in enumerate(prompts[: args.unmarked])
        ]
        unmarked = harvester.ask_all(bodies)
        unmarked_ids = tokenize_all(url, [a.text for a in unmarked])
    decode_s = time.perf_counter() - t0
    dumped.append(
        {
            "label": point.label(),
            "kind": args.kind,
            "offset": args.offset,
            "end_tokens": list(keys.end_tokens),
            "marked": marked_ids,
            "unmarked": unmarked_ids,
            "human": human_ids,
            "finish": [a.finish_reason for a in marked],
            "perplexity": [a.perplexity for a in marked],
        }
    )
    if args.dump:
        with open(args.dump, "wb") as out:
            out.write(orjson.dumps(dumped))
    length = statistics.median(len(i) for i in marked_ids)
    print(
        f"\n== {args.kind}, {'nested' if point.nested else 'ind'} provider "
        f"{point.gamma_p}/{point.delta_p} account "
        f"{point.gamma_a}/{point.delta_a} {sampling or 'no extra sampling'}: {len(marked_ids)} answers "
        f"({decode_s:.0f} s to harvest, median {length:.0f} tokens), bias entries {len(bias):,}, end tokens "
        f"{list(keys.end_tokens)}; ended on their own {sum(a.finish_reason == 'stop' for a in marked)}"
    )
    for cap in args.repeat_cap:
        report(
            point.layout(),
            names,
            cap,
            marked_ids,
            unmarked_ids,
            human_ids,
            tokens=args.tokens,
            draws=args.draws,
            offset=args.offset,
            end_tokens=keys.end_tokens,
        )
    if not point.nested:
        strata(keys, [counted(i[: args.tokens], keys.end_tokens)[0] for i in marked_ids])
    if unmarked:
        print(
            f"  own perplexity median marked {statistics.median(a.perplexity for a in marked):.2f}, unmarked "
            f"{statistics.median(a.perplexity for a in unmarked):.2f}; distinct/length marked "
            f"{statistics.median(len(set(i)) / max(1, len(i)) for i in marked_ids):.2f}, unmarked "
            f"{statistics.median(len(set(i)) / max(1, len(i)) for i in unmarked_ids):.2f}"
        )
    else:
        print(f"  own perplexity median marked {statistics.median(a.perplexity for a in marked):.2f}")
    if args.kind == "questions":
        right = [
            sum(answered(p, a.text) for p, a in zip(prompts, got, strict=False)) for got in (marked, unmarked)
        ]
        print(f"  right answers: marked {right[0]} of {len(marked)}, unmarked {right[1]} of {len(unmarked)}")
    if args.paraphrase:
        paraphrased(args, harvester, url, marked, keys, names)


def paraphrased(
    args: argparse.Namespace,
    harvester: Harvester,
    url: str,
    marked: list[Answer],
    keys: Keys,
    names: list[str],
) -> None:
    """The model itself, unmarked, paraphrases each marked answer; each paraphrase is tested."""
    bodies = [
        harvester.body(
            f"Paraphrase the following text in your own words:\n\n{a.text}", max_tokens=350, seed=900 + i
        )
        for i, a in enumerate(marked)
    ]
    ids = tokenize_all(url, [a.text for a in harvester.ask_all(bodies)])
    docs = [counted(i[: args.tokens], keys.end_tokens) for i in ids]
    n = len(docs)
    for cap in args.repeat_cap:
        scorer = Scorer(keys.point.layout(), names[: args.accounts], cap, keys.end_tokens)
        print(
            f"  paraphrased by the model (unmarked), up to {args.tokens} tokens, median "
            f"{statistics.median(d[0].size for d in docs):.0f} distinct, cap {cap}: provider TPR "
            f"{sum(scorer.provider_p(d) <= ALPHA for d in docs) / n:.3f}, right account "
            f"{sum('acct-0' in scorer.attributed(d) for d in docs) / n:.3f} (n={n})"
        )


def rescore(args: argparse.Namespace) -> None:
    """The figures again from a ``--dump`` (no model: the answers' token ids are in the file)."""
    names = [f"acct-{i}" for i in range(args.accounts + 1)]
    with open(args.rescore, "rb") as source:
        for entry in orjson.loads(source.read()):
            point = Point.parse(entry["label"])
            end_tokens = tuple(entry["end_tokens"])
            print(
                f"\n== {entry['kind']} {entry['label']} from {args.rescore}: {len(entry['marked'])} answers"
            )
            for cap in args.repeat_cap:
                report(
                    point.layout(),
                    names,
                    cap,
                    entry["marked"],
                    entry["unmarked"],
                    entry["human"],
                    tokens=args.tokens,
                    draws=args.draws,
                    offset=entry["offset"],
                    end_tokens=end_tokens,
                )


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    main()
