"""The detector's parts on their own: each is built from what it is handed, with no core around it."""

from __future__ import annotations

from gateway.risk import RiskBoard
from policies.detector.audit import AuditTrail
from policies.detector.config import DetectorConfig
from policies.detector.features import TrackedAccounts
from policies.detector.index import TemplateIndex
from policies.detector.levels import LevelVotes
from policies.detector.outbox import SyncOutbox
from policies.detector.scoring import score_account

Parts = tuple[LevelVotes, AuditTrail, TrackedAccounts]


def _levels(outbox: SyncOutbox, board: RiskBoard, config: dict | None = None) -> Parts:
    settings = DetectorConfig.model_validate(config or {})
    accounts = TrackedAccounts(settings.shared.max_accounts)
    audit = AuditTrail("replica-a", settings.shared, outbox)
    levels = LevelVotes("replica-a", accounts, TemplateIndex(100, 10), audit, outbox)
    levels.configure(settings, board, None)
    board.subscribe(levels.on_change)
    return levels, audit, accounts


def test_the_board_gets_the_highest_vote_of_any_replica_unless_allowlisted() -> None:
    board, outbox = RiskBoard(), SyncOutbox()
    outbox.sharing = True
    levels, audit, accounts = _levels(outbox, board, {"shared": {"allowlist": ["partner"]}})
    levels.remote_votes = {"acct": {"replica-b": "elevated"}, "partner": {"replica-b": "critical"}}
    levels.apply("acct", "shared", "sync")
    levels.apply("partner", "shared", "sync")
    assert board.level("acct") == "elevated" and board.level("partner") == "none"
    # This replica's own vote is higher: it wins, is queued for the other replicas and audited.
    state = accounts.seen("acct", 1.0)
    settings = DetectorConfig()
    levels.vote(state, "high", score_account(state, settings, 1.0, 0.0, None), 1.0, 1.0, shadow=False)
    assert board.level("acct") == "high"
    assert outbox.take_votes() == {"acct": "high"}
    last = audit.recent[-1]
    assert (last["from"], last["to"], last["source"]) == ("elevated", "high", "detector")
    assert [parts for parts, _, _ in outbox.take_lists()][-1] == ("audit", "acct")
    # An operator allowlisting brings it down at once (and says so to the other replicas).
    levels.allow("acct", True, now=2.0)
    assert board.level("acct") == "none" and state.level == "none"
    assert outbox.take_allow() == [("acct", "+")] and outbox.take_votes() == {"acct": "none"}


def test_a_failed_round_puts_back_what_it_took_and_newer_votes_win() -> None:
    outbox = SyncOutbox()
    outbox.votes = {"a": "high", "b": "elevated"}
    outbox.allow.append(("a", "+"))
    votes, allow = outbox.take_votes(), outbox.take_allow()
    outbox.votes["b"] = "critical"  # decided while the round was failing
    outbox.allow.append(("a", "-"))
    outbox.put_back(votes, allow)
    assert outbox.votes == {"a": "high", "b": "critical"}
    assert outbox.allow == [("a", "+"), ("a", "-")]


def test_tracked_accounts_forget_the_least_recently_seen() -> None:
    accounts = TrackedAccounts(limit=2)
    first = accounts.seen("a", 1.0)
    accounts.seen("b", 2.0)
    assert accounts.seen("a", 3.0) is first  # seen again: now the most recent
    accounts.seen("c", 4.0)
    assert list(accounts) == ["a", "c"]
