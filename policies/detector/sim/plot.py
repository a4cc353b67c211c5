"""The simulator's PNG plot, drawn with a tiny pure-Python rasteriser (no plotting dependency).

Left panel: one bar per persona: for attacks the share of accounts that reached
``high`` within budget (red), for benign personas the share that ever reached
``elevated`` (green; should be ~0), with the 95% and 0.5% target lines.
Right panel: the hydra's members at ``high`` against the requests the cluster
had sent (blue), with the 10-requests-per-member budget marked.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from pathlib import Path
from typing import Any

# A 3x5 bitmap font: each glyph is 5 rows of 3 bits.
_FONT = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    "A": "010101111101101",
    "B": "110101110101110",
    "C": "111100100100111",
    "D": "110101101101110",
    "E": "111100110100111",
    "F": "111100110100100",
    "G": "111100101101111",
    "H": "101101111101101",
    "I": "111010010010111",
    "J": "001001001101111",
    "K": "101101110101101",
    "L": "100100100100111",
    "M": "101111111101101",
    "N": "110101101101101",
    "O": "111101101101111",
    "P": "111101111100100",
    "Q": "111101101111001",
    "R": "110101110101101",
    "S": "111100111001111",
    "T": "111010010010010",
    "U": "101101101101111",
    "V": "101101101101010",
    "W": "101101111111101",
    "X": "101101010101101",
    "Y": "101101010010010",
    "Z": "111001010100111",
    " ": "000000000000000",
    "_": "000000000000111",
    "-": "000000111000000",
    ".": "000000000000010",
    "%": "101001010100101",
    "/": "001001010100100",
    ":": "000010000010000",
    "<": "001010100010001",
    ">": "100010001010100",
    "=": "000111000111000",
    "(": "010100100100010",
    ")": "010001001001010",
}

WHITE = (255, 255, 255)
BLACK = (30, 30, 30)
GREY = (200, 200, 200)
RED = (200, 60, 50)
GREEN = (60, 150, 70)
BLUE = (50, 100, 200)


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(WHITE * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, colour: tuple[int, int, int]) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        row = bytes(colour) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def line(self, x0: int, y0: int, x1: int, y1: int, colour: tuple[int, int, int], width: int = 1) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            x = x0 + (x1 - x0) * i // steps
            y = y0 + (y1 - y0) * i // steps
            self.rect(x, y, x + width, y + width, colour)

    def text(self, x: int, y: int, text: str, colour: tuple[int, int, int] = BLACK, scale: int = 2) -> None:
        for char in text.upper():
            glyph = _FONT.get(char, _FONT[" "])
            for row in range(5):
                for col in range(3):
                    if glyph[row * 3 + col] == "1":
                        self.rect(
                            x + col * scale,
                            y + row * scale,
                            x + (col + 1) * scale,
                            y + (row + 1) * scale,
                            colour,
                        )
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * self.width * 3 : (y + 1) * self.width * 3])
            for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b"")
        )


def plot(report: dict[str, Any], path: Path) -> None:
    canvas = Canvas(1200, 640)
    canvas.text(20, 12, "DISTILLGUARD SIMULATION: DETECTION PER PERSONA", scale=3)
    rows = report["personas"]
    # Left panel: bars.
    left, top, bar_w, max_len = 260, 60, 300, 360
    canvas.text(left, top - 8, "RED: ATTACK RECALL (HIGH IN BUDGET)   GREEN: BENIGN AT ELEVATED", scale=1)
    for i, row in enumerate(rows):
        y = top + 10 + i * 34
        canvas.text(20, y + 6, row["persona"][:22])
        if row["kind"] == "attack":
            share, colour = row.get("recall_high_within_budget", 0.0), RED
        else:
            share, colour = row.get("false_positive_rate_elevated", 0.0), GREEN
        canvas.rect(left, y, left + bar_w, y + 24, GREY)
        canvas.rect(left, y, left + int(bar_w * share), y + 24, colour)
        canvas.text(left + bar_w + 8, y + 6, f"{share * 100:.1f}%")
    bottom = top + 10 + len(rows) * 34
    for share, label in ((0.95, "95%"), (0.005, "0.5%")):
        x = left + int(bar_w * share)
        canvas.line(x, top + 4, x, bottom, BLACK)
        canvas.text(x - 8, bottom + 6, label, scale=1)
    del max_len
    # Right panel: hydra curve.
    hydra = next((r for r in rows if r.get("cluster_recall_curve")), None)
    px, py, pw, ph = 720, 80, 440, 380
    canvas.rect(px, py, px + pw, py + ph, (245, 245, 245))
    canvas.line(px, py + ph, px + pw, py + ph, BLACK)
    canvas.line(px, py, px, py + ph, BLACK)
    canvas.text(px, py - 24, "HYDRA MEMBERS AT HIGH VS CLUSTER REQUESTS")
    if hydra:
        curve = hydra["cluster_recall_curve"]
        total = max(1, curve[-1][0])
        points = [(px + int(pw * at / total), py + ph - int(ph * share)) for at, share in curve]
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            canvas.line(x0, y0, x1, y1, BLUE, width=3)
        budget = 10 * hydra["accounts"]
        if budget <= total:
            bx = px + int(pw * budget / total)
            canvas.line(bx, py, bx, py + ph, RED)
            canvas.text(bx + 4, py + 6, f"BUDGET {budget}", RED, scale=1)
        canvas.text(px, py + ph + 8, "0", scale=1)
        canvas.text(px + pw - 40, py + ph + 8, str(total), scale=1)
        canvas.text(px - 24, py, "100%", scale=1)
    targets = report["targets"]
    summary = [
        f"ATTACK RECALL {targets['attack_recall_high_within_200']}",
        f"HYDRA RECALL {targets['hydra_recall_high_within_cluster_budget']}",
        f"BENIGN FPR {targets['benign_false_positive_rate_elevated']}",
        f"BATCH BLOCKED {targets['batch_customer_blocked']}",
    ]
    for i, line in enumerate(summary):
        canvas.text(20 + (i % 2) * 380, 580 + (i // 2) * 22, line)
    path.write_bytes(canvas.png())
