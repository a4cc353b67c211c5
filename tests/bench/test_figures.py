"""The watermark benchmarks' figures (bench/figures.py), drawn by matplotlib from small fixed results.

No llama.cpp and no harvest: each figure is drawn from a result shaped like its bench's JSON output,
written beside that JSON, and read back as a PNG of the expected size with labelled axes and data.
The green-list bench's TPR curves are computed by its own code on token ids drawn from the keyed
green lists (marked) and uniformly (unmarked), so the curve is the detector's, not a fixture's.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import figures
from bench.green_list import MASTER, VOCAB, Scorer, detection, point_label, tpr_curves
from policies.watermark.green_list import build_bias, provider_key

pytest.importorskip("matplotlib")  # the test extra installs it: CI draws for real


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_drawn(path: Path, kind: str) -> None:
    """A PNG of the figure's size, written by matplotlib, with more than a blank canvas in it."""
    import matplotlib.image

    inches = figures.SIZE[kind]
    assert png_size(path) == (round(inches[0] * figures.DPI), round(inches[1] * figures.DPI))
    assert b"Matplotlib" in path.read_bytes()[:400]  # its tEXt "Software" chunk
    pixels = matplotlib.image.imread(str(path))
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]).round(2), axis=0)
    assert len(colours) > 20, "the figure is (nearly) blank"


def green_result() -> dict[str, Any]:
    """What ``bench.green_list --json`` writes for one grid point, computed on synthetic token ids."""
    gamma, delta = 0.25, 2.0
    scorer = Scorer(gamma, accounts=5)
    rng = random.Random(3)
    green = build_bias(provider_key(MASTER), MASTER.account_key("acct-0"), VOCAB, gamma, delta).ids.tolist()
    # marked: 70% of tokens from the green lists; unmarked (code): uniform over the vocabulary
    marked = [
        [rng.choice(green) if rng.random() < 0.7 else rng.randrange(VOCAB) for _ in range(300)]
        for _ in range(6)
    ]
    plain = [[rng.randrange(VOCAB) for _ in range(300)] for _ in range(6)]
    prompts = [("prose", "p")] * 6 + [("code", "c")] * 6
    point = {
        "label": point_label((gamma, delta, (("presence_penalty", 1.0),))),
        "tpr_curves": tpr_curves(scorer, prompts, marked + plain, 300),
    }
    return {"settings": {}, "points": [point], "detection": detection([point])}


def test_green_list_tpr_curves_come_from_the_detector() -> None:
    curves = green_result()["points"][0]["tpr_curves"]
    assert list(curves) == ["prose", "code", "prose, 10% edited"]
    prose = curves["prose"]
    assert [p[0] for p in prose] == [25, 50, 100, 150, 200, 250, 300] and {p[2] for p in prose} == {6}
    assert prose[0][1] < 1.0 and prose[-1][1] == 1.0  # short cuts miss, long ones are found
    assert all(p[1] == 0.0 for p in curves["code"])  # uniform ids carry no mark


def test_detection_figure_of_the_green_list_bench(tmp_path: Path) -> None:
    result = green_result()
    out = tmp_path / "green.json"
    out.write_text(json.dumps(result))
    path = figures.draw_beside(out, figures.detection_figure, result["detection"])
    assert path == tmp_path / "green.png"
    assert_drawn(path, "detection")

    figure = figures.detection_figure(result["detection"])
    try:
        assert [ax.get_title() for ax in figure.axes] == [
            "prose (n=6)",
            "code (n=6)",
            "prose, 10% edited (n=6)",
        ]
        for ax in figure.axes:
            assert ax.get_xlabel() == "tokens of text tested" and ax.get_ylabel() == "TPR at p <= 0.001"
            labels = [line.get_label() for line in ax.get_lines()]
            assert "green list gamma 0.25 delta 2, presence 1" in labels and "target 0.95" in labels
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)


def test_detection_figure_of_the_lexical_bench_has_no_target_line(tmp_path: Path) -> None:
    detection_data = {
        "title": "Lexical watermark",
        "unit": "words",
        "alpha": 1e-3,
        "target": None,
        "panels": {
            "mock": {
                "lexical, exact": [[200, 0.2, 40], [400, 0.97, 30]],
                "lexical, near": [[200, 0.7, 40], [400, 1.0, 30]],
            }
        },
    }
    figure = figures.detection_figure(detection_data)
    ax = figure.axes[0]
    assert ax.get_xlabel() == "words of text tested" and ax.get_title() == "mock (n=30-40 per length)"
    assert [line.get_label() for line in ax.get_lines()] == ["lexical, exact", "lexical, near"]
    figures.save(figure, tmp_path / "lexical.png")
    assert_drawn(tmp_path / "lexical.png", "detection")
    with pytest.raises(ValueError, match="no detection curves"):
        figures.detection_figure({**detection_data, "panels": {}})


def radio_report() -> dict[str, Any]:
    """A ``bench.radioactivity --json`` report with two students, as the bench writes it."""

    def side(log10_ps: list[float]) -> dict[str, Any]:
        curve = [{"samples": 2**i, "log10_p": lp, "p_value": 10**lp} for i, lp in enumerate(log10_ps)]
        return {"samples": {"curve": curve, "log10_p": log10_ps[-1]}}

    marked = {
        "ngram": side([-1.8, -2.4, -6.5, -7.0, -12.6, -14.5]),
        "transformer": side([-1.0, -3.0, -9.0, -20.0, -41.0, -80.0]),
    }
    control = {
        "ngram": side([-0.1, -0.2, -0.2, -0.4, -0.2, -0.3]),
        "transformer": side([-0.3, -0.1, -0.5, -0.2, -0.6, -0.4]),
    }
    return {
        "settings": {"answers": 48, "model": "smollm2", "gamma": 0.25, "delta": 2.0},
        "marked": {"students": marked},
        "control": {"students": control},
    }


def test_radioactivity_figure(tmp_path: Path) -> None:
    report = radio_report()
    out = tmp_path / "radio.json"
    path = figures.draw_beside(out, figures.radioactivity_figure, report)
    assert path == tmp_path / "radio.png"
    assert_drawn(path, "radioactivity")

    figure = figures.radioactivity_figure(report)
    try:
        assert [ax.get_title() for ax in figure.axes] == ["ngram student", "transformer student"]
        for ax, kind in zip(figure.axes, ("ngram", "transformer"), strict=True):
            assert ax.get_xlabel().startswith("samples tested") and "-log10 p" in ax.get_ylabel()
            lines = {line.get_label(): line for line in ax.get_lines()}
            assert {"marked student", "control student", "p = 1e-6", "p = 0.01"} <= set(lines)
            ys = list(lines["marked student"].get_ydata())
            expected = [-p["log10_p"] for p in report["marked"]["students"][kind]["samples"]["curve"]]
            assert ys == expected
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)


def test_without_matplotlib_the_bench_says_so_and_draws_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(figures, "available", lambda: False)
    assert figures.draw_beside(tmp_path / "r.json", figures.radioactivity_figure, radio_report()) is None
    assert "pip install 'distillguard[report]'" in capsys.readouterr().err
    assert not (tmp_path / "r.png").exists()
