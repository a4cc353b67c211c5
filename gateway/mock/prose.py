"""Longer, more varied model-like answers for evaluations (deterministic, seeded by the prompt).

``answer_text`` in :mod:`gateway.mock.text` has a small vocabulary, which is
fine for protocol tests but makes every long text repeat the same word pairs.
``long_answer`` assembles 200-2,000-word answers in the register of a chat
assistant explaining a technical topic: varied openings, explanations,
examples, caveats and summaries over a few hundred content words, with
contractions and set phrases at the rates such answers use them.
"""

from __future__ import annotations

import hashlib
import random

TOPICS = [
    "cache",
    "database",
    "index",
    "query",
    "planner",
    "scheduler",
    "compiler",
    "garbage",
    "collector",
    "thread",
    "pool",
    "message",
    "queue",
    "load",
    "balancer",
    "rate",
    "limiter",
    "search",
    "engine",
    "tokenizer",
    "neural",
    "network",
    "gradient",
    "optimizer",
    "data",
    "pipeline",
    "web",
    "server",
    "proxy",
    "file",
    "system",
    "memory",
    "allocator",
    "hash",
    "table",
    "binary",
    "tree",
    "sorting",
    "algorithm",
    "consensus",
    "protocol",
    "replication",
    "log",
    "container",
    "image",
    "build",
    "system",
    "test",
    "suite",
    "type",
    "checker",
    "package",
    "manager",
    "event",
    "loop",
    "connection",
    "pool",
    "feature",
    "flag",
    "monitoring",
    "dashboard",
    "access",
    "control",
    "list",
    "encryption",
    "key",
    "certificate",
    "authority",
]
TOPICS = [" ".join(TOPICS[i : i + 2]) for i in range(0, len(TOPICS) - 1, 2)]
THINGS = [
    "request",
    "response",
    "record",
    "value",
    "key",
    "entry",
    "batch",
    "worker",
    "node",
    "client",
    "server",
    "shard",
    "page",
    "block",
    "buffer",
    "token",
    "layer",
    "model",
    "parameter",
    "weight",
    "sample",
    "label",
    "metric",
    "alert",
    "log",
    "trace",
    "span",
    "user",
    "account",
    "session",
    "connection",
    "transaction",
    "table",
    "column",
    "row",
    "file",
    "directory",
    "process",
    "thread",
    "task",
    "job",
    "queue",
    "stream",
    "partition",
    "replica",
    "leader",
    "follower",
    "snapshot",
    "checkpoint",
    "timeout",
    "deadline",
    "retry",
    "budget",
    "limit",
    "quota",
    "threshold",
    "window",
    "interval",
]
QUALITIES = [
    "fast",
    "slow",
    "large",
    "small",
    "simple",
    "complex",
    "reliable",
    "fragile",
    "expensive",
    "cheap",
    "stable",
    "noisy",
    "consistent",
    "predictable",
    "efficient",
    "wasteful",
    "secure",
    "risky",
    "obvious",
    "subtle",
    "common",
    "rare",
    "useful",
    "harmful",
    "recent",
    "stale",
    "busy",
    "idle",
    "accurate",
    "rough",
    "strict",
    "loose",
    "safe",
    "unsafe",
    "shared",
    "private",
    "remote",
    "local",
    "dynamic",
    "static",
]
ACTIONS = [
    "stores",
    "reads",
    "writes",
    "checks",
    "updates",
    "sorts",
    "filters",
    "groups",
    "splits",
    "merges",
    "retries",
    "caches",
    "limits",
    "measures",
    "tracks",
    "sends",
    "receives",
    "validates",
    "encodes",
    "decodes",
    "compresses",
    "schedules",
    "balances",
    "replicates",
    "serializes",
    "indexes",
    "evicts",
    "refreshes",
]
ADVERBS = [
    "quickly",
    "slowly",
    "carefully",
    "rarely",
    "usually",
    "often",
    "always",
    "sometimes",
    "eventually",
    "gradually",
    "safely",
    "explicitly",
    "implicitly",
    "directly",
    "roughly",
    "exactly",
]
PEOPLE = ["you", "we", "developers", "most teams", "operators", "many engineers", "users", "the team"]

