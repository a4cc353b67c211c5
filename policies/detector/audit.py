"""The audit log: one JSON line per risk-level change, with the evidence behind it.

Each replica appends to its own JSONL file (``shared.audit_log``; opened in
append mode, one ``write`` per entry, flushed at once so a crash loses at most
the entry being written). Entries decided here (not those merely copied from
another replica) also go to a capped per-account list in the state store, so
the evidence bundle sees the whole trail whichever replica serves it.
:class:`AuditTrail` does all three (file, recent changes in memory, store list).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from pathlib import Path
from typing import IO, Any

import orjson

from policies.detector.config import SharedSettings
from policies.detector.outbox import SyncOutbox

log = logging.getLogger("distillguard.detector.audit")

_RECENT_CHANGES = 10_000


def to_json(value: Any) -> str:
    """Compact JSON text of an audit entry or a timeline point."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


class AuditLog:
    """An append-only JSONL file; ``{replica}`` in the path is replaced by the replica id."""

    def __init__(self, path: str | None, replica: str = "") -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()
        if path:
            path = path.replace("{replica}", replica)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._file = os.fdopen(fd, "ab", buffering=0)

    def write(self, entry: dict[str, Any]) -> None:
        if self._file is not None:
            self.write_line(orjson.dumps(entry, option=orjson.OPT_NON_STR_KEYS).decode())

    def write_line(self, text: str) -> None:
        """Append one already-serialised JSON entry."""
        if self._file is None:
            return
        line = text.encode() + b"\n"
        with self._lock:
            try:
                self._file.write(line)
            except OSError:
                log.exception("cannot write the detector audit log %s", self.path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class AuditTrail:
    """Where level changes are recorded: this replica's audit file, the recent changes in memory
    (the admin API's ``/changes``) and, for changes decided here, the account's list in the store
    (through the sync outbox)."""

    def __init__(self, replica: str, shared: SharedSettings, outbox: SyncOutbox) -> None:
        self.replica = replica
        self.file = AuditLog(None)
        self.recent: deque[dict[str, Any]] = deque(maxlen=_RECENT_CHANGES)  # summaries, oldest first
        self._shared = shared
        self._outbox = outbox

    def configure(self, shared: SharedSettings) -> None:
        """Take new shared settings; the file is reopened only when its path changed."""
        self._shared = shared
        if self.file.path != shared.audit_log:
            self.file.close()
            self.file = AuditLog(shared.audit_log, self.replica)

    def record(self, entry: dict[str, Any], shared: bool) -> None:
        """Record one change; ``shared``: also append it to the account's trail in the store."""
        line = to_json(entry)
        self.file.write_line(line)
        # The in-memory list of recent changes keeps the summary, not the whole evidence.
        recent = {k: v for k, v in entry.items() if k != "evidence"}
        evidence = entry.get("evidence")
        if evidence is not None:
            score = evidence.get("score") or {}
            recent["score"] = score.get("score")
            recent["top_reasons"] = score.get("top_reasons")
            recent["cluster_id"] = score.get("cluster_id")
        self.recent.append(recent)
        if shared:
            self._outbox.add_list_item(("audit", entry["account"]), line, self._shared.audit_trail_kept)


def read_audit_file(path: str, account: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Entries of an audit file (optionally one account's), newest last, at most ``limit``."""
    out: list[dict[str, Any]] = []
    needle = orjson.dumps(account) if account is not None else None
    try:
        with open(path, "rb") as handle:
            for line in handle:
                if needle is not None and needle not in line:
                    continue
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if account is None or entry.get("account") == account:
                    out.append(entry)
    except FileNotFoundError:
        return []
    return out[-limit:]
