"""The watermark tests' shared fixture: a ``/tokenize`` server on a real socket."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support import free_port


def word_ids(text: str) -> list[int]:
    """The token ids of a text written as words ``t123``."""
    return [int(word[1:]) for word in text.split()]


class _Tokenize(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        payload = json.dumps({"tokens": word_ids(body["content"])}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tokenize_url() -> Iterator[str]:
    """A llama.cpp-like ``/tokenize`` endpoint: the text's words ``t123`` are the token ids."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Tokenize)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
