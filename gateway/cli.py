"""The ``distillguard`` command line.

Engine commands live here; policies add theirs (``watermark``, ``simulate``...)
through the ``distillguard.commands`` entry-point group: each entry point is a
function ``register(subparsers)`` that adds a subparser whose ``func``
default handles it.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import orjson
import yaml

from gateway.config.loader import LoadedConfig, load_config
from gateway.config.view import pipeline_view
from gateway.errors import ConfigError
from gateway.plugins.base import RISK_LEVELS

COMMAND_ENTRY_POINTS = "distillguard.commands"


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        loaded = load_config(args.config, keys_file=args.keys_file, upstream_url=args.upstream)
    except ConfigError as exc:
        print(f"invalid config: {exc}", file=sys.stderr)
        return 2
    if args.tier or args.level or args.account:
        try:
            effective = _one_pipeline(loaded, args.tier, args.account, args.level or "none")
        except ConfigError as exc:
            print(f"check: {exc}", file=sys.stderr)
            return 2
    else:
        effective = loaded.effective()
    if args.json:
        sys.stdout.write(orjson.dumps(effective, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(effective, sort_keys=False))
    print(
        f"config OK: {len(loaded.gateway.tiers)} tier(s), {len(loaded.pipelines)} pipeline(s), "
        f"{len(loaded.api_keys)} key(s)",
        file=sys.stderr,
    )
    return 0


def _one_pipeline(loaded: LoadedConfig, tier: str | None, account: str | None, level: str) -> dict[str, Any]:
    """``check --tier/--account/--level``: one pipeline's effective policy configs in full."""
    gateway = loaded.gateway
    if account is not None:
        if account not in gateway.accounts:
            raise ConfigError(f"no account '{account}' in accounts; accounts: {sorted(gateway.accounts)}")
        account_tier = gateway.accounts[account].tier or gateway.default_tier
        if tier is not None and tier != account_tier:
            raise ConfigError(f"account '{account}' is on tier '{account_tier}', not '{tier}'")
        tier = account_tier
    tier = tier or gateway.default_tier
    if tier not in gateway.tiers:
        raise ConfigError(f"no tier '{tier}'; tiers: {sorted(gateway.tiers)}")
    if level not in RISK_LEVELS:
        raise ConfigError(f"no risk level '{level}'; levels: {list(RISK_LEVELS)}")
    return pipeline_view(loaded, tier, account, level)


def _cmd_serve(args: argparse.Namespace) -> int:
    from gateway.server import ListenerError, default_workers, serve

    try:
        serve(
            args.config,
            host=args.host,
            port=args.port,
            operator_host=args.operator_host,
            operator_port=args.operator_port,
            workers=args.workers or default_workers(),
            keys_file=args.keys_file,
            upstream_url=args.upstream,
            drain_timeout=args.drain_timeout,
            stop_timeout=args.stop_timeout,
        )
    except ConfigError as exc:
        print(f"invalid config: {exc}", file=sys.stderr)
        return 2
    except ListenerError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _cmd_keys_new(args: argparse.Namespace) -> int:
    from gateway.auth.keys import append_key

    key, entry = append_key(Path(args.keys_file), args.account, args.tier, args.label or "")
    print(key)
    print(
        f"appended key {entry.key_id} for account '{entry.account}' (tier {entry.tier or 'default'}) "
        f"to {args.keys_file}; the key is shown only once",
        file=sys.stderr,
    )
    return 0


def _cmd_mock(args: argparse.Namespace) -> int:
    from gateway.server import serve_mock

    serve_mock(args.host, args.port)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return run_demo(
        port=args.port,
        mock_port=args.mock_port,
        key=args.key,
        config=args.config,
        operator_port=args.operator_port,
    )


def build_parser(plugin_commands: bool = True) -> argparse.ArgumentParser:
    """The CLI's parser: the built-in commands, and the plugins' (``distillguard.commands`` entry
    points) unless ``plugin_commands`` is false."""
    parser = argparse.ArgumentParser(prog="distillguard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="validate a policy YAML and print the effective config")
    check.add_argument("--config", required=True)
    check.add_argument("--keys-file")
    check.add_argument("--upstream", help="replace every upstream's url")
    check.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    check.add_argument("--tier", help="print only this tier's pipeline in full (default: the default tier)")
    check.add_argument("--account", help="print only this account's pipeline in full (its overrides applied)")
    check.add_argument("--level", choices=RISK_LEVELS, help="the risk level of that pipeline (default: none)")
    check.set_defaults(func=_cmd_check)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", required=True)
    serve.add_argument("--upstream", help="replace every upstream's url")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--operator-host", help="address of /metrics and /admin (default: the YAML's operator.host)"
    )
    serve.add_argument(
        "--operator-port", type=int, help="port of /metrics and /admin (default: operator.port)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (0 = one per usable CPU: affinity, capped by the cgroup CPU quota)",
    )
    serve.add_argument("--keys-file")
    serve.add_argument(
        "--drain-timeout",
        type=_non_negative_int,
        metavar="SECONDS",
        help="on SIGTERM, how long requests and streams in flight may run before they are cut (default 30)",
    )
    serve.add_argument(
        "--stop-timeout",
        type=_non_negative_int,
        metavar="SECONDS",
        help="after the drain, how long the policies may take to flush and close before the process "
        "writes its threads' stacks to the log and exits (default 15)",
    )
    serve.set_defaults(func=_cmd_serve)

    keys = sub.add_parser("keys", help="manage gateway API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    new = keys_sub.add_parser("new", help="create a key, append its hash to the keys file, print it once")
    new.add_argument("--account", required=True)
    new.add_argument("--tier")
    new.add_argument("--keys-file", required=True)
    new.add_argument("--label", help="a non-secret name for the key (default: derived from its hash)")
    new.set_defaults(func=_cmd_keys_new)

    mock = sub.add_parser("mock-upstream", help="run the built-in mock model server alone")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, default=9100)
    mock.set_defaults(func=_cmd_mock)

    demo = sub.add_parser("demo", help="run the mock model and the gateway in front of it")
    demo.add_argument("--port", type=int, default=8080, help="gateway port")
    demo.add_argument(
        "--operator-port", type=int, default=9090, help="port of /metrics and /admin (0 = any free port)"
    )
    demo.add_argument("--mock-port", type=int, default=0, help="mock model port (0 = any free port)")
    demo.add_argument("--key", help="use this demo key instead of a random one")
    demo.add_argument("--config", help="policy YAML (default: the shipped policies/default.yaml)")
    demo.set_defaults(func=_cmd_demo)

    if plugin_commands:
        for ep in entry_points(group=COMMAND_ENTRY_POINTS):
            ep.load()(sub)
    return parser


BUILTIN_COMMANDS = frozenset({"check", "serve", "keys", "mock-upstream", "demo"})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # A built-in command does not load the plugins' commands: their modules (the simulator's client
    # stack, the watermark's corpus tools) would otherwise stay in the memory of a served worker.
    parser = build_parser(plugin_commands=not argv or argv[0] not in BUILTIN_COMMANDS)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
