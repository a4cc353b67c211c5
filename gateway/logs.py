"""Structured JSON logs on stderr: one object per line, access records included."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from typing import Any, BinaryIO

import orjson


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        access = getattr(record, "access", None)
        if access is not None:
            entry["event"] = "access"
            entry.update(access)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(level: str = "info") -> None:
    """Route distillguard's (and uvicorn's) logs through the JSON formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    for name in ("distillguard", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


class AccessLog:
    """One JSON line per request, written straight to a binary stream (stderr by default).

    It bypasses the logging module on purpose: building a LogRecord and going
    through handlers costs tens of microseconds per request, a large share of
    the gateway's own overhead. Lines are buffered here and written in one call
    a fraction of a second later (or once ``MAX_BUFFERED`` bytes are waiting),
    never held longer: with ``PYTHONUNBUFFERED`` set (as in the Docker image)
    ``sys.stderr.buffer`` is the raw file, and a line written to it as it comes
    is a system call per request.
    """

    FLUSH_AFTER = 0.2
    MAX_BUFFERED = 64 * 1024

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.stream: BinaryIO = stream if stream is not None else sys.stderr.buffer
        self._flush_scheduled = False
        self._second = -1
        self._stamp = ""
        self._lines: list[bytes] = []
        self._buffered = 0

    def _timestamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def write(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(
            {
                "ts": self._timestamp(time.time()),
                "level": "info",
                "logger": "distillguard.access",
                "event": "access",
                **record,
            }
        )
        self._lines.append(line)
        self._buffered += len(line) + 1
        if self._buffered >= self.MAX_BUFFERED:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_later(self.FLUSH_AFTER, self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        self._flush_scheduled = False
        lines, self._lines, self._buffered = self._lines, [], 0
        with contextlib.suppress(OSError, ValueError):
            if lines:
                _write_all(self.stream, b"\n".join(lines) + b"\n")
            self.stream.flush()


def _write_all(stream: BinaryIO, data: bytes) -> None:
    """All of ``data``: a raw (unbuffered) stream may take part of it per call."""
    view = memoryview(data)
    while view:
        written = stream.write(view)
        if not written:  # None: a non-blocking stream that would block; never spin on it
            return
        view = view[written:]
