"""The console's routes under ``/console`` (mounted on the operator listener by ``gateway.app``).

Pages are GETs and change nothing; every change is a POST form with the session's CSRF token,
written to the operator audit log (who, what, why) before it is taken. Actions on accounts go
through the admin API, with the analyst's reason and name in the reason it records.
"""

from __future__ import annotations

import contextlib
import hmac
import re
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.console import views
from gateway.console.audit import AuditUnavailableError, OperatorAudit
from gateway.console.backend import AdminCallError, AdminClient, seg
from gateway.console.guard import FormError, Guard, admin_token, read_form, secure
from gateway.console.session import COOKIE, Session, Sessions
from gateway.console.templates import environment
from gateway.plugins.base import RISK_LEVELS

if TYPE_CHECKING:
    from gateway.engine import Gateway

OPERATOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@ -]{0,63}$")
MAX_REASON = 500
PROBE_ALPHA = 0.01  # a suspect is reported as carrying an account's canaries at this corrected p-value
STATIC = {"console.css": "text/css", "console.js": "text/javascript"}
NOTICES = {
    "pin": "Pinned.",
    "clear": "Pin cleared.",
    "allowlist": "Added to the allowlist.",
    "unallowlist": "Removed from the allowlist.",
    "block": "Blocked.",
}


