"""Admin API: ``POST /admin/watermark/detect`` and ``GET /admin/watermark/evidence/{account}``.

``detect`` takes ``{"texts": [...], "accounts": [...]?, "alpha"?, "correction"?, "strength"?,
"per_document"?}``
and answers the detector's JSON report, using the master keys of the running
config's watermark policies; without ``accounts`` it tests every account the
gateway knows (keys file, config accounts). ``evidence`` returns what the
store recorded as served to the account.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.plugins import ConfigError
from policies.watermark.detector import Detector, candidates
from policies.watermark.inputs import detect_strength, key_specs_from_policy, watermark_configs
from policies.watermark.keys import KeySpec, load_master_keys

MAX_TEXTS = 10_000
MAX_ACCOUNTS = 100_000


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=status)


def routes(gateway: Any) -> list[BaseRoute]:
    async def detect(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(400, 'The body must be JSON: {"texts": ["..."], "accounts": ["..."]}.')
        if not isinstance(body, dict):
            return _error(400, "The body must be a JSON object.")
        texts = body.get("texts")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error(400, "texts: must be a non-empty list of strings")
        if len(texts) > MAX_TEXTS:
            return _error(400, f"texts: at most {MAX_TEXTS} documents per call")
        loaded = gateway.runtime.loaded
        specs: list[KeySpec] = []
        density = 1.0
        strengths: set[str] = set()
        for config in watermark_configs(loaded):
            found, found_density, found_strength = key_specs_from_policy(config)
            specs.extend(s for s in found if s not in specs)
            density = min(density, found_density)
            strengths.add(found_strength)
        if not specs:
            return _error(400, "no watermark policy is configured")
        accounts = body.get("accounts")
        if accounts is None:
            accounts = sorted({e.account for e in loaded.api_keys.values()} | set(loaded.gateway.accounts))
        if not isinstance(accounts, list) or not accounts or not all(isinstance(a, str) for a in accounts):
            return _error(400, "accounts: must be a non-empty list of account ids")
        if len(accounts) > MAX_ACCOUNTS:
            return _error(400, f"accounts: at most {MAX_ACCOUNTS}")
        alpha = body.get("alpha", 1e-3)
        correction = body.get("correction", "holm")
        if not isinstance(alpha, int | float) or not 0 < alpha < 1:
            return _error(400, "alpha: must be a number between 0 and 1")
        if correction not in ("holm", "bonferroni"):
            return _error(400, "correction: must be holm or bonferroni")
        try:
            masters = load_master_keys(specs)
        except ConfigError as exc:
            return _error(503, str(exc))
        strength = body.get("strength", detect_strength(strengths))
        if strength not in ("exact", "near", "auto"):
            return _error(400, "strength: must be exact, near or auto")
        detector = Detector(
            candidates(masters, accounts),
            density=density,
            alpha=alpha,
            correction=correction,
            strength=strength,
        )
        report = detector.detect(texts, per_document=bool(body.get("per_document", True)))
        return Response(orjson.dumps(report), media_type="application/json")

    async def evidence(request: Request) -> Response:
        account = request.path_params["account"]
        store = gateway.runtime.services.store
        raw = await store.get(store.key("evidence", "watermark", account))
        record = orjson.loads(raw) if raw else None
        return JSONResponse({"account": account, "evidence": record})

    return [
        # Behind the admin token: the engine guards every /admin route.
        Route("/watermark/detect", detect, methods=["POST"]),
        Route("/watermark/evidence/{account}", evidence, methods=["GET"]),
    ]
