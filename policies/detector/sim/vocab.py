"""Word lists and small generators the simulated personas build their prompts from."""

from __future__ import annotations

import random

TOPICS = [
    "sourdough bread",
    "a trip to Lisbon",
    "houseplants that survive low light",
    "marathon training",
    "learning the guitar",
    "the French revolution",
    "saving for retirement",
    "composting at home",
    "a job interview at a bank",
    "writing a wedding toast",
    "the life cycle of stars",
    "Roman aqueducts",
    "training a puppy",
    "fixing a leaking tap",
    "a birthday party for a seven year old",
    "the stock market",
    "electric cars",
    "learning Spanish",
    "a vegetarian dinner for six",
    "the history of jazz",
    "climate change",
    "meditation for beginners",
    "a cover letter for a nursing job",
    "black holes",
    "photosynthesis",
    "a road trip through Scotland",
    "negotiating a raise",
    "the Cold War",
    "knitting a scarf",
    "caring for an elderly parent",
    "starting a podcast",
    "the immune system",
    "buying a used car",
    "planting tomatoes",
    "the plot of Hamlet",
    "sleep hygiene",
    "renting an apartment",
    "a short poem about autumn",
    "making cold brew coffee",
    "the causes of World War One",
]
CHAT_OPENERS = [
    "Can you tell me about {topic}?",
    "I'm curious about {topic}. Where should I start?",
    "What are the most common mistakes people make with {topic}?",
    "Give me a few tips on {topic}.",
    "hey, quick question about {topic} - what do I need to know?",
    "Explain {topic} like I'm twelve.",
    "I need help with {topic}. Any advice?",
    "What's a good way to get started with {topic}?",
    "Write a short paragraph about {topic} for my newsletter.",
    "Is it true that {topic} is harder than it looks?",
    "My friend and I disagree about {topic}. What does the evidence say?",
    "What are three interesting facts about {topic}?",
    "Could you help me plan something around {topic}?",
    "I have 20 minutes, teach me the basics of {topic}.",
    "Compare two approaches to {topic} for me.",
]
CHAT_FOLLOWUPS = [
    "Thanks! Can you give me an example?",
    "Could you make that shorter?",
    "What about for a beginner?",
    "Interesting. Why is that?",
    "Can you put that in a table?",
    "ok and what would you do first?",
    "That's helpful. Any book recommendations?",
    "Can you say that more simply?",
    "What if I only have a small budget?",
    "Great, now write it in a friendlier tone.",
    "Hmm, I'm not sure that's right. Can you double check?",
    "How long would that take?",
]
NAMES = [
    "Alice",
    "Bruno",
    "Chen",
    "Dana",
    "Emeka",
    "Fatima",
    "Goran",
    "Hana",
    "Ivan",
    "Julia",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Viktor",
]
OBJECTS = [
    "apples",
    "marbles",
    "tickets",
    "books",
    "coins",
    "stickers",
    "cookies",
    "pencils",
    "boxes",
    "bottles",
    "cards",
    "shirts",
    "seeds",
    "bricks",
    "eggs",
    "plates",
]
PLACES = ["market", "school", "warehouse", "library", "bakery", "garden", "factory", "stadium", "farm"]
ERRORS = [
    "KeyError",
    "TypeError",
    "IndexError",
    "AttributeError",
    "ValueError",
    "NullPointerException",
    "segmentation fault",
    "ImportError",
    "TimeoutError",
    "deadlock",
]
CODE_NOUNS = [
    "user",
    "order",
    "invoice",
    "session",
    "cache",
    "token",
    "record",
    "payload",
    "event",
    "customer",
    "item",
    "report",
    "config",
    "message",
    "queue",
    "batch",
]
CODE_VERBS = [
    "parse",
    "load",
    "validate",
    "merge",
    "filter",
    "sort",
    "group",
    "render",
    "send",
    "retry",
    "normalize",
    "compute",
    "sync",
    "fetch",
    "serialize",
]
LANGUAGES = ["Python", "TypeScript", "Go", "Java", "Rust", "SQL", "Kotlin"]
PRODUCTS = [
    "mobile app",
    "web dashboard",
    "billing page",
    "checkout",
    "password reset",
    "search",
    "notification emails",
    "export to CSV",
    "dark mode",
    "photo upload",
    "calendar sync",
]
COMPLAINTS = [
    "crashes on launch",
    "shows a blank screen",
    "charges me twice",
    "is extremely slow",
    "logs me out every few minutes",
    "doesn't send the confirmation email",
    "rejects my card",
    "lost all my saved items",
    "shows the wrong currency",
    "freezes after the update",
]
DOC_SUBJECTS = [
    "the refund policy",
    "the on-call rotation",
    "the travel expense rules",
    "the API rate limits",
    "the data retention schedule",
    "the parental leave policy",
    "the backup procedure",
    "the security incident process",
    "the onboarding checklist",
    "the warranty terms",
]


def number(rng: random.Random, low: int = 2, high: int = 99) -> int:
    return rng.randint(low, high)


