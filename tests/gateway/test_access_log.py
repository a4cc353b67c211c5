"""The access log: one write per batch of lines, whatever the stream's own buffering, nothing lost."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

from gateway.logs import AccessLog


class RawStream(io.RawIOBase):
    """An unbuffered stream (stderr under PYTHONUNBUFFERED) taking at most ``chunk`` bytes per write."""

    def __init__(self, chunk: int = 1 << 30) -> None:
        self.chunk = chunk
        self.calls = 0
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.calls += 1
        taken = bytes(data[: self.chunk])
        self.data += taken
        return len(taken)


def _records(stream: RawStream) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.data.decode().splitlines()]


async def test_lines_are_written_in_one_call_per_flush_not_one_per_request() -> None:
    stream = RawStream()
    log = AccessLog(stream)  # type: ignore[arg-type]
    for index in range(50):
        log.write({"request_id": f"r{index}", "status": 200})
    assert stream.calls == 0  # waiting for the flush, not a system call per request
    await asyncio.sleep(log.FLUSH_AFTER + 0.2)  # flushed by the loop, without being asked
    assert stream.calls == 1
    assert [r["request_id"] for r in _records(stream)] == [f"r{index}" for index in range(50)]
    assert all(r["event"] == "access" and r["logger"] == "distillguard.access" for r in _records(stream))


async def test_a_full_buffer_is_written_at_once() -> None:
    stream = RawStream()
    log = AccessLog(stream)  # type: ignore[arg-type]
    padding = "x" * 1000
    for index in range(log.MAX_BUFFERED // 1000 + 5):
        log.write({"request_id": f"r{index}", "pad": padding})
    assert stream.calls >= 1  # before any timer could fire
    log.flush()
    assert len(_records(stream)) == log.MAX_BUFFERED // 1000 + 5


def test_a_stream_that_takes_part_of_a_write_gets_all_of_it() -> None:
    stream = RawStream(chunk=7)
    log = AccessLog(stream)  # type: ignore[arg-type]
    for index in range(20):  # no running loop: each line is flushed at once
        log.write({"request_id": f"r{index}", "status": 200})
    log.flush()
    assert [r["request_id"] for r in _records(stream)] == [f"r{index}" for index in range(20)]
