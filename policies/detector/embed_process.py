"""The semantic signals' embeddings, computed in a separate process (one per gateway worker).

In the worker the model's forward pass and its pure-Python tokenizer held the GIL for milliseconds
per batch from a worker thread, which stretched the request path's tail (inline p99 79 µs against
47 µs without), and its 140 MB lived in every worker. :class:`EmbeddingProcess` runs them in a child
process (:mod:`policies.detector.embed_worker`), started on first use, that answers one batch at a
time over a pipe; the worker only frames the texts and reads back float32 rows.

Why one per worker rather than one per host: its life is tied to the worker that started it (it
ends with it: no rendezvous, no ownership to hand over when a worker dies, no orphan), a failure
touches one worker's semantic signals only, and the CPU the embeddings need is the same either way;
the cost is one model in memory per worker.

Fail safe: every exchange has a deadline (longer for the start, which loads the model); a process
that exits, hangs past its deadline or answers garbage is killed and raises
:class:`EmbeddingFailed` for the batch in flight (its prompts are lost and counted by the caller);
the next start waits a backoff that doubles with each failure in a row (a process that ran for
``healthy_after`` seconds starts a new series; :meth:`retry_in`). The
caller is a worker thread or the background analysis, never the request path, and the lexical
analysis never waits on it (:mod:`policies.detector.core`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from policies.detector.embed_wire import HEAD, MAX_FRAME, PARENT_ENV, frame
from policies.detector.embedding import DIM

log = logging.getLogger("distillguard.detector")

_ROOT = str(Path(__file__).resolve().parents[2])  # where the ``policies`` package is
# The process's first statements, before any import that takes time: on Linux, ask the kernel to
# kill it when the worker's launcher thread (so the worker) ends, leaving no window for an orphan.
# Then the two packages are entered without running their __init__ (which import the detector and
# the gateway, 28 MB the embedding process has no use for): it needs embed_worker, embed_wire and
# embedding, which import only numpy and orjson.
_BOOT = f"""\
import sys
if sys.platform.startswith("linux"):
    import ctypes, signal
    ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)
import types
for name in ("policies", "policies.detector"):
    package = sys.modules[name] = types.ModuleType(name)
    package.__path__ = [{_ROOT!r} + "/" + name.replace(".", "/")]
from policies.detector.embed_worker import main
sys.exit(main())
"""


class EmbeddingFailed(Exception):
    """The embedding process could not serve a batch: ``reason`` is ``exited``, ``hung``, ``start``,
    ``protocol`` (it answered garbage), ``interrupted`` (a stop would not wait), ``error`` (it
    answered an error; it goes on), ``backoff`` (it is down, waiting to restart) or ``closed``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(slots=True)
class Reply:
    """One answer: the rows of each prompt (or text), the process's CPU time for it, its RSS."""

    blocks: list[np.ndarray]
    cpu: float
    rss: int