def console_routes(gateway: Gateway, admin_app: Any) -> list[BaseRoute]:
    """The routes to mount at ``/console``; ``admin_app`` is the ASGI app serving ``/admin``."""
    api = AdminClient(admin_app)
    sessions = Sessions(lambda: gateway.runtime.services.store)
    audit = OperatorAudit(lambda: gateway.runtime.config.admin.audit_log)

    def render(
        template: str, request: Request, session: Session | None, code: int = 200, **data: Any
    ) -> Response:
        html = (
            environment()
            .get_template(template)
            .render(session=session, path=request.url.path, query=request.query_params, **data)
        )
        return secure(HTMLResponse(html, status_code=code))

    def refused(request: Request, status: int, message: str, session: Session | None = None) -> Response:
        return render("error.html", request, session, code=status, status_code=status, message=message)

    guard = Guard(gateway, sessions, refused)

    def record(session: Session | None, action: str, target: str, reason: str = "", **extra: Any) -> None:
        audit.write(
            {
                "operator": session.operator if session else extra.pop("operator", ""),
                "session": session.short if session else None,
                "action": action,
                "target": target,
                "reason": reason,
                **extra,
            }
        )

    # --- sign-in -------------------------------------------------------------------------------

    async def signin_page(request: Request) -> Response:
        return render("signin.html", request, None)

    async def signin(request: Request) -> Response:
        try:
            form = await read_form(request)
        except FormError as exc:
            return refused(request, exc.status, exc.message)
        operator = form.get("operator", "").strip()
        supplied = form.get("token", "")
        expected = admin_token(gateway)
        if not OPERATOR.match(operator):
            return render(
                "signin.html",
                request,
                None,
                code=400,
                error="Give your name (letters, digits, . _ @ - and spaces; up to 64).",
            )
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            with contextlib.suppress(AuditUnavailableError):  # a refusal changes nothing; the log has it
                record(None, "sign-in", "console", outcome="refused", operator=operator)
            return render(
                "signin.html", request, None, code=401, error="Wrong admin token.", operator=operator
            )
        minutes = gateway.runtime.config.admin.console.session_minutes
        try:
            record(None, "sign-in", "console", outcome="done", operator=operator)
        except AuditUnavailableError as exc:
            return render("signin.html", request, None, code=503, error=str(exc))
        session_id, _ = await sessions.create(operator, expected, minutes)
        response = RedirectResponse("/console/board", status_code=303)
        response.set_cookie(
            COOKIE,
            session_id,
            max_age=minutes * 60,
            path="/console",
            httponly=True,
            samesite="strict",
            secure=gateway.runtime.config.admin.console.secure_cookie,
        )
        return response

    async def signout(request: Request, session: Session, form: dict[str, str]) -> Response:
        await sessions.end(session)
        with contextlib.suppress(AuditUnavailableError):  # ending a session is never refused
            record(session, "sign-out", "console", outcome="done")
        response = RedirectResponse("/console/signin", status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    async def home(request: Request, session: Session) -> Response:
        return RedirectResponse("/console/board", status_code=303)

    # --- pages ----------------------------------------------------------------------------------

    async def board(request: Request, session: Session) -> Response:
        filters = {k: request.query_params.get(k, "") for k in ("tier", "level", "signal", "cluster")}
        since = await sessions.board_seen(session.operator)  # per analyst, across sessions and workers
        data = await views.board(api, admin_token(gateway), gateway, filters, since)
        await sessions.saw_board(session.operator, time.time())
        return render("board.html", request, session, filters=filters, since=since, **data)

    async def account(request: Request, session: Session) -> Response:
        name = request.path_params["account"]
        data = await views.account(api, admin_token(gateway), gateway, name)
        notice = NOTICES.get(request.query_params.get("done", ""))
        return render("account.html", request, session, notice=notice, **data)

    async def clusters(request: Request, session: Session) -> Response:
        token = admin_token(gateway)
        listing = await api.optional(token, "/detector/clusters")
        if listing is None:
            return refused(request, 404, "No detector policy is configured.", session)
        every = await api.get(token, "/detector/clusters", all="true")
        flagged = {c["id"] for c in listing["clusters"]}
        others = [c for c in every["clusters"] if c["id"] not in flagged]
        return render("clusters.html", request, session, flagged=listing["clusters"], others=others[:50])

    async def cluster(request: Request, session: Session) -> Response:
        cluster_id = request.path_params["cluster"]
        try:
            data = await views.cluster(api, admin_token(gateway), cluster_id)
        except AdminCallError as exc:
            return refused(request, exc.status, exc.message, session)
        return render("cluster.html", request, session, done=request.query_params.get("done"), **data)

    async def leak_page(request: Request, session: Session) -> Response:
        return render("leak.html", request, session, report=None, text="")

    async def config_page(request: Request, session: Session) -> Response:
        return render("config.html", request, session, **views.configuration(gateway))

    async def audit_page(request: Request, session: Session) -> Response:
        return render(
            "audit.html",
            request,
            session,
            entries=audit.recent(200),
            path_set=bool(gateway.runtime.config.admin.audit_log),
        )

    # --- actions --------------------------------------------------------------------------------

    def _reason(form: dict[str, str]) -> str | None:
        reason = " ".join(form.get("reason", "").split())
        return reason[:MAX_REASON] if reason else None

    async def act(
        request: Request, session: Session, form: dict[str, str], name: str, what: str, reason: str
    ) -> Response | None:
        """Take one action on account ``name``; None when done, else the error page."""
        token = admin_token(gateway)
        loaded = gateway.runtime.loaded
        tagged = f"{reason} [{session.operator} via console]"
        body: dict[str, Any] | None = None
        if what == "pin":
            level = form.get("level", "")
            if level not in RISK_LEVELS:
                return refused(request, 400, f"level must be one of {list(RISK_LEVELS)}.", session)
            method, path, body = "PUT", f"/accounts/{seg(name)}/level", {"level": level, "reason": tagged}
        elif what == "clear":
            method, path, body = "PUT", f"/accounts/{seg(name)}/level", {"level": None, "reason": tagged}
        elif what == "block":
            tier = views.tiers_of(loaded).get(name, loaded.gateway.default_tier)
            blocking = views.blocking_level(loaded, name, tier)
            if blocking is None:
                message = f"No risk level blocks tier {tier!r}: set risk_levels.<level>.block in the config."
                return refused(request, 409, message, session)
            method, path, body = "PUT", f"/accounts/{seg(name)}/level", {"level": blocking, "reason": tagged}
        elif what == "allowlist":
            method, path = "PUT", f"/detector/allowlist/{seg(name)}"
        elif what == "unallowlist":
            method, path = "DELETE", f"/detector/allowlist/{seg(name)}"
        else:
            return refused(request, 400, "Unknown action.", session)
        extra = {"level": body["level"]} if body and body.get("level") else {}
        try:
            record(session, what, f"account:{name}", reason, outcome="requested", **extra)
        except AuditUnavailableError as exc:
            return refused(request, 503, f"Refused: {exc}", session)
        try:
            await api.call(token, method, path, body=body)
        except AdminCallError as exc:
            record(session, what, f"account:{name}", reason, outcome=f"failed: {exc.message}", **extra)
            return refused(request, exc.status, exc.message, session)
        record(session, what, f"account:{name}", reason, outcome="done", **extra)
        return None

    async def account_action(request: Request, session: Session, form: dict[str, str]) -> Response:
        name = request.path_params["account"]
        what = form.get("action", "")
        reason = _reason(form)
        if reason is None:
            return refused(request, 400, "A reason is required for every action on an account.", session)
        failed = await act(request, session, form, name, what, reason)
        if failed is not None:
            return failed
        return RedirectResponse(f"/console/accounts/{seg(name)}?done={what}", status_code=303)

    async def cluster_action(request: Request, session: Session, form: dict[str, str]) -> Response:
        """Block every member of a cluster (the analyst confirmed it on the cluster page)."""
        cluster_id = request.path_params["cluster"]
        reason = _reason(form)
        if reason is None or form.get("action") != "block":
            return refused(request, 400, "Blocking a cluster needs a reason.", session)
        try:
            summary = await api.get(admin_token(gateway), f"/detector/clusters/{seg(cluster_id)}")
        except AdminCallError as exc:
            return refused(request, exc.status, exc.message, session)
        for member in summary["members"]:
            failed = await act(
                request, session, form, member["account"], "block", f"{reason} (cluster {cluster_id})"
            )
            if failed is not None:
                return failed
        return RedirectResponse(f"/console/clusters/{seg(cluster_id)}?done=block", status_code=303)

    async def export(
        request: Request, session: Session, form: dict[str, str], kind: str, ident: str
    ) -> Response:
        path = f"/detector/evidence/{kind}s/{seg(ident)}"
        try:
            record(session, "export", f"{kind}:{ident}", _reason(form) or "", outcome="requested")
        except AuditUnavailableError as exc:
            return refused(request, 503, f"Refused: {exc}", session)
        try:
            bundle = await api.get(admin_token(gateway), path)
        except AdminCallError as exc:
            return refused(request, exc.status, exc.message, session)
        record(
            session,
            "export",
            f"{kind}:{ident}",
            _reason(form) or "",
            outcome="done",
            sha256=bundle.get("sha256"),
        )
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", ident)[:80]
        return secure(
            Response(
                orjson.dumps(bundle, option=orjson.OPT_INDENT_2),
                media_type="application/json",
                headers={"content-disposition": f'attachment; filename="evidence-{kind}-{safe}.json"'},
            )
        )

    async def account_export(request: Request, session: Session, form: dict[str, str]) -> Response:
        return await export(request, session, form, "account", request.path_params["account"])

    async def cluster_export(request: Request, session: Session, form: dict[str, str]) -> Response:
        return await export(request, session, form, "cluster", request.path_params["cluster"])

    async def leak_check(request: Request, session: Session, form: dict[str, str]) -> Response:
        text = form.get("text", "")
        docs = views.documents(text)
        if not docs:
            return render(
                "leak.html",
                request,
                session,
                code=400,
                report=None,
                text=text,
                error="Paste some text first.",
            )
        try:
            record(session, "leak-check", "watermark", "", outcome="requested", documents=len(docs))
        except AuditUnavailableError as exc:
            return refused(request, 503, f"Refused: {exc}", session)
        try:
            report = await api.call(admin_token(gateway), "POST", "/watermark/detect", body={"texts": docs})
        except AdminCallError as exc:
            return render(
                "leak.html", request, session, code=exc.status, report=None, text=text, error=exc.message
            )
        attributed = report["corpus"]["attributed"]
        record(
            session,
            "leak-check",
            "watermark",
            "",
            outcome="done",
            documents=len(docs),
            attributed=[a["account"] for a in attributed],
        )
        return render("leak.html", request, session, report=report, text=text)

    async def leak_probe(request: Request, session: Session, form: dict[str, str]) -> Response:
        """Ask a suspect model our canary triggers (the admin API's ``/watermark/probe``)."""
        body = views.probe_body(form)
        endpoint, model = body["endpoint"], body["model"]
        try:
            record(
                session, "canary-probe", "watermark", "", outcome="requested", endpoint=endpoint, model=model
            )
        except AuditUnavailableError as exc:
            return refused(request, 503, f"Refused: {exc}", session)
        try:
            report = await api.call(admin_token(gateway), "POST", "/watermark/probe", body=body)
        except AdminCallError as exc:
            return render(
                "leak.html",
                request,
                session,
                code=exc.status,
                report=None,
                text="",
                probe_form=form,
                probe_error=exc.message,
            )
        found = [r["account"] for r in report["results"] if r["p_corrected"] <= PROBE_ALPHA]
        record(session, "canary-probe", "watermark", "", outcome="done", endpoint=endpoint, attributed=found)
        return render(
            "leak.html",
            request,
            session,
            report=None,
            text="",
            probe=report,
            probe_form=form,
            probe_alpha=PROBE_ALPHA,
        )

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return refused(request, 404, "No such file.")
        data = resources.files("gateway.console").joinpath("static", name).read_bytes()
        return Response(data, media_type=STATIC[name], headers={"cache-control": "max-age=300"})

    return [
        Route("/", guard.page(home), methods=["GET"]),
        Route("/signin", guard.open(signin_page), methods=["GET"]),
        Route("/signin", guard.open(signin), methods=["POST"]),
        Route("/signout", guard.action(signout), methods=["POST"]),
        Route("/board", guard.page(board), methods=["GET"]),
        Route("/accounts/{account:path}/action", guard.action(account_action), methods=["POST"]),
        Route("/accounts/{account:path}/evidence", guard.action(account_export), methods=["POST"]),
        Route("/accounts/{account:path}", guard.page(account), methods=["GET"]),
        Route("/clusters", guard.page(clusters), methods=["GET"]),
        Route("/clusters/{cluster:path}/action", guard.action(cluster_action), methods=["POST"]),
        Route("/clusters/{cluster:path}/evidence", guard.action(cluster_export), methods=["POST"]),
        Route("/clusters/{cluster:path}", guard.page(cluster), methods=["GET"]),
        Route("/leak", guard.page(leak_page), methods=["GET"]),
        Route("/leak", guard.action(leak_check), methods=["POST"]),
        Route("/leak/probe", guard.action(leak_probe), methods=["POST"]),
        Route("/config", guard.page(config_page), methods=["GET"]),
        Route("/audit", guard.page(audit_page), methods=["GET"]),
        Route("/static/{name}", guard.open(static), methods=["GET"]),
    ]
