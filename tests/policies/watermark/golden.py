"""A golden record of the marker's output, so that optimisations can be checked byte for byte.

    python -m tests.policies.watermark.golden   # rewrite golden_marker.json (only for an intended change)

The corpus (mock answers, the test texts with protected spans and think tags,
hand-written edge cases, stdlib docstrings) is stored in the file itself, so the
record does not move when the mock, the test texts or Python change. For each
text, strength (exact, near) and tripwire (off, on) the marker runs over three
chunkings (whole, one-token deltas, seeded random pieces); a digest of every
output, the sync points and the counters is kept, and one of the detector's
units (``collect_units``) per text and strength.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from policies.watermark.marker import LexicalSettings, TextMarker, collect_units
from policies.watermark.unicode_mark import UnicodeMarker

PATH = Path(__file__).with_name("golden_marker.json")
KEY = bytes(range(32))
STRENGTHS = ("exact", "near")
EDGE = [
    "It is   not\tclear\n    indented code it is not\n\n~~~\nit is not\n~~~\nit is not done.",
    "A " + "verylongword" * 6 + " it is not, and " + "x" * 49 + "\n\nwe do not know.",
    "$$ it is not $$ and $5 it is not; `` a ` b `` it is not 'quoted it is' and ' lone it is.",
    "\u2018it is not\u2019 we don\u2019t \u201cit is\u201d; {it is {not}} it is} not.",
    "<think>it is not</think> it is not <think>still it is",
    "</think>it is not\n> quoted it is not\nit is not (it is) [it is] *it is* _it is_ it's.",
    "I'd say it's a thing, it's been done; It's over. IT IS NOT. It Is Not.",
    "\n\n  \n it is not \n\t\n\nit is not ",
    "1. it is not\n2) it is not\n- it is\n# It is not\n| it is |",
]


def corpus() -> list[str]:
    """Build the corpus afresh (only when writing the record)."""
    import inspect
    import textwrap
    from collections import OrderedDict

    from gateway.mock.prose import long_answer
    from tests.policies.watermark.test_marker import THINK
    from tests.policies.watermark.texts import sample_text

    rng = random.Random(20261203)
    out = [long_answer(f"golden {i}", words=250) for i in range(24)]
    out += [sample_text([rng.randrange(201) for _ in range(rng.randint(3, 14))]) for _ in range(30)]
    for _ in range(8):
        parts = [sample_text([rng.randrange(201) for _ in range(4)]) for _ in range(3)]
        out.append(rng.choice(THINK).join(parts))
    out += EDGE
    out += [(inspect.getdoc(thing) or "")[:4000] for thing in (textwrap, json, OrderedDict, random.Random)]
    return out


def _pieces(text: str, seed: int) -> list[list[str]]:
    from gateway.mock.text import tokenize

    rng = random.Random(seed)
    sizes, at = [], 0
    while at < len(text):
        sizes.append(text[at : at + rng.randint(1, 12)])
        at += len(sizes[-1])
    return [[text], tokenize(text), sizes]


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()[:32]


def record(texts: list[str]) -> dict[str, str]:
    """Digest of every marked output and unit list, by case name."""
    out: dict[str, str] = {}
    for index, text in enumerate(texts):
        pieces = _pieces(text, index)
        think = ("think",) if "think>" in text else ()
        for strength in STRENGTHS:
            settings = LexicalSettings(strength=strength)
            for tripwire in (False, True):
                runs = []
                for chunks in pieces:
                    for think_open in (False, True) if think else (False,):
                        unicode_marker = UnicodeMarker(KEY, 0.5) if tripwire else None
                        marker = TextMarker(KEY, settings, unicode_marker, None, think, think_open)
                        outputs = [marker.feed(chunk) for chunk in chunks] + [marker.finish()]
                        counts = (marker.words, marker.unicode_marks, marker.substitutions)
                        runs.append([outputs, marker.sync, counts, marker.protected])
                out[f"{index}/{strength}/{'tripwire' if tripwire else 'plain'}"] = _digest(runs)
            units = collect_units(text, strength=strength)
            rows = [[u.group.id, u.form, u.context.key, u.context.lookahead, u.context.next_word, u.scored]
                    for u in units]  # fmt: skip
            out[f"{index}/{strength}/units"] = _digest(rows)
    return out


def load() -> tuple[list[str], dict[str, str]]:
    data = json.loads(PATH.read_text(encoding="utf-8"))
    return data["texts"], data["digests"]


def main() -> None:
    texts = corpus()
    data = {"texts": texts, "digests": record(texts)}
    PATH.write_text(json.dumps(data, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{PATH}: {len(texts)} texts, {len(data['digests'])} digests, {PATH.stat().st_size} bytes")


if __name__ == "__main__":
    main()
