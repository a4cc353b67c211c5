"""``bench.radioactivity --tiny`` end to end, in seconds and without torch: answers harvested through a
real gateway (green list on one tier, none on the control's) from the mock model, which applies
``logit_bias``; an n-gram student trained on each harvest; the students' samples tested for the
provider-wide key; the canary probe run on both students. This checks the pipeline, not the figure
(the figure is SmolLM2's, docs/watermark.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.radioactivity import main

SECRET = "radioactivity-ci-master-key-0123456789"


def test_the_student_of_marked_answers_carries_the_provider_key_and_the_control_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", SECRET)
    out = tmp_path / "report.json"
    argv = ["--tiny", "--answers", "24", "--tokens", "64", "--samples", "32", "--sample-tokens", "64"]
    report = main([*argv, "--json", str(out)])
    assert json.loads(out.read_text()) == report
    assert report["settings"]["model"] == "mock-small" and report["settings"]["accounts"] == 4
    # the gateway added the bias to the marked tier's requests only: the same prompts, other answers
    assert report["marked_differs"] >= 20
    marked, control = report["marked"], report["control"]
    for side in (marked, control):
        assert side["harvest"]["answers"] == 24 and list(side["students"]) == ["ngram"]
        student = side["students"]["ngram"]
        assert student["samples"]["count"] == 32 and student["samples"]["scored"] >= 50
        assert student["probe"]["p_value"] > 0.01  # no canaries were served: the probe finds none
    assert marked["harvest"]["p_value"] <= 1e-3 < control["harvest"]["p_value"]
    # what the students sample (not their training data) is tested
    assert marked["students"]["ngram"]["samples"]["p_value"] <= 1e-3
    assert control["students"]["ngram"]["samples"]["p_value"] >= 0.01
    # the p-value over 1, 2, 4, ... 32 samples, and the figure drawn from it beside the JSON
    curve = marked["students"]["ngram"]["samples"]["curve"]
    assert [point["samples"] for point in curve] == [1, 2, 4, 8, 16, 32]
    assert curve[-1]["p_value"] == marked["students"]["ngram"]["samples"]["p_value"]
    assert (out.with_suffix(".png")).read_bytes().startswith(b"\x89PNG")
