"""The admin API, called in process: the console's only way to the detector's and watermark's data.

The console is engine code and names no policy; the policies publish what an operator may see and
do through their ``distillguard.admin`` routes, so the console calls exactly those routes (through
``require_admin``, with the configured token), over ASGI in this process, with no socket. What an
analyst does in the browser is therefore exactly what ``curl`` against ``/admin`` would do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson


class AdminCallError(Exception):
    """The admin API answered with an error (status and its message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def seg(value: str) -> str:
    """One path segment, quoted (account ids may hold any character)."""
    return quote(value, safe="")


class AdminClient:
    """JSON calls to the mounted admin app with the bearer token the caller passes."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._transport: Any = None  # httpx's, made at the first call: a worker whose console is never
        # opened does not keep httpx in memory

    async def call(
        self, token: str, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None
    ) -> Any:
        """``method path`` on the admin API; the decoded JSON, or AdminCallError for a non-2xx answer."""
        import httpx

        if self._transport is None:
            self._transport = httpx.ASGITransport(app=self._app)
        async with httpx.AsyncClient(transport=self._transport, base_url="http://console.internal") as client:
            response = await client.request(
                method,
                path,
                params=params,
                content=orjson.dumps(body) if body is not None else None,
                headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
            )
        try:
            data = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            data = None
        if response.status_code >= 400:
            message = ""
            if isinstance(data, dict) and isinstance(data.get("error"), dict):
                message = str(data["error"].get("message", ""))
            raise AdminCallError(
                response.status_code, message or f"admin API answered {response.status_code}"
            )
        return data

    async def get(self, token: str, path: str, **params: str) -> Any:
        return await self.call(token, "GET", path, params=params or None)

    async def optional(self, token: str, path: str, **params: str) -> Any:
        """Like :meth:`get`, but None when the route answers 404 (no such policy configured)."""
        try:
            return await self.get(token, path, **params)
        except AdminCallError as exc:
            if exc.status == 404:
                return None
            raise
