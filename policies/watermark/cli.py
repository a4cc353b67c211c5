"""``distillguard watermark detect|probe``: find our marks in text, or our canaries in a suspect model.

Keys come from the environment, never from the command line: ``--keys
id=ENV,id2=ENV2`` names the env vars of the master keys (current and retired),
or ``--config policy.yaml`` reads them from the watermark policy. ``--scheme green_list`` tests for the
generation-time mark with the model's own tokenizer (``--tokenizer-url``, ``--tokenizer-json``,
``--tokenizer-gguf``). The accounts to test come from ``--account``, ``--accounts-file`` (one id per
line) or ``--keys-file`` (the gateway's keys.jsonl).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway.plugins import ConfigError, load_config
from policies.watermark.detector import Detector, candidates, summary
from policies.watermark.green_detect import GreenListDetector, green_summary
from policies.watermark.inputs import (
    detect_strength,
    green_list_settings,
    key_specs_from_policy,
    read_accounts,
    read_documents,
    watermark_configs,
)
from policies.watermark.keys import KeySpec, load_master_keys, parse_key_specs
from policies.watermark.model_tokenizers import make_tokenizer


def _keys_and_accounts(args: argparse.Namespace) -> tuple[list[Any], list[str], float | None, str]:
    specs: list[KeySpec] = []
    density: float | None = None
    strengths: set[str] = set()
    if args.config:
        loaded = load_config(args.config)
        for config in watermark_configs(loaded):
            found, found_density, found_strength = key_specs_from_policy(config)
            specs.extend(s for s in found if s not in specs)
            density = found_density if density is None else min(density, found_density)
            strengths.add(found_strength)
    if args.keys:
        specs.extend(parse_key_specs(args.keys))
    if not specs:
        specs = [KeySpec("default", "DISTILLGUARD_WATERMARK_KEY")]
    masters = load_master_keys(specs)
    accounts = list(args.account or [])
    if args.accounts_file:
        accounts += read_accounts(Path(args.accounts_file))
    if args.keys_file:
        accounts += read_accounts(Path(args.keys_file))
    if not accounts:
        raise ConfigError("name the accounts to test: --account, --accounts-file or --keys-file")
    return masters, accounts, density, detect_strength(strengths)


def _green_detector(args: argparse.Namespace, masters: list[Any], accounts: list[str]) -> GreenListDetector:
    """The green-list detector from the flags, completed from the policy's green_list (``--config``)."""
    vocab_size, gamma = args.vocab_size, args.gamma
    url, tokenizer_json, tokenizer_gguf = args.tokenizer_url, args.tokenizer_json, args.tokenizer_gguf
    account_gamma, nested = args.account_gamma, args.nested
    end_tokens: list[int] = []
    if args.config:
        found = green_list_settings(watermark_configs(load_config(args.config)), args.model)
        if found is not None:
            entry, layout = found
            vocab_size = vocab_size or entry.vocab_size
            gamma = gamma or layout.gamma
            account_gamma = account_gamma or layout.account_gamma
            nested = nested or layout.nested
            end_tokens = entry.end_tokens
            if not (url or tokenizer_json or tokenizer_gguf):
                url, tokenizer_json = entry.tokenizer_url, entry.tokenizer_json
                tokenizer_gguf = entry.tokenizer_gguf
    if not vocab_size:
        raise ConfigError("the green-list scheme needs --vocab-size (or --config with green_list.models)")
    tokenizer = make_tokenizer(url, tokenizer_json, tokenizer_gguf)
    return GreenListDetector(
        masters,
        candidates(masters, accounts),
        vocab_size=vocab_size,
        gamma=gamma or 0.25,
        tokenize=tokenizer.encode,
        alpha=args.alpha,
        correction=args.correction,
        account_gamma=account_gamma,
        nested=nested,
        end_tokens=end_tokens,
    )


def _cmd_detect(args: argparse.Namespace) -> int:
    try:
        masters, accounts, density, strength = _keys_and_accounts(args)
        green = _green_detector(args, masters, accounts) if args.scheme == "green_list" else None
    except (ConfigError, OSError, ValueError) as exc:
        print(f"watermark detect: {exc}", file=sys.stderr)
        return 2
    raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
    try:
        texts = read_documents(raw, args.format, args.field)
    except ValueError as exc:
        print(f"watermark detect: {exc}", file=sys.stderr)
        return 2
    if green is not None:
        try:
            report = green.detect(texts, per_document=not args.corpus_only)
        except (httpx.HTTPError, ValueError) as exc:
            print(f"watermark detect: the tokenizer failed: {exc}", file=sys.stderr)
            return 2
        if args.json:
            sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            print(green_summary(report))
        corpus = report["corpus"]
        return 0 if corpus["attributed"] or corpus["provider_detected"] else 1
    detector = Detector(
        candidates(masters, accounts),
        density=args.density or density or 1.0,
        alpha=args.alpha,
        correction=args.correction,
        strength=args.strength or strength,
    )
    report = detector.detect(texts, per_document=not args.corpus_only)
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(summary(report))
    return 0 if report["corpus"]["attributed"] else 1


