"""The admin API, behind its own bearer token (``admin.token_env``); off when no token is set.

Engine routes: account risk status and manual level pins (kept in the state store, so
every worker and replica applies them: ``gateway/pins.py``). The admin API is served on
the operator listener only, never on the public port. Policies add their
own routes through the ``distillguard.admin`` entry-point group. The engine
guards the whole ``/admin`` mount (:func:`guard_admin`): a route, the engine's
or a plugin's, is reached only with the admin token, whether or not it checks
the token itself (:func:`require_admin` remains for handlers that want to).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.plugins.base import RISK_LEVELS
from gateway.state.base import StoreUnavailableError

if TYPE_CHECKING:
    from gateway.engine import Gateway

Handler = Callable[[Request], Awaitable[Response]]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "admin_error"}}, status_code=status)


def _denial(gateway: Gateway, headers: Mapping[str, str]) -> JSONResponse | None:
    """Why a request may not use the admin API (a response to send), or None when it may."""
    env = gateway.runtime.config.admin.token_env
    expected = os.environ.get(env, "") if env else ""
    if not expected:
        return _error(404, "The admin API is disabled (set admin.token_env).")
    supplied = headers.get("authorization", "")
    scheme, _, token = supplied.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        return _error(401, "Invalid admin token.")
    return None


def require_admin(gateway: Gateway, handler: Handler) -> Handler:
    """Wrap an admin handler with the admin-token check (constant-time)."""

    async def guarded(request: Request) -> Response:
        denied = _denial(gateway, request.headers)
        return denied if denied is not None else await handler(request)

    return guarded


def guard_admin(gateway: Gateway, app: ASGIApp) -> ASGIApp:
    """``app`` (the /admin routes) behind the admin token: checked before any route is matched.

    The engine wraps the whole mount, plugin routes included, so a route that forgets
    :func:`require_admin` is still guarded; anything but HTTP (a websocket) is refused.
    """

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        denied = _denial(gateway, Request(scope).headers)
        if denied is not None:
            await denied(scope, receive, send)
            return
        await app(scope, receive, send)

    return guarded


def admin_routes(gateway: Gateway) -> list[BaseRoute]:
    async def account(request: Request) -> Response:
        account_id = request.path_params["account"]
        risk = gateway.risk
        return JSONResponse(
            {"account": account_id, "risk_level": risk.level(account_id), "pinned": risk.pinned(account_id)}
        )

    async def pin(request: Request) -> Response:
        account_id = request.path_params["account"]
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(400, 'The body must be JSON: {"level": "high" | null, "reason": "..."}.')
        level = body.get("level") if isinstance(body, dict) else None
        if level is not None and level not in RISK_LEVELS:
            return _error(400, f"level must be one of {list(RISK_LEVELS)} or null")
        reason = str(body.get("reason", "operator override")) if isinstance(body, dict) else ""
        try:
            await gateway.pins.set(account_id, level, reason=reason)
        except StoreUnavailableError:
            return _error(503, "The state store is unreachable: the pin was not set, on any worker. Retry.")
        return JSONResponse(
            {"account": account_id, "risk_level": gateway.risk.level(account_id), "pinned": level}
        )

    async def levels(request: Request) -> Response:
        return JSONResponse(gateway.risk.accounts_at())

    async def reload(request: Request) -> Response:
        applied = await gateway.reload("admin API")
        return JSONResponse({"applied": applied, "config": gateway.runtime.loaded.fingerprint[:12]})

    return [
        Route("/accounts/{account}", require_admin(gateway, account), methods=["GET"]),
        Route("/accounts/{account}/level", require_admin(gateway, pin), methods=["PUT", "POST"]),
        Route("/levels", require_admin(gateway, levels), methods=["GET"]),
        Route("/reload", require_admin(gateway, reload), methods=["POST"]),
    ]
