"""The embedding process: the sentence-embedding model of the semantic signals, out of the gateway.

Started by :class:`policies.detector.embed_process.EmbeddingProcess` (one per gateway worker),
which runs :func:`main`. It loads the model (:class:`~embedding.Embedder`,
with its cache of recent sentences), answers ``ready``, then serves one request at a time from its
stdin and writes each reply to its stdout, until stdin ends. The model's forward pass and its
pure-Python tokenizer hold a GIL for milliseconds per batch: here it is this process's GIL, not
the serving worker's.

The wire format is :mod:`policies.detector.embed_wire`'s.

It never outlives the worker that started it: the kernel kills it when the worker dies (Linux), a
watchdog thread exits it once it is re-parented, and it exits when its stdin ends (the worker
closed it, or died and the kernel closed the pipe).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Any

import numpy as np
import orjson

from policies.detector.embed_wire import HEAD, MAX_FRAME, PARENT_ENV, frame, rss_bytes

_PARENT_POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1


def _read_exact(fd: int, size: int) -> bytes | None:
    """``size`` bytes from ``fd`` (blocking), or None when it ends first."""
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _die_with_parent(parent: int) -> None:
    """Make sure this process ends when the worker that started it does, whatever it is doing.

    On Linux the kernel kills it when the thread that started it exits (``PR_SET_PDEATHSIG``; the
    worker starts it from a thread that lives as long as the worker, see ``embed_process``): this
    holds even when it is stopped or stuck in C code holding its GIL. Elsewhere, and as a second
    line, a thread exits it once it has been re-parented. Either way, the end of its input ends it.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the worker died before the line above took effect
        os._exit(0)
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(_PARENT_POLL_SECONDS)
        if os.getppid() != parent:
            os._exit(0)


def serve(embedder: Any, requests: int, replies: int) -> None:
    """Answer requests from ``requests`` on ``replies`` until ``requests`` ends."""
    while True:
        head = _read_exact(requests, HEAD.size)
        if head is None:
            return
        header_size, body_size = HEAD.unpack(head)
        if header_size + body_size > MAX_FRAME:
            _write_all(replies, frame({"error": "request too large"}))
            return  # the stream cannot be resynchronised
        payload = _read_exact(requests, header_size + body_size)
        if payload is None:
            return
        started = time.process_time()
        try:
            request = orjson.loads(payload[:header_size])
            texts = [str(text) for text in request["texts"]]
            if request["op"] == "prompts":
                blocks = embedder.encode_prompts(texts)
                rows = [len(block) for block in blocks]
                vectors = np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32)
            elif request["op"] == "texts":
                vectors = embedder.encode(texts)
                rows = [len(vectors)]
            else:
                raise ValueError(f"unknown op {request['op']!r}")
            body = np.ascontiguousarray(vectors, dtype=np.float32).tobytes()
            reply = frame({"rows": rows, "cpu": time.process_time() - started, "rss": rss_bytes()}, body)
        except Exception as exc:  # a request it cannot serve is answered, and the process goes on
            reply = frame({"error": f"{type(exc).__name__}: {exc}"})
        _write_all(replies, reply)


def main() -> int:
    # Ctrl-C in a terminal reaches the whole process group: the worker decides when this one stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(int(os.environ.get(PARENT_ENV) or os.getppid()))
    # The protocol gets private descriptors; anything the model's code prints goes to stderr (the
    # worker's log) instead of corrupting a reply.
    requests, replies = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    from policies.detector.embedding import Embedder

    started = time.monotonic()
    embedder = Embedder()
    embedder.encode(["."])  # load the model now: ``ready`` means the next request is served at once
    _write_all(replies, frame({"ready": True, "seconds": time.monotonic() - started, "rss": rss_bytes()}))
    serve(embedder, requests, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
