"""The green-list watermark on real SmolLM2 answers through llama.cpp: detection, attribution, edits, cost.

    python -m bench.green_list [--prompts 24] [--tokens 200] [--accounts 1000] [--grid 0.25:2,0.25:4]

Starts llama.cpp's server with SmolLM2-135M-Instruct (its own chat template; tests/llamacpp/server.py)
and, for each prompt of a fixed set (explanations, code, short factual answers), asks for one unmarked
answer and, per (gamma, delta) of the grid, one answer marked for account ``acct-0`` with exactly the
bias the gateway adds (:func:`policies.watermark.green_list.build_bias`), sampled at temperature 0.8
with the same seed. Every answer is re-tokenized through ``/tokenize`` and scored with the detector
(:class:`policies.watermark.green_detect.GreenListDetector`) against ``--accounts`` candidate accounts.

Printed per (gamma, delta): TPR at p <= 1e-3 of the provider-wide test and of attribution (Holm over
the accounts) on marked answers, the same after 10% of tokens are deleted or replaced at random,
false positives on unmarked answers, on human text (standard-library docstrings, cut to the same
token count) and on answers marked for another account, the median distinct tokens scored, decode
tokens/s marked vs unmarked (llama.cpp's own timings) and the bytes the bias adds to a request.
Deterministic for a given llama.cpp build (fixed seeds); 2 shared cores: about 1 minute per 20 answers.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from typing import Any

import httpx
import numpy as np

from bench.watermark_eval.corpora import stdlib_docstrings
from policies.watermark.detector import candidates
from policies.watermark.green_detect import GreenListDetector, LlamaServerTokenizer
from policies.watermark.green_list import build_bias, provider_key
from policies.watermark.keys import MasterKey
from tests.llamacpp.server import LlamaServer
from tests.support import free_port

VOCAB = 49152  # SmolLM2's n_vocab
ALPHA = 1e-3
MASTER = MasterKey("bench", b"bench-green-list-master-key-0123")
PROMPTS = [
    ("prose", "Explain why the sky is blue."),
    ("prose", "Describe how a bicycle works."),
    ("prose", "Give three tips for learning a new language."),
    ("prose", "Why do leaves change colour in autumn?"),
    ("prose", "What are the benefits of regular exercise?"),
    ("prose", "Explain how a refrigerator keeps food cold."),
    ("prose", "Write a short story about a lighthouse keeper."),
    ("prose", "How do vaccines train the immune system?"),
    ("prose", "Describe the water cycle for a ten-year-old."),
    ("prose", "What makes a good team leader?"),
    ("prose", "Explain what inflation is and why it matters."),
    ("prose", "Compare trains and planes for a 500 km trip."),
    ("prose", "How does a search engine find web pages?"),
    ("prose", "Write a polite email asking a colleague for help."),
    ("prose", "What should I pack for a week of hiking?"),
    ("prose", "Explain the rules of chess briefly."),
    ("code", "Write a Python function that reverses a linked list."),
    ("code", "Write a Python function to check whether a string is a palindrome."),
    ("code", "Show a SQL query that counts orders per customer."),
    ("code", "Write a bash loop that renames all .txt files to .md."),
    ("factual", "What is the capital of Australia? Answer in one sentence."),
    ("factual", "How many days are in a leap year? Answer briefly."),
    ("factual", "Who wrote Romeo and Juliet? One sentence."),
    ("factual", "What is the boiling point of water at sea level? Briefly."),
]


def chat(
    client: httpx.Client, url: str, prompt: str, tokens: int, seed: int, bias: dict[str, float] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": tokens,
        "temperature": 0.8,
        "seed": seed,
    }
    if bias:
        body["logit_bias"] = bias
    return client.post(f"{url}/v1/chat/completions", json=body, timeout=600).json()


def edit(ids: list[int], rate: float, rng: random.Random) -> list[int]:
    """Each token deleted (half the time) or replaced by a random id with probability ``rate``."""
    out = []
    for token in ids:
        if rng.random() < rate:
            if rng.random() < 0.5:
                out.append(rng.randrange(VOCAB))
            continue
        out.append(token)
    return out


def verdict(detector: GreenListDetector, ids: list[int], account: str) -> tuple[bool, bool, bool, int]:
    """(provider detected, attributed to ``account``, attributed to someone else, distinct scored)."""
    distinct = np.unique(np.asarray(ids, dtype=np.int64))
    result = detector.score(distinct[(distinct >= 0) & (distinct < VOCAB)])
    named = {name.split("@")[0] for name in result["attributed"]}
    return result["provider_detected"], account in named, bool(named - {account}), result["scored_tokens"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=len(PROMPTS))
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--grid", default="0.25:2,0.25:4", help="gamma:delta pairs, comma-separated")
    parser.add_argument(
        "--foreign", action="store_true", help="also answers marked for an account not tested"
    )
    args = parser.parse_args()
    grid = [tuple(float(x) for x in pair.split(":")) for pair in args.grid.split(",")]
    # an even spread of the kinds when cut short
    prompts = sorted(PROMPTS, key=lambda kp: (PROMPTS.index(kp) % 4, PROMPTS.index(kp)))[: args.prompts]
    accounts = [f"acct-{i}" for i in range(args.accounts)]
    server = LlamaServer(free_port(), reasoning=False).wait_ready()
    try:
        tokenizer = LlamaServerTokenizer(server.url)
        client = httpx.Client()
        human = [" ".join(doc.split()) for doc in stdlib_docstrings(80) if len(doc.split()) >= 150]
        human_ids = [tokenizer.encode(doc)[: args.tokens] for doc in human[:60]]
        started = time.perf_counter()
        unmarked = [
            chat(client, server.url, p, args.tokens, 100 + i, None) for i, (_, p) in enumerate(prompts)
        ]
        unmarked_ids = [tokenizer.encode(a["choices"][0]["message"]["content"] or "") for a in unmarked]
        for gamma, delta in grid:
            detector = GreenListDetector(
                [MASTER],
                candidates([MASTER], accounts),
                vocab_size=VOCAB,
                gamma=gamma,
                tokenize=tokenizer.encode,
            )
            bias = build_bias(provider_key(MASTER), MASTER.account_key("acct-0"), VOCAB, gamma, delta)
            other = build_bias(provider_key(MASTER), MASTER.account_key("outsider"), VOCAB, gamma, delta)
            marked = [
                chat(client, server.url, p, args.tokens, 100 + i, bias.bias())
                for i, (_, p) in enumerate(prompts)
            ]
            foreign = [
                chat(client, server.url, p, args.tokens, 300 + i, other.bias())
                for i, (_, p) in enumerate(prompts)
                if args.foreign
            ]
            rng = random.Random(7)
            rows: dict[str, list[tuple[bool, bool, bool, int]]] = {}
            for (kind, _), answer in zip(prompts, marked, strict=True):
                ids = tokenizer.encode(answer["choices"][0]["message"]["content"] or "")
                rows.setdefault(f"marked/{kind}", []).append(verdict(detector, ids, "acct-0"))
                rows.setdefault("marked/all", []).append(verdict(detector, ids, "acct-0"))
                rows.setdefault("edited10/all", []).append(verdict(detector, edit(ids, 0.10, rng), "acct-0"))
            for answer in foreign:
                ids = tokenizer.encode(answer["choices"][0]["message"]["content"] or "")
                rows.setdefault("other-account", []).append(verdict(detector, ids, "acct-0"))
            rows["unmarked"] = [verdict(detector, ids, "acct-0") for ids in unmarked_ids]
            rows["human"] = [verdict(detector, ids, "acct-0") for ids in human_ids]
            size = f"bias map {len(bias.fragment)} bytes, {len(bias.ids)} entries"
            print(f"\n== gamma {gamma} delta {delta}: {size}")
            print(f"{'set':16} {'n':>3} {'provider':>9} {'acct-0':>7} {'other':>6} {'median scored':>14}")
            for name, results in rows.items():
                n = len(results)
                provider = sum(r[0] for r in results) / n
                right = sum(r[1] for r in results) / n
                wrong = sum(r[2] for r in results)
                scored = statistics.median(r[3] for r in results)
                print(f"{name:16} {n:>3} {provider:>9.3f} {right:>7.3f} {wrong:>6} {scored:>14.0f}")
            speed_marked = statistics.median(a["timings"]["predicted_per_second"] for a in marked)
            speed_plain = statistics.median(a["timings"]["predicted_per_second"] for a in unmarked)
            print(f"decode tok/s median: marked {speed_marked:.1f}, unmarked {speed_plain:.1f}")
        print(f"\n{time.perf_counter() - started:.0f} s")
    finally:
        server.stop()


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    main()
