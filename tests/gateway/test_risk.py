"""The engine's risk board: levels, pins and the change announcements."""

from __future__ import annotations

from gateway.risk import RiskBoard, RiskChange


def test_pins_are_listed_and_win_over_detection() -> None:
    board = RiskBoard()
    changes: list[RiskChange] = []
    board.subscribe(changes.append)
    board.set("a", "high", reason="detector says so")
    board.pin("b", "none", reason="reviewed")
    board.pin("a", "elevated", reason="operator")
    assert board.pins() == {"b": "none", "a": "elevated"}
    assert board.level("a") == "elevated"
    copy = board.pins()
    copy["c"] = "critical"
    assert "c" not in board.pins(), "pins() must return a copy"
    board.pin("a", None, reason="unpin")
    assert board.level("a") == "high"
    assert [(c.previous, c.level, c.source) for c in changes] == [
        ("none", "high", "detector"),
        ("high", "elevated", "operator"),
        ("elevated", "high", "operator"),
    ]
