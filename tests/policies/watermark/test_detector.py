"""The detector: marked text is found and attributed, unmarked text is not, repeats are scored once."""

from __future__ import annotations

from policies.watermark.detector import Detector, analyse, candidates, score
from policies.watermark.keys import MasterKey
from policies.watermark.marker import mark_text
from policies.watermark.unicode_mark import UnicodeMarker
from tests.policies.watermark.texts import PROSE

MASTER = MasterKey("k1", b"m" * 32)
ACCOUNTS = [f"acct-{i}" for i in range(50)]
TEXT = " ".join(PROSE) * 1


def _doc(seed: int) -> str:
    return " ".join(PROSE[(seed + i) % len(PROSE)] for i in range(len(PROSE) * 2))


def test_marked_corpus_is_attributed_to_the_right_account_only() -> None:
    detector = Detector(candidates([MASTER], ACCOUNTS), alpha=1e-3)
    marked = [mark_text(_doc(i), MASTER.account_key("acct-7")) for i in range(6)]
    report = detector.detect(marked)
    attributed = [(r["account"], r["key_id"]) for r in report["corpus"]["attributed"]]
    assert attributed == [("acct-7", "k1")]
    best = report["corpus"]["top"][0]
    assert best["hits"] == best["scored"] and best["p_corrected"] < 1e-6


def test_unmarked_text_and_other_keys_are_not_attributed() -> None:
    detector = Detector(candidates([MASTER], ACCOUNTS), alpha=1e-3)
    assert detector.detect([_doc(i) for i in range(6)])["corpus"]["attributed"] == []
    other = MasterKey("other", b"o" * 32)
    foreign = [mark_text(_doc(i), other.account_key("acct-7")) for i in range(6)]
    assert detector.detect(foreign)["corpus"]["attributed"] == []


def test_rotated_keys_are_tested_too() -> None:
    old = MasterKey("k0", b"z" * 32)
    detector = Detector(candidates([MASTER, old], ACCOUNTS[:5]))
    marked = [mark_text(_doc(i), old.account_key("acct-3")) for i in range(6)]
    assert [r["key_id"] for r in detector.detect(marked)["corpus"]["attributed"]] == ["k0"]


def test_repeated_context_word_pairs_are_scored_once() -> None:
    key = MASTER.account_key("acct-1")
    once = mark_text(TEXT, key)
    doc_once, doc_many = analyse(0, once), analyse(1, "\n\n".join([once] * 10))
    assert score(doc_many.units, key, 1.0).n == score(doc_once.units, key, 1.0).n
    detector = Detector(candidates([MASTER], ["acct-1"]))
    corpus = detector.detect([once] * 10, per_document=False)["corpus"]["top"][0]
    assert corpus["scored"] == score(doc_once.units, key, 1.0).n


def test_canaries_and_tripwire_are_reported() -> None:
    from policies.watermark.canary import canary_for

    key = MASTER.account_key("acct-2")
    canary = canary_for(key, "k1", 3)
    marker_text = mark_text(TEXT, key) + " " + canary.sentence
    detector = Detector(candidates([MASTER], ACCOUNTS[:10]))
    assert detector.detect([marker_text])["corpus"]["canaries"] == ["acct-2@k1#3"]

    from policies.watermark.marker import LexicalSettings, TextMarker

    marker = TextMarker(key, LexicalSettings(), UnicodeMarker(key, 1.0))
    tripped = marker.feed(TEXT) + marker.finish()
    tripwire = detector.detect([tripped])["corpus"]["tripwire"]
    assert tripwire["marks"] > 10 and tripwire["best"]["account"] == "acct-2"
    assert tripwire["best"]["hits"] == tripwire["marks"]


def test_strengths_auto_doubles_the_best_p_value_and_near_finds_near_marks() -> None:
    from policies.watermark.marker import LexicalSettings

    text = " ".join(PROSE) + " We usually check it often; moreover, it is rarely useful. " * 3
    key = MASTER.account_key("acct-4")
    near_marked = mark_text(text, key, LexicalSettings(strength="near"))
    reports = {
        s: Detector(candidates([MASTER], ["acct-4"]), strength=s).detect([near_marked], per_document=False)
        for s in ("exact", "near", "auto")
    }
    rows = {s: r["corpus"]["top"][0] for s, r in reports.items()}
    assert (
        rows["near"]["scored"] > rows["exact"]["scored"]
        and rows["near"]["log10_p"] < rows["exact"]["log10_p"]
    )
    assert rows["auto"]["strength"] == "near" and rows["auto"]["tests"] == 2
    assert abs(rows["auto"]["log10_p"] - (rows["near"]["log10_p"] + 0.30103)) < 1e-3
    # the four-form connective counts for two bits
    units = [u for u in analyse(0, near_marked, strength="near").units if u.group.id == "near:moreover"]
    assert units and all(u.k == 4 for u in units)
