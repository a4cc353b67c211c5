"""Answers from llama.cpp + SmolLM2-135M for the green-list benches, cached on disk.

Shared by ``bench.green_list`` (the gamma/delta grid) and ``bench.radioactivity`` (the harvest):
the prompt sets, a llama.cpp server with several slots decoded in one batch, and :class:`Harvester`,
which asks for chat answers (with the model's own log-probabilities of the sampled tokens, so the
perplexity of an answer costs no second pass: llama.cpp reports them from the raw logits, before
``logit_bias`` and the other samplers) and keeps every answer in ``$DISTILLGUARD_TEST_CACHE/green/``
under the hash of its request body, so a rerun with the same settings costs no decoding.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.llamacpp.server import cache_dir

# (kind, prompt): explanations and stories (long, varied answers), code, short factual answers
PROMPTS: list[tuple[str, str]] = [
    ("prose", "Explain in detail why the sky is blue."),
    ("prose", "Describe in detail how a bicycle works."),
    ("prose", "Give five tips for learning a new language, with an example for each."),
    ("prose", "Why do leaves change colour in autumn? Explain the chemistry."),
    ("prose", "What are the benefits of regular exercise? Write a few paragraphs."),
    ("prose", "Explain how a refrigerator keeps food cold."),
    ("prose", "Write a short story about a lighthouse keeper."),
    ("prose", "How do vaccines train the immune system?"),
    ("prose", "Describe the water cycle for a ten-year-old."),
    ("prose", "What makes a good team leader? Give examples."),
    ("prose", "Explain what inflation is and why it matters."),
    ("prose", "Compare trains and planes for a 500 km trip."),
    ("prose", "How does a search engine find web pages?"),
    ("prose", "Write a polite email asking a colleague for help with a report."),
    ("prose", "What should I pack for a week of hiking? Explain each item."),
    ("prose", "Explain the rules of chess."),
    ("code", "Write a Python function that reverses a linked list, and explain it."),
    ("code", "Write a Python function to check whether a string is a palindrome, with tests."),
    ("code", "Show a SQL query that counts orders per customer and explain each clause."),
    ("code", "Write a bash script that renames all .txt files in a folder to .md."),
    ("factual", "What is the capital of Australia? Answer in one sentence."),
    ("factual", "How many days are in a leap year? Answer briefly."),
    ("factual", "Who wrote Romeo and Juliet? One sentence."),
    ("factual", "What is the boiling point of water at sea level? Briefly."),
]

# A fixed question set for answer accuracy: (question, accepted answers, lower-cased substrings)
QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("What is the capital of France?", ("paris",)),
    ("What is the capital of Japan?", ("tokyo",)),
    ("What is the capital of Italy?", ("rome",)),
    ("What is the capital of Germany?", ("berlin",)),
    ("What is the capital of Spain?", ("madrid",)),
    ("What is the largest planet in the solar system?", ("jupiter",)),
    ("Which planet is known as the red planet?", ("mars",)),
    ("What gas do plants absorb from the air for photosynthesis?", ("carbon dioxide", "co2")),
    ("What is the chemical symbol for water?", ("h2o", "h₂o")),
    ("How many legs does a spider have?", ("eight", "8")),
    ("What is the freezing point of water in degrees Celsius?", ("0", "zero")),
    ("Who wrote the play Hamlet?", ("shakespeare",)),
    ("What is the largest ocean on Earth?", ("pacific",)),
    ("How many continents are there?", ("seven", "7")),
    ("What is the opposite of hot?", ("cold",)),
    ("What colour do you get by mixing blue and yellow?", ("green",)),
    ("How many days are there in a week?", ("seven", "7")),
    ("What is 2 plus 2?", ("4", "four")),
    ("Which animal is known as the king of the jungle?", ("lion",)),
    ("What is the main language spoken in Brazil?", ("portuguese",)),
]


def answered(question: str, text: str) -> bool:
    """Whether ``text`` holds an accepted answer to ``question`` (one of QUESTIONS)."""
    return any(accepted in text.lower() for accepted in dict(QUESTIONS)[question])


# Topics x styles for the radioactivity harvest: many varied answers, none of them the grid's prompts
TOPICS = [
    "volcanoes",
    "the moon",
    "honeybees",
    "the printing press",
    "rainforests",
    "electric cars",
    "the human heart",
    "glaciers",
    "ancient Rome",
    "coffee",
    "the internet",
    "photosynthesis",
    "earthquakes",
    "the violin",
    "recycling",
    "sleep",
    "the ocean tides",
    "chess openings",
    "bread baking",
    "solar panels",
    "migrating birds",
    "the stock market",
    "museums",
    "deserts",
    "friendship",
    "trains",
    "gardening",
    "the brain",
    "clouds",
    "libraries",
    "mountains",
    "bicycles",
    "the Olympic games",
    "spiders",
    "cheese making",
    "satellites",
    "rivers",
    "kindness",
    "robots",
    "the piano",
]
# 40 more topics, a second block after the first 160 prompts (whose numbering stays as it was), so
# that attribution can be measured on 300+ distinct prose prompts
MORE_TOPICS = [
    "lighthouses",
    "octopuses",
    "the Silk Road",
    "windmills",
    "coral reefs",
    "paper making",
    "thunderstorms",
    "the telescope",
    "penguins",
    "tea",
    "maps",
    "the immune system",
    "castles",
    "bamboo",
    "jazz",
    "submarines",
    "the seasons",
    "dinosaurs",
    "clocks",
    "wolves",
    "volunteering",
    "the alphabet",
    "bridges",
    "mushrooms",
    "hot air balloons",
    "the rainbow",
    "elephants",
    "pottery",
    "airports",
    "the Arctic",
    "beekeeping",
    "board games",
    "the compass",
    "waterfalls",
    "chocolate",
    "space stations",
    "forests in winter",
    "the post office",
    "kites",
    "whales",
]
STYLES = [
    "Write a short essay about {}.",
    "Explain {} to a curious twelve-year-old.",
    "Tell a short story that involves {}.",
    "List some interesting facts about {} and explain them.",
]


def harvest_prompts(count: int) -> list[str]:
    """``count`` distinct prompts over :data:`TOPICS` x :data:`STYLES` (topics vary fastest), then
    :data:`MORE_TOPICS` x :data:`STYLES` (320 in all)."""
    blocks = (TOPICS, MORE_TOPICS)
    prompts = [style.format(topic) for topics in blocks for style in STYLES for topic in topics]
    if count > len(prompts):
        raise ValueError(f"at most {len(prompts)} harvest prompts")
    return prompts[:count]


@dataclass(frozen=True, slots=True)
class Answer:
    """One chat answer: its text, the model's own log-probability of each sampled token, timings."""

    text: str
    logprobs: list[float]
    finish_reason: str
    decode_per_s: float

    @property
    def perplexity(self) -> float:
        """The model's own perplexity of the answer (raw logits: no bias, no temperature)."""
        if not self.logprobs:
            return math.nan
        return math.exp(-sum(self.logprobs) / len(self.logprobs))

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "logprobs": self.logprobs,
            "finish_reason": self.finish_reason,
            "decode_per_s": self.decode_per_s,
        }


