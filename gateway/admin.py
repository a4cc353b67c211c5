"""The admin API, behind its own bearer token (``admin.token_env``); off when no token is set.

Engine routes: account risk status and manual level pins (kept in the state store, so
every worker and replica applies them: ``gateway/pins.py``). The admin API is served on
the operator listener only, never on the public port. Policies add their
own routes through the ``distillguard.admin`` entry-point group; every route
under /admin is guarded by :func:`require_admin`.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.plugins.base import RISK_LEVELS
from gateway.state.base import StoreUnavailableError

if TYPE_CHECKING:
    from gateway.engine import Gateway

Handler = Callable[[Request], Awaitable[Response]]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "admin_error"}}, status_code=status)


def require_admin(gateway: Gateway, handler: Handler) -> Handler:
    """Wrap an admin handler with the admin-token check (constant-time)."""

    async def guarded(request: Request) -> Response:
        env = gateway.runtime.config.admin.token_env
        expected = os.environ.get(env, "") if env else ""
        if not expected:
            return _error(404, "The admin API is disabled (set admin.token_env).")
        supplied = request.headers.get("authorization", "")
        scheme, _, token = supplied.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
            return _error(401, "Invalid admin token.")
        return await handler(request)

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