def _cmd_probe(args: argparse.Namespace) -> int:
    from policies.watermark.probe import openai_asker, probe

    try:
        masters, accounts, _, _ = _keys_and_accounts(args)
    except (ConfigError, OSError) as exc:
        print(f"watermark probe: {exc}", file=sys.stderr)
        return 2
    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    ask = openai_asker(args.endpoint, args.model, api_key, args.samples)
    report = probe(ask, candidates(masters, accounts), variants=args.variants, decoys=args.decoys)
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for row in report["results"][:10]:
            print(
                f"{row['account']}@{row['key_id']}: canary score {row['score']}/{row['max_score']}, "
                f"p={row['p_value']:.3g}, corrected p={row['p_corrected']:.3g}"
            )
    best = report["results"][0] if report["results"] else None
    return 0 if best is not None and best["p_corrected"] <= args.alpha else 1


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keys", help="master keys as id=ENV[,id=ENV...] (env var names, not secrets)")
    parser.add_argument("--config", help="read the key settings from this policy YAML")
    parser.add_argument("--account", action="append", help="an account id to test (repeatable)")
    parser.add_argument("--accounts-file", help="file with one account id per line")
    parser.add_argument("--keys-file", help="the gateway's keys.jsonl (its account ids are tested)")
    parser.add_argument("--alpha", type=float, default=1e-3, help="corrected p-value threshold")
    parser.add_argument("--json", action="store_true", help="print the JSON report")


def register(subparsers: Any) -> None:
    watermark = subparsers.add_parser("watermark", help="detect output watermarks, probe suspect models")
    sub = watermark.add_subparsers(dest="watermark_command", required=True)
    detect = sub.add_parser(
        "detect", help="test text (plain or JSONL) for our marks, per document and corpus"
    )
    detect.add_argument("file", help="a file, or - for standard input")
    _common(detect)
    detect.add_argument("--format", choices=["auto", "text", "jsonl"], default="auto")
    detect.add_argument("--field", help="JSONL: the field holding the text (default: guessed)")
    detect.add_argument("--density", type=float, help="the lexical density the text was marked with")
    detect.add_argument(
        "--strength",
        choices=["exact", "near", "auto"],
        help="the lexical strength the text was marked with (default: from --config, else auto: "
        "both, the smaller p-value doubled)",
    )
    detect.add_argument("--correction", choices=["holm", "bonferroni"], default="holm")
    detect.add_argument(
        "--scheme", choices=["lexical", "green_list"], default="lexical", help="which mark to test for"
    )
    detect.add_argument("--tokenizer-url", help="green_list: a llama.cpp server of the model (/tokenize)")
    detect.add_argument(
        "--tokenizer-json", help="green_list: the model's tokenizer.json (the `tokenizer` extra)"
    )
    detect.add_argument(
        "--tokenizer-gguf", help="green_list: the model's GGUF file, its tokenizer read (`tokenizer` extra)"
    )
    detect.add_argument("--vocab-size", type=int, help="green_list: the model's vocabulary size")
    detect.add_argument(
        "--gamma", type=float, help="green_list: the green fraction (default: --config, else 0.25)"
    )
    detect.add_argument(
        "--account-gamma",
        type=float,
        help="green_list: the account list's fraction (default: --config, else --gamma)",
    )
    detect.add_argument(
        "--nested",
        action="store_true",
        help="green_list: the account list is a subset of the provider list (default: --config)",
    )
    detect.add_argument("--model", help="green_list with --config: the model whose green_list entry applies")
    detect.add_argument("--corpus-only", action="store_true", help="skip the per-document results")
    detect.set_defaults(func=_cmd_detect)
    probe_cmd = sub.add_parser("probe", help="query a suspect OpenAI-compatible model with canary triggers")
    probe_cmd.add_argument("--endpoint", required=True, help="base URL, e.g. http://host:8000/v1")
    probe_cmd.add_argument("--model", default="default")
    probe_cmd.add_argument("--api-key-env", help="env var holding the suspect endpoint's API key")
    probe_cmd.add_argument("--samples", type=int, default=4, help="answers per trigger")
    probe_cmd.add_argument(
        "--variants", type=int, default=4, help="canaries per account (policy canary.variants)"
    )
    probe_cmd.add_argument("--decoys", type=int, default=999)
    _common(probe_cmd)
    probe_cmd.set_defaults(func=_cmd_probe)
