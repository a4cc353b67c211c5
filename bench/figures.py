"""The watermark benchmarks' figures, drawn with matplotlib (the optional extra ``distillguard[report]``).

Two figures, each drawn from the JSON its benchmark writes (``--json PATH``) and saved beside it
(``PATH`` with ``.png``):

- detection (``bench.green_list``, ``bench.watermark_eval``): the true-positive rate at the bench's
  significance level against the length of the text, one panel per kind of text, one line per scheme
  and strength, with the issue's target (TPR 0.95 at 200 tokens) where it applies;
- radioactivity (``bench.radioactivity``): the provider-wide key's p-value of the marked student's and
  of the control student's samples against the number of samples tested, one panel per student, with
  the target (marked at p <= 1e-6, control at p >= 0.01).

The figures have a fixed size in pixels (``SIZE`` at ``DPI``), so what they are drawn into is checked.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
SIZE = {"detection": (12.0, 4.8), "radioactivity": (12.0, 4.8)}  # inches: 1200 x 480 pixels
MARKED_TARGET = 1e-6  # issue 17: the marked student's samples at p <= 1e-6 ...
CONTROL_FLOOR = 0.01  # ... and the control's at p >= 0.01


def available() -> bool:
    """Whether matplotlib (the ``report`` extra) is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def figure_path(json_path: Path) -> Path:
    """Where a bench's figure goes: beside its JSON output, with ``.png``."""
    return json_path.with_suffix(".png")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    return plt


def detection_figure(detection: dict[str, Any]) -> Figure:
    """TPR against text length: ``detection`` is a bench JSON's ``detection`` object.

    ``{"title", "unit" ("tokens" or "words"), "alpha", "target": {"tpr", "at"} or null,
    "panels": {kind: {series label: [[length, tpr, samples], ...]}}}``.
    """
    plt = _pyplot()
    panels = detection["panels"]
    if not panels:
        raise ValueError("no detection curves to draw")
    figure, axes = plt.subplots(1, len(panels), figsize=SIZE["detection"], dpi=DPI, squeeze=False)
    target = detection.get("target")
    unit = detection["unit"]
    for ax, (kind, series) in zip(axes[0], panels.items(), strict=True):
        counts: list[int] = []
        for label, points in series.items():
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            counts.extend(int(p[2]) for p in points)
            ax.plot(xs, ys, marker="o", markersize=3, label=label)
        low, high = min(counts, default=0), max(counts, default=0)
        if target:
            ax.axhline(
                target["tpr"], color="grey", linestyle=":", linewidth=1, label=f"target {target['tpr']}"
            )
            ax.axvline(
                target["at"], color="black", linestyle="--", linewidth=1, label=f"{target['at']} {unit}"
            )
        ax.set(
            title=f"{kind} (n={low})" if low == high else f"{kind} (n={low}-{high} per length)",
            xlabel=f"{unit} of text tested",
            ylabel=f"TPR at p <= {detection['alpha']:g}",
            ylim=(-0.02, 1.02),
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")  # curves sit high or low depending on the kind of text
    figure.suptitle(detection["title"], fontsize=11)
    figure.tight_layout()
    return figure


def radioactivity_figure(report: dict[str, Any]) -> Figure:
    """The provider-wide key's p-value over samples, marked vs control student, per student kind."""
    plt = _pyplot()
    from matplotlib.ticker import ScalarFormatter

    kinds = list(report["marked"]["students"])
    figure, axes = plt.subplots(1, len(kinds), figsize=SIZE["radioactivity"], dpi=DPI, squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        for side, colour in (("marked", "#c62828"), ("control", "#1565c0")):
            curve = report[side]["students"][kind]["samples"]["curve"]
            xs = [point["samples"] for point in curve]
            # -log10 p: up is stronger evidence; a p-value of 0 (underflow) is drawn at the top of the data
            ys = [-point["log10_p"] if math.isfinite(point["log10_p"]) else 350.0 for point in curve]
            ax.plot(xs, ys, marker="o", markersize=3, color=colour, label=f"{side} student")
        ax.axhline(-math.log10(MARKED_TARGET), color="#c62828", linestyle="--", linewidth=1, label="p = 1e-6")
        ax.axhline(-math.log10(CONTROL_FLOOR), color="#1565c0", linestyle=":", linewidth=1, label="p = 0.01")
        ax.set(
            title=f"{kind} student",
            xlabel="samples tested (each token id counted once)",
            ylabel="-log10 p, provider-wide key",
        )
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 1, 2, 4, ... rather than 2^0, 2^1, ...
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    s = report["settings"]
    figure.suptitle(
        f"Radioactivity: students of {s['answers']} answers from {s['model']} "
        f"(gamma {s['gamma']}, delta {s['delta']}), marked vs control",
        fontsize=11,
    )
    figure.tight_layout()
    return figure


def save(figure: Figure, path: Path) -> None:
    """Write ``figure`` to the PNG ``path`` at its own size (no tight bounding box: fixed pixels)."""
    plt = _pyplot()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def draw_beside(json_path: Path, figure: Any, payload: dict[str, Any]) -> Path | None:
    """Draw ``figure(payload)`` beside ``json_path``; without matplotlib say so and draw nothing."""
    if not available():
        print("no figure: matplotlib is not installed (pip install 'distillguard[report]')", file=sys.stderr)
        return None
    path = figure_path(json_path)
    save(figure(payload), path)
    print(f"figure: {path}")
    return path
