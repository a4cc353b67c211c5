"""The wire format between a gateway worker and its embedding process (:mod:`embed_worker`).

Both ways: frames of ``[u32 header length][u32 body length][header][body]`` (big endian). A
request's header is JSON ``{"op": "prompts" | "texts", "texts": [...]}``, no body. A reply's header
is JSON ``{"rows": [n, ...], "cpu": s, "rss": bytes}`` (one row count per prompt for ``prompts``,
one count for all the texts of ``texts``) and its body the float32 rows, row after row; or
``{"error": "..."}`` when the request could not be served (the process goes on). The process's
first frame is ``{"ready": true, "seconds": s, "rss": bytes}`` once its model is loaded.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import orjson

HEAD = struct.Struct(">II")
PARENT_ENV = "DISTILLGUARD_EMBED_PARENT"  # the worker's pid, in the embedding process's environment
MAX_FRAME = 64 << 20  # a request is at most a batch of clipped prompts: far below this


def frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    """One frame of the wire format."""
    encoded = orjson.dumps(header)
    return HEAD.pack(len(encoded), len(body)) + encoded + body


def rss_bytes() -> int:
    """This process's resident set size (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
