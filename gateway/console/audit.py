"""The operator audit log: one JSON line per console action, with who, what, on what, and why.

Written before the action is taken (``outcome: "requested"``) and again with its result; when
``admin.audit_log`` is set and the first line cannot be written, the action is refused: an action
nobody can account for is not taken. Every entry also goes to the ``distillguard.console.audit``
logger (the gateway's JSON logs), so it is recorded even where no file is configured.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("distillguard.console.audit")


class AuditUnavailableError(Exception):
    """The audit file could not be written: the action must not be taken."""


class OperatorAudit:
    """Appends entries to the file at ``path()`` (read at each write: a reload may change it)."""

    def __init__(self, path: Any) -> None:
        self._path = path
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Record ``entry`` (``at`` added); raises AuditUnavailableError if the file refuses it."""
        entry = {"at": round(time.time(), 3), **entry}
        line = orjson.dumps(entry).decode()
        log.info(line)
        path = self._path()
        if path:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                with self._lock:
                    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                    try:
                        os.write(fd, line.encode() + b"\n")
                    finally:
                        os.close(fd)
            except OSError as exc:
                log.error("cannot write the operator audit log %s: %s", path, exc)
                raise AuditUnavailableError(f"the audit log {path} cannot be written: {exc}") from exc
        return entry

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The last ``limit`` entries of the file, newest first (empty when none is configured)."""
        path = self._path()
        if not path:
            return []
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 512 * limit))
                lines = handle.read().splitlines()
        except OSError:
            return []
        out = []
        for line in reversed(lines):
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue  # the first line of a tail read may be cut
            if len(out) >= limit:
                break
        return out