class Harvester:
    """Chat answers from ``url`` (llama.cpp, or a gateway in front of it), cached by request body."""

    def __init__(
        self, url: str, *, headers: dict[str, str] | None = None, workers: int = 4, cache: bool = True
    ) -> None:
        """``cache=False``: every answer is decoded (CI: the pipeline must run, not a cache read)."""
        self.url = url.rstrip("/")
        self.headers = headers or {}
        self.workers = workers
        self.folder: Path | None = cache_dir() / "green" if cache else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._client = httpx.Client(timeout=900, headers=self.headers)
        self.decoded = 0  # answers decoded in this run (not from the cache)

    def body(
        self,
        prompt: str,
        *,
        max_tokens: int,
        seed: int,
        temperature: float = 0.8,
        bias: dict[str, float] | None = None,
        sampling: dict[str, Any] | None = None,
        logprobs: bool = True,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": "smollm2",
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
            **(sampling or {}),
        }
        if logprobs:
            body["logprobs"] = True
        if bias:
            body["logit_bias"] = bias
        return body

    def ask(self, body: dict[str, Any], cache_tag: str = "") -> Answer:
        """One answer; ``cache_tag`` keeps answers through different paths (gateway, direct) apart."""
        raw = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        name = hashlib.sha256(cache_tag.encode() + b"\0" + raw).hexdigest()[:32]
        path = self.folder / f"{name}.json" if self.folder is not None else None
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            return Answer(data["text"], data["logprobs"], data["finish_reason"], data["decode_per_s"])
        response = self._client.post(
            f"{self.url}/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
        )
        response.raise_for_status()
        data = response.json()
        choice = data["choices"][0]
        entries = (choice.get("logprobs") or {}).get("content") or []
        timings = data.get("timings") or {}
        answer = Answer(
            choice["message"].get("content") or "",
            [float(e["logprob"]) for e in entries],
            str(choice.get("finish_reason")),
            float(timings.get("predicted_per_second", math.nan)),
        )
        if path is not None:
            partial = path.with_suffix(".part")
            partial.write_text(json.dumps(answer.to_json()))
            partial.replace(path)
        self.decoded += 1
        return answer

    def ask_all(self, bodies: Sequence[dict[str, Any]], cache_tag: str = "") -> list[Answer]:
        """All answers, ``workers`` at a time (llama.cpp batches its slots), in order."""
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(lambda b: self.ask(b, cache_tag), bodies))


def tokenize_all(url: str, texts: Iterable[str]) -> list[list[int]]:
    """Token ids of each text by the model's own tokenizer (llama.cpp ``/tokenize``, no special tokens)."""
    out = []
    with httpx.Client(timeout=120) as client:
        for text in texts:
            response = client.post(f"{url}/tokenize", json={"content": text, "add_special": False})
            response.raise_for_status()
            out.append(list(response.json()["tokens"]))
    return out
