"""The canary probe: a suspect that learned an account's canaries is found; one that did not is not."""

from __future__ import annotations

from policies.watermark.canary import canary_for
from policies.watermark.detector import candidates
from policies.watermark.keys import MasterKey
from policies.watermark.probe import openai_asker, probe
from tests.support import MockHandle

MASTER = MasterKey("k1", b"p" * 32)
ACCOUNTS = [f"acct-{i}" for i in range(20)]


def test_a_student_that_learned_the_canaries_is_attributed() -> None:
    key = MASTER.account_key("acct-4")
    learned = {}
    for index in range(4):
        canary = canary_for(key, "k1", index)
        learned.setdefault(canary.trigger, []).append(canary.response)

    def student(prompt: str) -> list[str]:
        return [f"{prompt} {' and '.join(learned.get(prompt, ['plain words here']))}."]

    report = probe(student, candidates([MASTER], ACCOUNTS), variants=4, decoys=999)
    best = report["results"][0]
    assert best["account"] == "acct-4" and best["score"] == 16
    assert best["p_value"] == 1 / 1000 and best["p_corrected"] <= 0.02
    assert all(r["p_value"] > best["p_value"] for r in report["results"][1:])


def test_an_unrelated_model_is_not_attributed(mock_upstream: MockHandle) -> None:
    ask = openai_asker(f"{mock_upstream.url}/v1", "mock-small", None, samples=2)
    report = probe(ask, candidates([MASTER], ACCOUNTS), variants=4, decoys=199)
    assert all(r["p_corrected"] > 1e-3 for r in report["results"])
    assert len(report["answers"]) == 6 and all(len(a) == 2 for a in report["answers"].values())