def math_problem(rng: random.Random) -> str:
    """A GSM8K-style word problem (varied names, objects, numbers)."""
    name, other = rng.sample(NAMES, 2)
    obj = rng.choice(OBJECTS)
    a, b, c = number(rng), number(rng), number(rng, 2, 9)
    forms = [
        f"{name} has {a} {obj}. {other} gives {name} {b} more, and then {name} shares them equally among "
        f"{c} friends. How many {obj} does each friend get?",
        f"A {rng.choice(PLACES)} sells {obj} at {c} dollars each. On Monday it sells {a} and on Tuesday {b}. "
        f"How much money does it make in total?",
        f"{name} reads {a} pages a day for {c} days and then {b} pages on the last day. How many pages "
        f"does {name} read altogether?",
        f"The ratio of {obj} to boxes is {c} to 1. If there are {a * c} {obj}, how many boxes are there, "
        f"and how many {obj} remain if {b} are taken away?",
        f"A train leaves at {c} am travelling {a} km per hour. Another leaves {c} hours later at {b} km per "
        f"hour. When does the second train catch up?",
        f"Find all integers x such that {a}x + {b} is divisible by {c} and x is less than {a + b}.",
        f"Prove that the sum of the first {a} odd numbers is a perfect square, then compute it.",
    ]
    return rng.choice(forms)


def logic_puzzle(rng: random.Random) -> str:
    names = rng.sample(NAMES, 3)
    return rng.choice(
        [
            f"{names[0]}, {names[1]} and {names[2]} each own a different pet. {names[0]} is allergic to "
            f"fur, {names[1]} does not own the fish. Who owns which pet?",
            f"If every {rng.choice(OBJECTS)} is heavier than a feather and some feathers are blue, what "
            f"can we conclude about blue {rng.choice(OBJECTS)}?",
            f"Three boxes are labelled wrongly: apples, oranges, mixed. You may draw one fruit from one box. "
            f"How do you relabel all {number(rng, 3, 3)} boxes?",
            f"A knight always tells the truth and a knave always lies. {names[0]} says '{names[1]} is a "
            f"knave'. {names[1]} says 'we are both knights'. What are they?",
        ]
    )


def code_snippet(rng: random.Random) -> str:
    verb, noun = rng.choice(CODE_VERBS), rng.choice(CODE_NOUNS)
    lines = [
        f"def {verb}_{noun}s(items, limit={number(rng, 5, 50)}):",
        "    result = []",
        "    for item in items:",
        f"        if item.get('{noun}_id') is None:",
        "            continue",
        f"        result.append({verb}(item))",
        "    return result[:limit]",
    ]
    if rng.random() < 0.5:
        lines.insert(1, f"    cache = load_{noun}_cache()")
    return "```python\n" + "\n".join(lines) + "\n```"


def coding_task(rng: random.Random) -> str:
    verb, noun = rng.choice(CODE_VERBS), rng.choice(CODE_NOUNS)
    lang = rng.choice(LANGUAGES)
    return rng.choice(
        [
            f"Write a {lang} function that can {verb} a list of {noun} objects and handles empty input.",
            f"Implement an LRU cache in {lang} with get and put in O(1) time.",
            f"Given an array of integers, return the length of the longest increasing subsequence ({lang}).",
            f"Design a rate limiter class in {lang} that allows {number(rng, 5, 100)} requests per minute.",
            f"Write {lang} code to {verb} {noun} records from a CSV file and report duplicates.",
            f"Solve: merge k sorted linked lists in {lang} and analyse the complexity.",
        ]
    )


def paragraph(rng: random.Random, subject: str) -> str:
    parts = [
        f"According to {subject}, requests must be submitted within {number(rng, 3, 60)} days.",
        f"Exceptions are approved by the {rng.choice(['finance', 'legal', 'HR', 'platform'])} team.",
        f"Section {number(rng, 1, 12)}.{number(rng, 1, 9)} describes the escalation path in detail.",
        f"Employees in {rng.choice(['Berlin', 'Austin', 'Nairobi', 'Osaka', 'Lima'])} follow the same rules.",
        f"The maximum amount is {number(rng, 100, 5000)} euros unless a manager signs off.",
        f"Records are kept for {number(rng, 1, 10)} years and then deleted automatically.",
        f"Questions go to the #{rng.choice(['help', 'ops', 'people', 'finance'])} channel first.",
    ]
    rng.shuffle(parts)
    return " ".join(parts[: rng.randint(3, 6)])


def ticket(rng: random.Random) -> str:
    name = rng.choice(NAMES)
    product, complaint = rng.choice(PRODUCTS), rng.choice(COMPLAINTS)
    extra = rng.choice(
        [
            f"I have tried reinstalling {number(rng, 2, 5)} times.",
            "This started after the last update.",
            f"Order number {number(rng, 10000, 99999)} is affected.",
            "I need this fixed before Friday.",
            "My colleague has the same problem on a different phone.",
        ]
    )
    return f"Hi, this is {name}. The {product} {complaint}. {extra} Please help."
