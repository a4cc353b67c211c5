"""The audit log: one JSON line per risk-level change, with the evidence behind it.

Each replica appends to its own JSONL file (``shared.audit_log``; opened in
append mode, one ``write`` per entry, flushed at once so a crash loses at most
the entry being written). Entries decided here (not those merely copied from
another replica) also go to a capped per-account list in the state store, so
the evidence bundle sees the whole trail whichever replica serves it.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import IO, Any

import orjson

log = logging.getLogger("distillguard.detector.audit")


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