class EmbeddingProcess:
    """A client of one embedding process: starts it on first use, restarts it with backoff.

    Thread-safe: one exchange at a time (the lock); callers are the background analysis's worker
    thread, or a drain or benchmark on their own thread.
    """

    def __init__(
        self,
        start_timeout: float = 60.0,
        timeout: float = 5.0,
        per_text_timeout: float = 0.05,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        healthy_after: float = 120.0,
    ) -> None:
        self.start_timeout = start_timeout
        self.timeout = timeout
        self.per_text_timeout = per_text_timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.healthy_after = healthy_after
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._failures = 0  # in a row: the backoff doubles with each
        self._started_at = 0.0
        self._next_start = 0.0
        self.starts = 0
        self.failures: dict[str, int] = {}
        self.rss = 0  # the process's resident set size at its last answer
        self._closed = False
        # An exchange waits on this pipe too: a byte written to it ends the wait (interrupt()).
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    @property
    def pid(self) -> int | None:
        """The running process's id (None before the first use and after a failure)."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def retry_in(self) -> float:
        """Seconds until a failed process may be started again (0: now, or it is running)."""
        return max(0.0, self._next_start - time.monotonic()) if self._process is None else 0.0

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors, one row per text, shape ``(len(texts), DIM)`` (as ``Embedder.encode``)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return self.request("texts", texts).blocks[0]

    def encode_prompts(self, prompts: list[str]) -> list[np.ndarray]:
        """For each prompt, its sentences' embeddings (as ``Embedder.encode_prompts``)."""
        return self.request("prompts", prompts).blocks if prompts else []

    def request(self, op: str, texts: list[str]) -> Reply:
        """One exchange with the process (started first if needed); raises :class:`EmbeddingFailed`."""
        payload = frame({"op": op, "texts": texts})
        with self._lock:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 64)  # an interrupt meant for an earlier exchange
            process = self._ensure_started()
            deadline = time.monotonic() + self.timeout + self.per_text_timeout * len(texts)
            try:
                assert process.stdin is not None and process.stdout is not None
                _send(process.stdin.fileno(), payload, deadline, self._wake_r)
                header, body = _receive(process.stdout.fileno(), deadline, self._wake_r)
            except EmbeddingFailed as exc:
                self._fail(exc)
                raise
            if "error" in header:
                self._count("error")
                raise EmbeddingFailed("error", f"the embedding process refused a batch: {header['error']}")
            try:
                vectors = np.frombuffer(body, dtype=np.float32).reshape(-1, DIM)
                rows = [int(n) for n in header["rows"]]
                if sum(rows) != len(vectors):
                    raise ValueError(f"{sum(rows)} rows announced, {len(vectors)} sent")
            except (KeyError, TypeError, ValueError) as exc:
                failure = EmbeddingFailed("protocol", f"the embedding process answered garbage ({exc})")
                self._fail(failure)
                raise failure from None
            self.rss = int(header.get("rss", 0))
            blocks, start = [], 0
            for n in rows:
                blocks.append(vectors[start : start + n])
                start += n
            return Reply(blocks, float(header.get("cpu", 0.0)), self.rss)

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        process = self._process
        if process is not None:
            return process
        if self._closed:
            raise EmbeddingFailed("closed", "the embedding process was closed")
        wait = self._next_start - time.monotonic()
        if wait > 0:
            raise EmbeddingFailed("backoff", f"the embedding process restarts in {wait:.1f} s")
        started = self._started_at = time.monotonic()
        try:
            process = _launcher().start()
        except OSError as exc:
            failure = EmbeddingFailed("start", f"cannot start the embedding process: {exc}")
            self._fail(failure)
            raise failure from None
        assert process.stdin is not None and process.stdout is not None
        os.set_blocking(process.stdin.fileno(), False)
        os.set_blocking(process.stdout.fileno(), False)
        self._process = process
        self.starts += 1
        try:
            header, _ = _receive(process.stdout.fileno(), started + self.start_timeout, self._wake_r)
            if not header.get("ready"):
                raise EmbeddingFailed("start", f"the embedding process did not start: {header}")
        except EmbeddingFailed as exc:
            failure = EmbeddingFailed("interrupted" if exc.reason == "interrupted" else "start", str(exc))
            self._fail(failure)
            raise failure from None
        self.rss = int(header.get("rss", 0))
        log.info(
            "detector: embedding process %d started (model loaded in %.1f s, %d MB resident)",
            process.pid,
            time.monotonic() - started,
            self.rss >> 20,
        )
        return process

    def _count(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1

    def _fail(self, exc: EmbeddingFailed) -> None:
        """Kill the process, schedule the next start after the backoff, count and log the failure."""
        process, self._process = self._process, None
        code = None
        if process is not None:
            code = _kill(process)
        if time.monotonic() - self._started_at > self.healthy_after:
            self._failures = 0  # it ran long enough: this failure starts a new series
        self._failures += 1
        delay = min(self.max_backoff, self.backoff * 2 ** (self._failures - 1))
        self._next_start = time.monotonic() + delay
        self._count(exc.reason)
        log.warning(
            "detector: embedding process %s failed (%s: %s; exit code %s); restart in %.1f s",
            process.pid if process is not None else "-",
            exc.reason,
            exc,
            code,
            delay,
        )

    def interrupt(self) -> None:
        """End the exchange in progress now, if any: it fails (``interrupted``: the process is killed
        and restarted with backoff at the next use). For a stop that cannot wait for its deadline."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def close(self, timeout: float = 2.0) -> None:
        """Stop the process for good: interrupt an exchange in progress, end the process's input (it
        exits), kill it if it has not within ``timeout``. Later requests fail (``closed``)."""
        self._closed = True
        self.interrupt()
        with self._lock:  # the interrupted exchange returns at once
            process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
        with contextlib.suppress(OSError):
            assert process.stdout is not None
            process.stdout.close()


class _Launcher:
    """Starts embedding processes from one thread that lives as long as the worker.

    The kernel kills an embedding process when the *thread* that started it exits (the child sets
    ``PR_SET_PDEATHSIG``): started from an executor's thread, it would die with that thread (at the
    end of an event loop, in tests); started from here, only with the worker.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[Future[subprocess.Popen[bytes]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="embedding-launcher", daemon=True).start()

    def start(self) -> subprocess.Popen[bytes]:
        future: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put(future)
        return future.result()

    def _run(self) -> None:
        while True:
            future = self._requests.get()
            try:
                env = {**os.environ, PARENT_ENV: str(os.getpid())}
                process = subprocess.Popen(
                    [sys.executable, "-c", _BOOT],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=env,
                    close_fds=True,
                )
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)
            else:
                future.set_result(process)


