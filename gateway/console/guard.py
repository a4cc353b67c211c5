"""What stands in front of every console route: on/off, the session, CSRF, forms and response headers.

Deny by default: a page needs a live session (else a redirect to the sign-in page, with nothing
of the page); a POST needs the session and its CSRF token (and, when the browser names an
``Origin``, our own); the console is absent (404) while the admin token is unset or the console
is disabled in the config.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from gateway.console.backend import AdminCallError
from gateway.console.session import COOKIE, Session, Sessions
from gateway.state.base import StoreUnavailableError

if TYPE_CHECKING:
    from gateway.engine import Gateway

MAX_FORM_BYTES = 4 * 1024 * 1024  # a pasted corpus; larger ones go through the API or the CLI

HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # "no-referrer" would make browsers post "Origin: null"
    "cache-control": "no-store",
}


class FormError(Exception):
    """The request body is not a form the console accepts (status and message for the page)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def admin_token(gateway: Gateway) -> str:
    """The admin token now configured ('' when the admin API, and so the console, is off)."""
    env = gateway.runtime.config.admin.token_env
    return os.environ.get(env, "") if env else ""


def console_on(gateway: Gateway) -> bool:
    return bool(admin_token(gateway)) and gateway.runtime.config.admin.console.enabled


def secure(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (the last value of a repeated field)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise FormError(415, "The console accepts form posts only.")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise FormError(413, f"The form is larger than {MAX_FORM_BYTES // 1024 // 1024} MiB.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError(413, f"The form is larger than {MAX_FORM_BYTES // 1024 // 1024} MiB.")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise FormError(400, "The form is not UTF-8.") from exc
    return {key: values[-1] for key, values in parsed.items()}


def same_origin(request: Request) -> bool:
    """True unless the browser says the request comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


def csrf_ok(session: Session, form: dict[str, str], request: Request) -> bool:
    supplied = form.get("csrf", "")
    return same_origin(request) and hmac.compare_digest(supplied.encode(), session.csrf.encode())


Page = Callable[[Request, Session], Awaitable[Response]]
Action = Callable[[Request, Session, dict[str, str]], Awaitable[Response]]


class Guard:
    """Wraps console handlers with the checks of the module docstring."""

    def __init__(self, gateway: Gateway, sessions: Sessions, refused: Callable[..., Response]) -> None:
        self.gateway = gateway
        self.sessions = sessions
        self.refused = refused  # (request, status, message) -> an error page

    async def session_of(self, request: Request) -> Session | None:
        return await self.sessions.load(request.cookies.get(COOKIE), admin_token(self.gateway))

    def open(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A route anyone may reach while the console is on (sign-in, static files)."""

        async def run(request: Request) -> Response:
            if not console_on(self.gateway):
                return secure(PlainTextResponse("Not Found", status_code=404))
            try:
                return secure(await handler(request))
            except StoreUnavailableError:
                return secure(self.refused(request, 503, "The state store is unreachable; retry shortly."))
            except AdminCallError as exc:  # the admin API refused what the page needed: say so, in a page
                return secure(self.refused(request, exc.status, exc.message))

        return run

    def page(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        """A GET page: the session or a redirect to sign in."""

        async def run(request: Request) -> Response:
            session = await self.session_of(request)
            if session is None:
                return RedirectResponse("/console/signin", status_code=303)
            return await handler(request, session)

        return self.open(run)

    def action(self, handler: Action) -> Callable[[Request], Awaitable[Response]]:
        """A POST: the session (401), a form (4xx), and its CSRF token (403)."""

        async def run(request: Request) -> Response:
            session = await self.session_of(request)
            if session is None:
                return self.refused(request, 401, "Sign in first: this session is unknown or expired.")
            try:
                form = await read_form(request)
            except FormError as exc:
                return self.refused(request, exc.status, exc.message)
            if not csrf_ok(session, form, request):
                return self.refused(
                    request, 403, "The form's CSRF token is missing or wrong; reload the page."
                )
            return await handler(request, session, form)

        return self.open(run)
