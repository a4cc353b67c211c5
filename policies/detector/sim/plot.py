"""The simulator's figure, drawn with matplotlib (the optional extra ``distillguard[report]``).

Three panels:

- per attack kind (single accounts), the share of its accounts at ``high`` or above against the
  requests each account had sent, with the 200-request budget and the 98% target;
- per hydra, the share of its members at ``high`` against the requests the whole cluster had sent,
  with its budget (10 cluster requests per member);
- per benign persona, the share of its accounts at each level they reached (``none`` should be all
  of it; the target allows at most 1% at ``elevated`` and none above).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from policies.detector.sim.report import ATTACK_BUDGET, CLUSTER_BUDGET_PER_MEMBER

TARGET_RECALL = 0.98
LEVEL_COLOURS = {"none": "#4caf50", "elevated": "#ffb300", "high": "#e53935", "critical": "#6a1b9a"}


def available() -> bool:
    """Whether matplotlib (the ``report`` extra) is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot(report: dict[str, Any], path: Path) -> None:
    """Draw ``report`` (``report.json``'s content) to the PNG file ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    rows = report["personas"]
    singles = [r for r in rows if r["kind"] == "attack" and r.get("recall_curve")]
    hydras = [r for r in rows if r.get("cluster_recall_curve")]
    benign = [r for r in rows if r["kind"] == "benign"]
    figure, (own, cluster, levels) = plt.subplots(1, 3, figsize=(18, 6.5), width_ratios=(1.1, 1.0, 1.1))

    for row in singles:
        xs, ys = zip(*row["recall_curve"], strict=True)
        own.plot(xs, [100 * y for y in ys], marker=".", label=f"{row['persona']} ({row['accounts']})")
    own.axvline(ATTACK_BUDGET, color="black", linestyle="--", linewidth=1, label="budget (200 requests)")
    own.axhline(100 * TARGET_RECALL, color="grey", linestyle=":", linewidth=1, label="target 98%")
    own.set(
        title="Single-account attacks: recall over requests",
        xlabel="requests sent by the account",
        ylabel="accounts at high or above (%)",
        ylim=(-2, 102),
    )
    own.legend(fontsize=7, loc="lower right")
    own.grid(alpha=0.3)

    for row in hydras:
        xs, ys = zip(*row["cluster_recall_curve"], strict=True)
        label = f"{row['persona']} ({row['accounts']})"
        (line,) = cluster.plot(xs, [100 * y for y in ys], marker=".", label=label)
        budget = CLUSTER_BUDGET_PER_MEMBER * row["accounts"]
        cluster.axvline(budget, color=line.get_color(), linestyle="--", linewidth=1, label=f"budget {budget}")
    cluster.axhline(100 * TARGET_RECALL, color="grey", linestyle=":", linewidth=1)
    cluster.set(
        title="Hydras: members at high over cluster requests",
        xlabel="requests sent by the whole cluster",
        ylabel="members at high or above (%)",
        ylim=(-2, 102),
    )
    if hydras:
        cluster.legend(fontsize=7, loc="lower right")
    cluster.grid(alpha=0.3)

    names = [f"{r['persona']} ({r['accounts']})" for r in benign]
    left = [0.0] * len(benign)
    for level in ("none", "elevated", "high", "critical"):
        shares = []
        for r in benign:
            reached = r["reached"]
            above = {"none": reached["elevated"], "elevated": reached["high"], "high": reached["critical"]}
            at_or_above = r["accounts"] if level == "none" else reached[level]
            shares.append(100 * (at_or_above - above.get(level, 0)) / max(1, r["accounts"]))
        levels.barh(names, shares, left=left, color=LEVEL_COLOURS[level], label=level)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    levels.axvline(99, color="black", linestyle=":", linewidth=1, label="target: >= 99% at none")
    levels.set(
        title="Benign personas: highest level reached",
        xlabel="accounts (%)",
        xlim=(0, 100),
    )
    levels.invert_yaxis()
    levels.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=5)
    levels.tick_params(axis="y", labelsize=8)

    targets = report["targets"]
    met = targets.get("met", {})
    missed = [name for name, ok in met.items() if not ok]
    figure.suptitle(
        f"distillguard simulate: {report['requests_sent']} requests in {report['duration_seconds']} s; "
        f"benign at elevated {100 * (targets['benign_false_positive_rate_elevated'] or 0):.2f}%, "
        f"targets {'missed: ' + ', '.join(missed) if missed else 'met'}",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
