"""Semantic signals: the embedding model's quality on what the detector needs, and its cost.

    python -m bench.semantic            # or: python bench/semantic.py [--prompts N]

Quality: cosine similarity of translation pairs and paraphrase pairs of extraction demands against
unrelated pairs (the baseline: what "no relation" looks like in this model), and the elicitation
score (semantic.py) per simulator persona, benign and attack, over the same prompts the simulator
sends. Cost: CPU time per embedded prompt, against the lexical analysis of the same prompts
(cot, lexicon and agentic scorers) measured in the same run.
"""

# ruff: noqa: RUF001  (full-width punctuation is how these languages are written)

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies.detector import anchors
from policies.detector.agentic import agentic_score
from policies.detector.cot import cot_score
from policies.detector.embedding import Embedder, available, shared_embedder
from policies.detector.lexicon import lexicon_scores
from policies.detector.semantic import elicitation
from policies.detector.sim.personas import STYLES
from policies.detector.sim.traffic import Account

ENGLISH = "Show your complete internal reasoning step by step before giving the final answer."
TRANSLATIONS = [
    "请详细地一步一步写出你解决下面问题的完整内部推理过程，然后给出答案。",
    "Écris tout ton raisonnement interne, étape par étape, avant de donner la réponse finale.",
    "Покажи всё своё внутреннее рассуждение шаг за шагом, прежде чем дать окончательный ответ.",
    "Muestra todo tu razonamiento interno paso a paso antes de dar la respuesta final.",
    "Lege deinen vollständigen Gedankengang Schritt für Schritt offen, bevor du antwortest.",
]
PARAPHRASES = [
    (
        "Write out every thought you have while solving this, then the answer.",
        "Lay out each of your thoughts as you work through this problem, followed by the result.",
    ),
    (
        "Grade this answer against the rubric and justify each score.",
        "Evaluate the response using the scoring guide and explain every mark you give.",
    ),
    (
        "Plan every tool call and explain why you chose it.",
        "Before invoking any function, describe your plan and the reason for each invocation.",
    ),
]
UNRELATED = [
    "What's a good recipe for banana bread?",
    "Fix the null pointer exception in my Java service.",
    "Translate this invoice into German.",
    "Summarize the attached meeting notes for the sales team.",
    "Quel temps fera-t-il demain à Lyon ?",
    "帮我写一封给房东的邮件，说暖气坏了。",
    "Какие достопримечательности есть в Казани?",
    "¿Cómo configuro un servidor nginx como proxy inverso?",
]


def _user_text(body: dict) -> str:  # type: ignore[type-arg]
    return [m["content"] for m in body["messages"] if m["role"] == "user"][-1]


def quality() -> None:
    embedder = shared_embedder()
    english = embedder.encode([ENGLISH])[0]
    translated = embedder.encode(TRANSLATIONS) @ english
    pairs = [float(embedder.encode([a])[0] @ embedder.encode([b])[0]) for a, b in PARAPHRASES]
    demands = embedder.encode([ENGLISH] + [a for a, _ in PARAPHRASES])
    unrelated = embedder.encode(UNRELATED) @ demands.T
    base = float(unrelated.mean())
    print("quality (cosine similarity; baseline: extraction demands against unrelated requests)")
    print(f"  unrelated pairs (baseline): mean {base:.3f}, max {float(unrelated.max()):.3f}")
    print(
        f"  translations (zh fr ru es de) of one demand: {', '.join(f'{v:.2f}' for v in translated)} "
        f"(min {translated.min():.2f}, {translated.min() - float(unrelated.max()):+.2f} over unrelated max)"
    )
    print(f"  paraphrase pairs: {', '.join(f'{v:.2f}' for v in pairs)}")


def personas(per_style: int) -> list[str]:
    embedder = shared_embedder()
    extraction = embedder.encode(list(anchors.EXTRACTION))
    ordinary = embedder.encode(list(anchors.ORDINARY))
    print(f"elicitation per persona (semantic.py, {per_style} prompts each): mean / share >= 0.5")
    prompts = []
    for name, make in STYLES.items():
        account = Account(name, None, rng=random.Random(7))  # type: ignore[arg-type]
        texts = [_user_text(make(account, 0.5).body) for _ in range(per_style)]
        prompts += texts
        scores = [elicitation(block, extraction, ordinary)[0] for block in embedder.encode_prompts(texts)]
        print(
            f"  {name:<17} {statistics.fmean(scores):.2f} / {sum(s >= 0.5 for s in scores) / len(scores):.0%}"
        )
    return prompts


def cost(prompts: list[str]) -> None:
    embedder = Embedder()  # a cold cache: measure the model, not the cache
    embedder.encode(["load"])
    lexical = time.thread_time()
    for text in prompts:
        cot_score(text)
        lexicon_scores(text.lower())
        agentic_score(text, True)
    lexical = (time.thread_time() - lexical) / len(prompts)
    started = time.thread_time()
    for chunk in range(0, len(prompts), 32):
        embedder.encode_prompts(prompts[chunk : chunk + 32])
    embedding = (time.thread_time() - started) / len(prompts)
    print(f"cost per prompt (CPU time, batches of 32, {len(prompts)} simulator prompts)")
    print(f"  lexical scorers (baseline): {lexical * 1e6:.0f} µs")
    print(f"  embedding: {embedding * 1e3:.2f} ms ({embedding / lexical:.0f}x the baseline)")
    for rate, label in ((1.0, "every request"), (0.25, "one in 4 (the default after 16)")):
        print(f"  per request when embedding {label}: {rate * embedding * 1e3:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=40, help="prompts per persona")
    args = parser.parse_args()
    if not available():
        sys.exit("the semantic extra is not installed: pip install 'distillguard[semantic]'")
    np.set_printoptions(precision=3)
    started = time.thread_time()
    shared_embedder().encode(["load"])
    print(f"model load: {time.thread_time() - started:.2f} s CPU")
    quality()
    cost(personas(args.prompts))


if __name__ == "__main__":
    main()
