"""The command line: built-in commands, and the plugins' commands loaded only when asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gateway.cli import BUILTIN_COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]
PRESET_SECRETS = ("DISTILLGUARD_SEAL_KEY", "DISTILLGUARD_WATERMARK_KEY")

# A built-in command, then a served app's start and stop (the ASGI lifespan, as uvicorn runs it),
# in a fresh interpreter; prints what the worker loaded of what it does not use.
WORKER_PROBE = """
import asyncio, sys
from gateway.cli import main
from gateway.server import UVICORN_DEFAULTS
from gateway.app import create_app
from gateway.config.loader import load_config
main(["check", "--config", "policies/default.yaml"])
app = create_app(lambda: load_config("policies/default.yaml"))
async def lifespan():
    inbox = asyncio.Queue()
    for message in ("lifespan.startup", "lifespan.shutdown"):
        inbox.put_nowait({"type": message})
    sent = []
    async def send(message):
        sent.append(message["type"])
    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    return sent
print("LIFESPAN", asyncio.run(lifespan()))
unused = ("policies.detector.sim", "policies.watermark.cli", "aiohttp", "httpx", "jwt", "jinja2",
          "websockets")
loaded = {m if m.startswith("policies") else m.split(".")[0] for m in sys.modules if m.startswith(unused)}
print("LOADED", sorted(loaded))
print("WS", UVICORN_DEFAULTS["ws"])
"""


def _commands(parser: object) -> set[str]:
    actions = parser._subparsers._group_actions  # type: ignore[attr-defined]
    return set(actions[0].choices)


def _run(*args: str) -> str:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, **{name: "k" * 32 for name in PRESET_SECRETS}},
    ).stdout


def test_the_built_in_commands_are_the_parser_s_own() -> None:
    assert _commands(build_parser(plugin_commands=False)) == BUILTIN_COMMANDS
    assert {"simulate", "watermark"} <= _commands(build_parser()) - BUILTIN_COMMANDS


def test_a_started_worker_does_not_load_what_it_does_not_use() -> None:
    """A served worker keeps what it imports. The plugins' commands (the simulator's client stack:
    aiohttp, httpx, its personas; the watermark's corpus tools), PyJWT without a JWT config, the
    console's templates before its first page and uvicorn's WebSocket stack cost it ~15 MB of
    resident memory together; a built-in command and an app's start load none of them."""
    out = _run("-c", WORKER_PROBE)
    assert "LIFESPAN ['lifespan.startup.complete', 'lifespan.shutdown.complete']" in out, out[-2000:]
    assert "LOADED []" in out and "WS none" in out, out[-2000:]


def test_a_plugin_command_is_found() -> None:
    assert "--replicas" in _run("-m", "gateway.cli", "simulate", "--help")