_LAUNCHER: list[_Launcher] = []
_LAUNCHER_LOCK = threading.Lock()


def _launcher() -> _Launcher:
    with _LAUNCHER_LOCK:
        if not _LAUNCHER:
            _LAUNCHER.append(_Launcher())
        return _LAUNCHER[0]


def _kill(process: subprocess.Popen[bytes]) -> int | None:
    """SIGKILL (works on a stopped process too) and reap; the exit code."""
    with contextlib.suppress(OSError):
        process.kill()
    try:
        code = process.wait(5)
    except subprocess.TimeoutExpired:  # not reaped: the kernel has it; nothing more to do here
        code = None
    for pipe in (process.stdin, process.stdout):
        with contextlib.suppress(OSError):
            if pipe is not None:
                pipe.close()
    return code


def _interrupted() -> EmbeddingFailed:
    return EmbeddingFailed("interrupted", "the wait for the embedding process was interrupted")


def _send(fd: int, data: bytes, deadline: float, wake: int) -> None:
    view = memoryview(data)
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            raise EmbeddingFailed("hung", "the embedding process stopped reading its input")
        readable, writable, _ = select.select([wake], [fd], [], left)
        if readable:
            raise _interrupted()
        if not writable:
            continue
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            continue
        except OSError as exc:  # EPIPE: it exited
            raise EmbeddingFailed("exited", f"the embedding process is gone ({exc.strerror})") from None


def _read(fd: int, size: int, deadline: float, wake: int) -> bytes:
    chunks, left = [], size
    while left:
        wait = deadline - time.monotonic()
        if wait <= 0:
            raise EmbeddingFailed("hung", "the embedding process did not answer in time")
        readable, _, _ = select.select([fd, wake], [], [], wait)
        if wake in readable:
            raise _interrupted()
        if not readable:
            continue
        try:
            chunk = os.read(fd, min(left, 1 << 20))
        except BlockingIOError:
            continue
        if not chunk:
            raise EmbeddingFailed("exited", "the embedding process exited")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int, deadline: float, wake: int) -> tuple[dict[str, Any], bytes]:
    header_size, body_size = HEAD.unpack(_read(fd, HEAD.size, deadline, wake))
    if header_size + body_size > MAX_FRAME:
        raise EmbeddingFailed("protocol", "the embedding process sent an oversized frame")
    payload = _read(fd, header_size + body_size, deadline, wake)
    try:
        header = orjson.loads(payload[:header_size])
    except orjson.JSONDecodeError:
        raise EmbeddingFailed("protocol", "the embedding process sent an unreadable frame") from None
    if not isinstance(header, dict):
        raise EmbeddingFailed("protocol", "the embedding process sent an unreadable frame")
    return header, payload[header_size:]


_SHARED: list[EmbeddingProcess] = []


def shared_process() -> EmbeddingProcess:
    """The worker's embedding process client (one process, whatever the number of detector cores);
    closed at the interpreter's exit."""
    if not _SHARED:
        client = EmbeddingProcess()
        # Before the interpreter joins its threads (an executor's thread may be waiting on the
        # process): the hook concurrent.futures uses; the plain atexit hook where it is missing.
        register = getattr(threading, "_register_atexit", atexit.register)
        register(client.close)
        _SHARED.append(client)
    return _SHARED[0]
