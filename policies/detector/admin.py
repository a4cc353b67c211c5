"""Admin API of the detector (entry point ``distillguard.admin``); the engine puts it behind the admin token.

Under ``/admin/detector``::

    GET    /accounts?min_level=elevated   accounts at or above a level (this replica's board)
    GET    /accounts/{id}                 status: level, votes, pin, allowlist, features, score breakdown
    GET    /changes?since=<unix ts>       recent level changes seen by this replica (newest last)
    GET    /clusters[?all=true]           flagged clusters (or every group shared by 2+ accounts)
    GET    /clusters/{id}                 one cluster and its members
    GET    /allowlist                     configured and operator-added entries
    PUT    /allowlist/{id}                add (never raised; lowered now if raised)
    DELETE /allowlist/{id}                remove (config entries cannot be removed here)
    GET    /evidence/accounts/{id}        evidence bundle of an account
    GET    /evidence/clusters/{id}        evidence bundle of a cluster

Level overrides are the engine's ``PUT /admin/accounts/{id}/level``; the
detector shares those pins between replicas.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.plugins import RISK_LEVELS, AdminContext
from policies.detector.core import CORE_KEY, DetectorCore
from policies.detector.evidence import account_bundle, cluster_bundle, seal
from policies.detector.scoring import RANK


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "admin_error"}}, status_code=status)


def routes(gateway: AdminContext) -> list[BaseRoute]:
    def core() -> DetectorCore | None:
        found = gateway.shared.get(CORE_KEY, DetectorCore)
        return found if found.configured else None

    def guarded(
        handler: Callable[[Request, DetectorCore], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        # (The admin token is checked by the engine before any /admin route is reached.)
        async def run(request: Request) -> Response:
            detector = core()
            if detector is None:
                return _error(404, "No detector policy is configured.")
            return await handler(request, detector)

        return run

    async def accounts(request: Request, detector: DetectorCore) -> Response:
        minimum = request.query_params.get("min_level", "elevated")
        if minimum not in RISK_LEVELS:
            return _error(400, f"min_level must be one of {list(RISK_LEVELS)}")
        risk = gateway.risk
        names = set(detector.accounts) | set(risk.pins())
        for votes in detector.levels.remote_votes:
            names.add(votes)
        out = []
        for name in sorted(names):
            level = risk.level(name)
            if RANK[level] >= RANK[minimum]:
                state = detector.accounts.get(name)
                out.append(
                    {
                        "account": name,
                        "risk_level": level,
                        "pinned": risk.pinned(name),
                        "score": round(state.last_score, 4) if state else None,
                        "requests": state.requests if state else None,
                        "cluster": state.cluster if state else None,
                    }
                )
        return JSONResponse({"accounts": out, "levels": risk.accounts_at()})

    async def account(request: Request, detector: DetectorCore) -> Response:
        await detector.drain()
        return JSONResponse(detector.status(request.path_params["account"]))

    async def changes(request: Request, detector: DetectorCore) -> Response:
        try:
            since = float(request.query_params.get("since", "0"))
        except ValueError:
            return _error(400, "since must be a unix timestamp (seconds)")
        await detector.drain()
        return JSONResponse({"changes": [c for c in detector.audit.recent if c["at"] > since]})

    async def clusters(request: Request, detector: DetectorCore) -> Response:
        everything = request.query_params.get("all", "false").lower() in ("1", "true", "yes")
        return JSONResponse({"clusters": detector.clusters(flagged_only=not everything)})

    async def cluster(request: Request, detector: DetectorCore) -> Response:
        group = detector.index.find(request.path_params["cluster"])
        if group is None:
            return _error(404, "Unknown cluster id.")
        summary = group.summary()
        summary["members"] = [
            {"account": name, "requests": uses, "risk_level": gateway.risk.level(name)}
            for name, uses in list(group.members.items())[:1000]
        ]
        return JSONResponse(summary)

    async def allowlist(request: Request, detector: DetectorCore) -> Response:
        levels = detector.levels
        return JSONResponse(
            {"configured": sorted(levels.allow_config), "operator": sorted(levels.allow_shared)}
        )

    async def allow_add(request: Request, detector: DetectorCore) -> Response:
        account_id = request.path_params["account"]
        detector.allow(account_id, True)
        return JSONResponse(
            {"account": account_id, "allowlisted": True, "risk_level": gateway.risk.level(account_id)}
        )

    async def allow_remove(request: Request, detector: DetectorCore) -> Response:
        account_id = request.path_params["account"]
        if account_id in detector.levels.allow_config:
            return _error(409, "This account is allowlisted in the config; remove it there.")
        detector.allow(account_id, False)
        return JSONResponse({"account": account_id, "allowlisted": False})

    async def evidence_account(request: Request, detector: DetectorCore) -> Response:
        bundle = await account_bundle(detector, request.path_params["account"])
        return JSONResponse(seal(bundle, detector.replica))

    async def evidence_cluster(request: Request, detector: DetectorCore) -> Response:
        bundle = await cluster_bundle(detector, request.path_params["cluster"])
        if bundle is None:
            return _error(404, "Unknown cluster id.")
        return JSONResponse(seal(bundle, detector.replica))

    prefix = "/detector"
    return [
        Route(f"{prefix}/accounts", guarded(accounts), methods=["GET"]),
        Route(f"{prefix}/accounts/{{account}}", guarded(account), methods=["GET"]),
        Route(f"{prefix}/changes", guarded(changes), methods=["GET"]),
        Route(f"{prefix}/clusters", guarded(clusters), methods=["GET"]),
        Route(f"{prefix}/clusters/{{cluster:path}}", guarded(cluster), methods=["GET"]),
        Route(f"{prefix}/allowlist", guarded(allowlist), methods=["GET"]),
        Route(f"{prefix}/allowlist/{{account}}", guarded(allow_add), methods=["PUT", "POST"]),
        Route(f"{prefix}/allowlist/{{account}}", guarded(allow_remove), methods=["DELETE"]),
        Route(f"{prefix}/evidence/accounts/{{account}}", guarded(evidence_account), methods=["GET"]),
        Route(f"{prefix}/evidence/clusters/{{cluster:path}}", guarded(evidence_cluster), methods=["GET"]),
    ]
