"""Charts as SVG drawn on the server: no JavaScript, no CDN, readable in an air-gapped browser.

Only presentation attributes are used (no ``style``), so the console's Content-Security-Policy
can forbid inline styles. Every text is escaped; the output is marked safe for Jinja2.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from html import escape
from typing import Any

from markupsafe import Markup

LEVEL_COLOURS = {"none": "#9aa5b1", "elevated": "#e0a800", "high": "#e8590c", "critical": "#c92a2a"}
LEVEL_Y = {"none": 0, "elevated": 1, "high": 2, "critical": 3}


def _svg(width: int, height: int, body: list[str], label: str) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(label)}">'
    )
    return Markup(head + "".join(body) + "</svg>")


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts))


def score_chart(points: Sequence[dict[str, Any]], width: int = 640, height: int = 220) -> Markup:
    """Score (line, 0..1) and level (coloured band per point) over time, from timeline points."""
    left, right, top, bottom = 40, 10, 10, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#d0d7de"/>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef1f4"/>')
        body.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{tick:.2f}</text>'
        )
    usable = [
        p for p in points if isinstance(p.get("at"), int | float) and isinstance(p.get("score"), int | float)
    ]
    if not usable:
        body.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" font-size="13" '
            'fill="#57606a">no score history yet</text>'
        )
        return _svg(width, height, body, "score over time: no data")
    start, end = usable[0]["at"], usable[-1]["at"]
    span = max(end - start, 1e-9)

    def x_of(at: float) -> float:
        return left + (plot_w * (at - start) / span if len(usable) > 1 else plot_w / 2)

    band = height - bottom + 8
    for point in usable:
        colour = LEVEL_COLOURS.get(str(point.get("level")), "#9aa5b1")
        body.append(
            f'<rect x="{x_of(point["at"]) - 3:.1f}" y="{band}" width="6" height="8" fill="{colour}"/>'
        )
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x_of(p['at']):.1f},{top + plot_h * (1 - min(max(p['score'], 0), 1)):.1f}"
        for i, p in enumerate(usable)
    )
    body.append(f'<path d="{path}" fill="none" stroke="#0969da" stroke-width="2"/>')
    for point in usable:
        y = top + plot_h * (1 - min(max(point["score"], 0), 1))
        title = escape(f"{_clock(point['at'])} UTC: score {point['score']:.3f}, level {point.get('level')}")
        body.append(
            f'<circle cx="{x_of(point["at"]):.1f}" cy="{y:.1f}" r="3" fill="#0969da">'
            f"<title>{title}</title></circle>"
        )
    body.append(f'<text x="{left}" y="{height - 6}" font-size="11">{_clock(start)} UTC</text>')
    body.append(
        f'<text x="{left + plot_w}" y="{height - 6}" font-size="11" text-anchor="end">'
        f"{_clock(end)} UTC</text>"
    )
    return _svg(width, height, body, f"score over time: {len(usable)} points")


def contribution_bars(signals: dict[str, dict[str, Any]], width: int = 640) -> Markup:
    """One horizontal bar per signal: how much it contributed to the score."""
    items = [(name, float(item.get("contribution", 0.0))) for name, item in signals.items()]
    items.sort(key=lambda kv: -kv[1])
    row, label_w = 22, 190
    height = max(row * len(items), row) + 6
    top = max((value for _, value in items), default=0.0) or 1.0
    body = []
    for i, (name, value) in enumerate(items):
        y = i * row + 3
        bar = (width - label_w - 70) * max(value, 0.0) / top
        body.append(
            f'<text x="{label_w - 8}" y="{y + 14}" font-size="12" text-anchor="end">{escape(name)}</text>'
        )
        body.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar:.1f}" height="14" fill="#0969da"/>')
        body.append(f'<text x="{label_w + bar + 6:.1f}" y="{y + 14}" font-size="12">{value:.3f}</text>')
    if not items:
        body.append('<text x="8" y="16" font-size="12" fill="#57606a">no signals</text>')
    return _svg(width, height, body, "contribution of each signal to the score")


def level_counts(counts: dict[str, int], width: int = 420, height: int = 26) -> Markup:
    """A stacked bar of how many accounts sit at each level."""
    total = sum(counts.values()) or 1
    body, x = [], 0.0
    for level in ("none", "elevated", "high", "critical"):
        share = width * counts.get(level, 0) / total
        if share > 0:
            body.append(
                f'<rect x="{x:.1f}" y="0" width="{share:.1f}" height="{height}" '
                f'fill="{LEVEL_COLOURS[level]}">'
                f"<title>{level}: {counts.get(level, 0)}</title></rect>"
            )
            x += share
    return _svg(width, height, body, "accounts by level")


def cluster_graph(
    accounts: Sequence[dict[str, Any]], links: Sequence[dict[str, Any]], width: int = 640, height: int = 480
) -> Markup:
    """Accounts on a circle, the things they share (templates, system prompts, infrastructure) inside it.

    ``accounts``: ``{"account", "risk_level"}``; ``links``: ``{"id", "kind", "accounts": [...]}``.
    """
    cx, cy = width / 2, height / 2
    outer, inner = min(cx, cy) - 60, min(cx, cy) - 170
    position: dict[str, tuple[float, float]] = {}
    for i, item in enumerate(accounts):
        angle = 2 * math.pi * i / max(len(accounts), 1) - math.pi / 2
        position[item["account"]] = (cx + outer * math.cos(angle), cy + outer * math.sin(angle))
    hubs: dict[str, tuple[float, float]] = {}
    for i, link in enumerate(links):
        angle = 2 * math.pi * i / max(len(links), 1) - math.pi / 2
        radius = max(inner, 0) if len(links) > 1 else 0
        hubs[link["id"]] = (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
    colours = {"template": "#8250df", "system": "#1a7f37", "infra": "#bc4c00"}
    body = []
    for link in links:
        hx, hy = hubs[link["id"]]
        for name in link["accounts"]:
            if name in position:
                ax, ay = position[name]
                body.append(
                    f'<line x1="{hx:.1f}" y1="{hy:.1f}" x2="{ax:.1f}" y2="{ay:.1f}" '
                    f'stroke="{colours.get(link["kind"], "#57606a")}" stroke-opacity="0.5"/>'
                )
    for link in links:
        hx, hy = hubs[link["id"]]
        colour = colours.get(link["kind"], "#57606a")
        title = escape(f"{link['kind']} {link['id']} shared by {len(link['accounts'])} accounts")
        body.append(
            f'<rect x="{hx - 7:.1f}" y="{hy - 7:.1f}" width="14" height="14" fill="{colour}">'
            f"<title>{title}</title></rect>"
        )
    for item in accounts:
        ax, ay = position[item["account"]]
        colour = LEVEL_COLOURS.get(str(item.get("risk_level")), "#9aa5b1")
        name = escape(item["account"])
        body.append(
            f'<circle cx="{ax:.1f}" cy="{ay:.1f}" r="9" fill="{colour}"><title>{name}</title></circle>'
        )
        anchor = "start" if ax >= cx else "end"
        dx = 12 if ax >= cx else -12
        body.append(
            f'<text x="{ax + dx:.1f}" y="{ay + 4:.1f}" font-size="11" text-anchor="{anchor}">{name}</text>'
        )
    legend = [
        ("template", "shared template"),
        ("system", "shared system prompt"),
        ("infra", "shared infrastructure"),
    ]
    for i, (kind, text) in enumerate(legend):
        body.append(f'<rect x="8" y="{8 + i * 18}" width="10" height="10" fill="{colours[kind]}"/>')
        body.append(f'<text x="24" y="{17 + i * 18}" font-size="11">{text}</text>')
    return _svg(width, height, body, f"{len(accounts)} accounts and {len(links)} shared links")
