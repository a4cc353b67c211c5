"""Admin API: ``POST /admin/watermark/detect``, ``POST /admin/watermark/probe`` and
``GET /admin/watermark/evidence/{account}``.

``detect`` takes ``{"texts": [...], "accounts": [...]?, "alpha"?, "correction"?, "strength"?,
"per_document"?, "scheme"?: "lexical" | "green_list", "model"?}`` (green_list: the tokenizer and
vocabulary of the ``green_list.models`` entry for ``model``, else the first) and answers the
detector's JSON report, using the master keys of the running config's watermark policies; without
``accounts`` it tests every account the gateway knows (keys file, config accounts). ``probe`` takes
``{"endpoint": "http://host/v1", "model"?, "api_key_env"?, "accounts"?, "samples"?, "decoys"?}``,
asks that suspect OpenAI-compatible model our canary triggers and answers the canary test per
account (see ``probe.py``); the suspect's API key is named by an environment variable
``DISTILLGUARD_PROBE_*``, never sent in the body, and no other variable can be named (the gateway's
own credentials never leave for a URL a request names). ``evidence`` returns what the store
recorded as served to the account.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.plugins import AdminContext, ConfigError
from policies.watermark.detector import Detector, candidates
from policies.watermark.green_detect import GreenListDetector
from policies.watermark.inputs import (
    detect_strength,
    green_list_settings,
    key_specs_from_policy,
    watermark_configs,
)
from policies.watermark.keys import KeySpec, MasterKey, load_master_keys
from policies.watermark.model_tokenizers import cached_tokenizer
from policies.watermark.probe import openai_asker, probe

PROBE_KEY_PREFIX = "DISTILLGUARD_PROBE_"
MAX_DECOYS = 999
MAX_SAMPLES = 8

MAX_TEXTS = 10_000
MAX_ACCOUNTS = 100_000


def _http_error() -> type[Exception]:
    """httpx's error class, imported when a call failed: a served worker keeps no httpx in memory."""
    import httpx

    return httpx.HTTPError


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
    entry, layout = found
    try:  # reading a GGUF file takes seconds the first time: off the event loop, then cached
        tokenizer = await asyncio.to_thread(
            cached_tokenizer, entry.tokenizer_url, entry.tokenizer_json, entry.tokenizer_gguf
        )
    except ValueError as exc:
        return _error(503, str(exc))
    detector = GreenListDetector(
        masters,
        candidates(masters, accounts),
        vocab_size=entry.vocab_size,
        gamma=layout.gamma,
        tokenize=tokenizer.encode,
        alpha=alpha,
        correction=correction,
        account_gamma=layout.account_gamma,
        nested=layout.nested,
        end_tokens=entry.end_tokens,
    )
    try:  # the tokenizer is an HTTP call or a native library: off the event loop
        report = await asyncio.to_thread(detector.detect, texts, bool(body.get("per_document", True)))
    except (_http_error(), ValueError) as exc:
        return _error(502, f"the tokenizer failed: {exc}")
    return Response(orjson.dumps(report), media_type="application/json")


def routes(gateway: AdminContext) -> list[BaseRoute]:
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
        keys = _keys_and_accounts(gateway, body)
        if isinstance(keys, Response):
            return keys
        masters, accounts, density, strengths = keys
        alpha = body.get("alpha", 1e-3)
        correction = body.get("correction", "holm")
        if not isinstance(alpha, int | float) or not 0 < alpha < 1:
            return _error(400, "alpha: must be a number between 0 and 1")
        if correction not in ("holm", "bonferroni"):
            return _error(400, "correction: must be holm or bonferroni")
        if body.get("scheme", "lexical") == "green_list":
            return await _green(gateway.config, body, masters, accounts, texts, alpha, correction)
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

    async def probe_model(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(400, 'The body must be JSON: {"endpoint": "http://host:8000/v1", "model": "..."}.')
        if not isinstance(body, dict):
            return _error(400, "The body must be a JSON object.")
        endpoint, model = body.get("endpoint"), body.get("model", "default")
        if not isinstance(endpoint, str) or not re.match(r"^https?://[^/\s]+", endpoint):
            return _error(400, "endpoint: must be an http:// or https:// URL (the suspect's .../v1)")
        if not isinstance(model, str) or not model:
            return _error(400, "model: must be a model name")
        samples, decoys = body.get("samples", 1), body.get("decoys", 199)
        if not isinstance(samples, int) or isinstance(samples, bool) or not 1 <= samples <= MAX_SAMPLES:
            return _error(400, f"samples: an integer from 1 to {MAX_SAMPLES}")
        if not isinstance(decoys, int) or isinstance(decoys, bool) or not 19 <= decoys <= MAX_DECOYS:
            return _error(400, f"decoys: an integer from 19 to {MAX_DECOYS}")
        env = body.get("api_key_env")
        # Only variables meant for probing: any other (the upstream's credential) must never be sent to a
        # URL named in a request.
        if env is not None and (
            not isinstance(env, str) or not env.startswith(PROBE_KEY_PREFIX) or env not in os.environ
        ):
            return _error(400, f"api_key_env: a set environment variable named {PROBE_KEY_PREFIX}*")
        keys = _keys_and_accounts(gateway, body)
        if isinstance(keys, Response):
            return keys
        masters, accounts, _, _ = keys
        ask = openai_asker(endpoint, model, os.environ[env] if env else None, samples, timeout=30.0)
        try:  # the suspect is queried with blocking calls: off the event loop
            report = await asyncio.to_thread(probe, ask, candidates(masters, accounts), decoys=decoys)
        except (_http_error(), ValueError) as exc:
            return _error(502, f"the suspect model did not answer usably: {type(exc).__name__}: {exc}")
        return Response(orjson.dumps(report), media_type="application/json")

    async def evidence(request: Request) -> Response:
        account = request.path_params["account"]
        store = gateway.store
        raw = await store.get(store.key("evidence", "watermark", account))
        record = orjson.loads(raw) if raw else None
        return JSONResponse({"account": account, "evidence": record})

    return [
        # Behind the admin token: the engine guards every /admin route.
        Route("/watermark/detect", detect, methods=["POST"]),
        Route("/watermark/probe", probe_model, methods=["POST"]),
        Route("/watermark/evidence/{account}", evidence, methods=["GET"]),
    ]


def _keys_and_accounts(
    gateway: AdminContext, body: dict[str, Any]
) -> tuple[list[MasterKey], list[str], float, set[str]] | Response:
    """The running config's watermark master keys and the accounts to test (``body["accounts"]`` or all
    the gateway knows), with the lowest density and the strengths configured; or the error response."""
    loaded = gateway.config
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
    try:
        masters = load_master_keys(specs)
    except ConfigError as exc:
        return _error(503, str(exc))
    return masters, accounts, density, strengths
