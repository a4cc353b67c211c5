"""The simulator, small: real gateway and mock processes, real HTTP, real assertions on detection."""

from __future__ import annotations

from pathlib import Path

import orjson

from gateway.cli import main
from policies.detector.sim.personas import personas
from policies.detector.sim.report import first_reached, histogram_quantile


def test_small_simulation_detects_harvesters_and_spares_benign_accounts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "simulate",
            "--scale",
            "0.05",
            "--requests-scale",
            "0.4",
            "--duration",
            "8",
            "--seed",
            "3",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = orjson.loads((out / "report.json").read_bytes())
    png = (out / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000
    assert b"Matplotlib" in png  # drawn by matplotlib (its PNG metadata), with labelled axes and curves
    rows_by_name = {row["persona"]: row for row in report["personas"]}
    assert rows_by_name["reworded"]["recall_curve"][-1][1] == 1.0
    assert report["targets"]["recall_per_kind"]["polyglot"] == 1.0
    rows = {row["persona"]: row for row in report["personas"]}
    assert set(rows) == {p.name for p in personas()}
    harvester = rows["cot_harvester"]
    assert harvester["recall_high_within_budget"] == 1.0
    assert harvester["requests_to_high"]["max"] <= 60
    # Written outside the detector's vocabularies: raised by the semantic signals alone.
    for name in ("rubric_harvester", "paraphraser", "reworded", "polyglot", "agentic_reworded"):
        assert rows[name]["reached"]["high"] == rows[name]["accounts"], name
    batch = rows["batch_customer"]
    assert (
        batch["requests_sent"] >= 500 and batch["blocked_accounts"] == 0 and batch["reached"]["elevated"] == 0
    )
    assert report["targets"]["batch_customer_blocked"] is False
    benign = [row for row in report["personas"] if row["kind"] == "benign"]
    assert sum(row["reached"]["elevated"] for row in benign) <= 1
    assert report["statuses"].get("200", 0) >= 0.8 * report["requests_sent"]
    cost = report["targets"]["detector_cost"]  # CPU time is measured on one request in timed_every
    assert cost["observations"] * cost["timed_every"] >= 0.9 * report["requests_sent"]


def test_report_helpers() -> None:
    changes = [
        {"account": "a", "to": "elevated", "at": 1.0},
        {"account": "a", "to": "critical", "at": 2.0},
        {"account": "b", "to": "high", "at": 3.0},
    ]
    reached = first_reached(changes)
    assert reached["a"] == {"elevated": 1.0, "high": 2.0, "critical": 2.0}
    assert reached["b"] == {"elevated": 3.0, "high": 3.0}
    text = "\n".join(
        [
            'm_bucket{stage="total",le="0.0001"} 90.0',
            'm_bucket{stage="total",le="0.0002"} 99.0',
            'm_bucket{stage="total",le="0.001"} 100.0',
            'm_bucket{stage="total",le="+Inf"} 100.0',
        ]
    )
    assert histogram_quantile(text, "m", {"stage": "total"}, 0.5) == 0.0001
    assert histogram_quantile(text, "m", {"stage": "total"}, 0.99) == 0.0002
