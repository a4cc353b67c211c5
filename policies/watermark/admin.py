"""Admin API: ``POST /admin/watermark/detect`` and ``GET /admin/watermark/evidence/{account}``.

``detect`` takes ``{"texts": [...], "accounts": [...]?, "alpha"?, "correction"?, "strength"?,
"per_document"?, "scheme"?: "lexical" | "green_list", "model"?}`` (green_list: the tokenizer and
vocabulary of the ``green_list.models`` entry for ``model``, else the first) and answers the
detector's JSON report, using the master keys of the running config's watermark policies; without
``accounts`` it tests every account the gateway knows (keys file, config accounts).
``evidence`` returns what the store recorded as served to the account.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.admin import require_admin
from gateway.errors import ConfigError
from policies.watermark.detector import Detector, candidates
from policies.watermark.green_detect import GreenListDetector, make_tokenizer
from policies.watermark.inputs import (
    detect_strength,
    green_list_settings,
    key_specs_from_policy,
    watermark_configs,
)
from policies.watermark.keys import KeySpec, load_master_keys

MAX_TEXTS = 10_000
MAX_ACCOUNTS = 100_000


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=status)


async def _green(
    loaded: Any,
    body: dict[str, Any],
    masters: Any,
    accounts: list[str],
    texts: list[str],
    alpha: float,
    correction: str,
) -> Response:
    """``"scheme": "green_list"``: the green_list entry of ``model`` (else the first) names the tokenizer."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        return _error(400, "model: must be a string")
    found = green_list_settings(watermark_configs(loaded), model)
    if found is None:
        where = "model: no watermark green_list.models entry matches" if model else "no green_list.models"
        return _error(400, where)
    entry, gamma = found
    try:
        tokenizer = make_tokenizer(entry.tokenizer_url, entry.tokenizer_json)
    except ValueError as exc:
        return _error(503, str(exc))
    detector = GreenListDetector(
        masters,
        candidates(masters, accounts),
        vocab_size=entry.vocab_size,
        gamma=gamma,
        tokenize=tokenizer.encode,
        alpha=alpha,
        correction=correction,
    )
    try:  # the tokenizer is an HTTP call or a native library: off the event loop
        report = await asyncio.to_thread(detector.detect, texts, bool(body.get("per_document", True)))
    except (httpx.HTTPError, ValueError) as exc:
        return _error(502, f"the tokenizer failed: {exc}")
    return Response(orjson.dumps(report), media_type="application/json")


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
        if body.get("scheme", "lexical") == "green_list":
            return await _green(loaded, body, masters, accounts, texts, alpha, correction)
        if body.get("scheme", "lexical") != "lexical":
            return _error(400, "scheme: must be lexical or green_list")
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
        Route("/watermark/detect", require_admin(gateway, detect), methods=["POST"]),
        Route("/watermark/evidence/{account}", require_admin(gateway, evidence), methods=["GET"]),
    ]