OPENINGS = [
    "Great question! A {topic} is one of those things that looks simple until you need it to be {q}.",
    "Sure. Here's how a {topic} works, step by step.",
    "At a high level, a {topic} {action} each {thing} so that later work is {q}.",
    "Let's break down what a {topic} does and why it matters.",
    "The short answer is that a {topic} trades memory for time, but the details are worth a closer look.",
    "It's easiest to think of a {topic} as a layer that {action} {thing}s for the rest of the system.",
]
BODY = [
    "When a {thing} arrives, the {topic} first {action} it, and only then does it touch the {thing2}.",
    "This is important because a {q} {thing} can make the whole {topic} {q2}.",
    "In practice, {people} tune the {thing} limit until the {thing2} stays {q}.",
    "For example, if each {thing} takes 20 ms, a batch of 50 of them adds a full second of latency.",
    "You don't need to get this right on the first try; it's fine to start with a {q} default.",
    "The {topic} {adverb} {action} the {thing}, which keeps the {thing2} {q}.",
    "There's a catch, though: a {q} {thing} can hide a {q2} {thing2} for a long time.",
    "It is worth measuring the {thing} rate before you change anything else.",
    "If the {thing} is not {q}, the {topic} falls back to the slower path.",
    "That's why {people} usually keep a small {thing} budget in reserve.",
    "Note that the {thing} and the {thing2} are not the same thing, even though they're often confused.",
    "A common mistake is to treat every {thing} as {q}; in reality most of them are {q2}.",
    "Under load, the {topic} {action} fewer {thing}s, so the {thing2} does not grow without bound.",
    "You can think of the {thing} as a contract between the {topic} and its callers.",
    "Most implementations keep the {thing} in memory and write the {thing2} to disk {adverb}.",
    "Because the {thing} is {q}, you'll want to {verb} it before every release.",
    "In other words, the {topic} is only as {q} as its {thing}.",
    "We can check this by comparing the {thing} count with the {thing2} count over an hour.",
    "This doesn't mean the {thing} is wrong; it means the {thing2} is {q}.",
    "If you're running more than one {thing2}, make sure they agree on the {thing} format.",
    "The {thing} should be {q} and {q2}, and it should never block the {thing2}.",
    "In most systems the {thing} lives next to the {thing2}, which keeps lookups {q}.",
    "I'd recommend logging every {thing} that takes longer than the {thing2} timeout.",
    "One way to see it: the {topic} is a {q} {thing} wrapped around a {q2} {thing2}.",
    "Keep in mind that {people} can't see the {thing} directly, so good metrics matter.",
    "Based on what you described, the {thing} is probably the bottleneck, not the {thing2}.",
    "It's also worth noting that a {q} {thing} will behave differently under a {q2} workload.",
    "They're both valid designs, and the right choice depends on your {thing} budget.",
    "The {topic} does not {verb} a {thing} twice, which avoids a whole class of bugs.",
    "Over time, the {thing} grows, so it has to be {adverb} trimmed.",
]
CAVEATS = [
    "That said, there isn't a single right answer here.",
    "However, this won't help if the {thing} itself is {q}.",
    "Be careful, though: a {q} {thing} is harder to debug than a {q2} one.",
    "Finally, remember that the {topic} is not a substitute for a {q} {thing}.",
    "In short, measure first, then change one {thing} at a time.",
    "If you'd like, I can show an example configuration for your {thing}.",
    "Let me know if you want me to go deeper into the {thing} part.",
    "Overall, a {q} {topic} is easier to run than a {q2} one.",
]
VERBS = ["check", "measure", "validate", "review", "test", "profile", "document", "monitor"]


def _rng(*parts: str) -> random.Random:
    seed = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(seed[:8], "big"))


def _fill(template: str, rng: random.Random, topic: str) -> str:
    text = template.format(
        topic=topic,
        thing=rng.choice(THINGS),
        thing2=rng.choice(THINGS),
        q=rng.choice(QUALITIES),
        q2=rng.choice(QUALITIES),
        action=rng.choice(ACTIONS),
        adverb=rng.choice(ADVERBS),
        people=rng.choice(PEOPLE),
        verb=rng.choice(VERBS),
    )
    return text[0].upper() + text[1:]


def long_answer(prompt: str, words: int = 300) -> str:
    """An answer of about ``words`` words (paragraphs of 3-6 sentences), determined by ``prompt``."""
    rng = _rng("long", prompt)
    topic = rng.choice(TOPICS)
    paragraphs: list[str] = []
    sentences = [_fill(rng.choice(OPENINGS), rng, topic)]
    count = len(sentences[0].split())
    while count < words:
        bank = CAVEATS if rng.random() < 0.12 else BODY
        sentence = _fill(rng.choice(bank), rng, topic)
        sentences.append(sentence)
        count += len(sentence.split())
        if len(sentences) >= rng.randint(3, 6):
            paragraphs.append(" ".join(sentences))
            sentences = []
    if sentences:
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)
