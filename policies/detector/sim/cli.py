"""``distillguard simulate``: drive a gateway with benign and attack personas and measure detection.

By default it sets everything up itself (``--setup``): a config and keys file for
every simulated account in a work directory, the mock upstream and a gateway
as child processes; then it sends the traffic over real HTTP, reads the level
changes from the detector's admin API and writes ``report.json`` and
``report.png`` to ``--out``. ``--write-setup DIR`` only writes the config, keys
and a private accounts file, for a gateway you start yourself and then drive
with ``--gateway URL --accounts DIR/accounts.json`` (same ``--scale`` and
``--seed``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from policies.detector.sim import plot as figure
from policies.detector.sim.launch import ADMIN_TOKEN_ENV, Stack, sim_config, write_accounts, write_keys
from policies.detector.sim.personas import personas
from policies.detector.sim.report import counter_value, histogram_count, histogram_quantile, summarise
from policies.detector.sim.runner import drive, fetch_admin, fetch_text, make_accounts


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("simulate", help="measure campaign detection with simulated traffic")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the number of accounts (0.1 for a quick run)"
    )
    parser.add_argument(
        "--requests-scale", type=float, default=1.0, help="multiply the requests per account (quick runs)"
    )
    parser.add_argument("--duration", type=float, default=120.0, help="seconds the traffic is spread over")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--out", default="simulation", help="directory for report.json and report.png")
    parser.add_argument("--detector", default="{}", help="JSON merged over the detector config (setup mode)")
    parser.add_argument("--gateway", help="drive this running gateway instead of starting one")
    parser.add_argument(
        "--operator",
        default="http://127.0.0.1:9090",
        help="that gateway's operator listener, for /admin and /metrics (with --gateway)",
    )
    parser.add_argument("--accounts", help="accounts file written by --write-setup (with --gateway)")
    parser.add_argument("--admin-token-env", default=ADMIN_TOKEN_ENV)
    parser.add_argument("--write-setup", metavar="DIR", help="only write config, keys and accounts files")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (config, keys, audit log)"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="gateways sharing one Redis, each request to the next in turn (round-robin); setup mode",
    )
    parser.add_argument("--redis", help="the Redis URL the replicas share (default: start a redis-server)")
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    mix = personas(args.scale, args.requests_scale)
    accounts = make_accounts(mix, args.seed)
    detector = orjson.loads(args.detector)
    if args.write_setup:
        return write_setup(args, accounts, detector)
    stack: Stack | None = None
    workdir: Path | None = None
    if args.gateway:
        if not args.accounts:
            print("--gateway needs --accounts (from --write-setup)", file=sys.stderr)
            return 2
        keys = orjson.loads(Path(args.accounts).read_bytes())
        for account in accounts:
            account.key = keys[account.name]
        bases, operators = [args.gateway.rstrip("/")], [args.operator.rstrip("/")]
        token = os.environ.get(args.admin_token_env, "")
    else:
        if args.replicas < 1:
            print("--replicas must be at least 1", file=sys.stderr)
            return 2
        workdir = Path(tempfile.mkdtemp(prefix="distillguard-sim-"))
        stack = Stack(workdir, args.replicas, args.redis)
        stack.start(accounts, time.time() + args.duration / 3, detector)
        bases, operators, token = stack.gateway_urls, stack.operator_urls, stack.token
    redis_url = stack.redis_url if stack is not None else args.redis
    total = sum(p.accounts * p.requests for p in mix)
    print(
        f"simulating {len(accounts)} accounts, {total} requests over ~{args.duration:.0f} s against "
        f"{', '.join(bases)}",
        file=sys.stderr,
    )
    commands_before = redis_commands(redis_url)
    try:
        log, changes, metrics = asyncio.run(
            traffic(bases, operators, token, accounts, args.duration, args.concurrency)
        )
        commands = redis_commands(redis_url) - commands_before
    finally:
        if stack is not None:
            stack.stop()
    report = summarise(mix, accounts, log, changes, detector_cost(metrics))
    report["scale"], report["seed"], report["accounts"] = args.scale, args.seed, len(accounts)
    report["replicas"] = len(bases)
    if workdir is not None:
        report["detector_requests_to_high"] = counted_to_high(workdir, mix)
    if redis_url:
        report["redis_commands_per_request"] = round(commands / max(1, report["requests_sent"]), 3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if figure.available():
        figure.plot(report, out / "report.png")
    else:
        print(
            "no report.png: matplotlib is not installed (pip install 'distillguard[report]')", file=sys.stderr
        )
    print_summary(report, out)
    if report.get("detector_requests_to_high"):
        print(
            f"requests the detector had counted when it raised each attack persona to high (median): "
            f"{report['detector_requests_to_high']}"
        )
    if workdir is not None:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    met = all(report["targets"]["met"].values())
    return 0 if met or not args.check else 1


async def traffic(
    bases: list[str],
    operators: list[str],
    token: str,
    accounts: list[Any],
    duration: float,
    concurrency: int,
) -> tuple[Any, list[dict[str, Any]], str]:
    """Send the traffic round-robin to ``bases``, then read the level changes of every replica and
    the first one's metrics from ``operators`` (an account's level counts from the first replica
    that applied it; sharing puts it in force on the others within a sync round)."""
    log = await drive(bases, accounts, duration, concurrency)
    await asyncio.sleep(1.5 + (1.0 if len(bases) > 1 else 0.0))  # background analysis, last sync round
    path = f"/admin/detector/changes?since={log.started - 1}"
    changes: list[dict[str, Any]] = []
    for operator in operators:
        changes.extend((await fetch_admin(operator, token, path))["changes"])
    return log, changes, await fetch_text(operators[0], "/metrics")


def counted_to_high(workdir: Path, mix: list[Any]) -> dict[str, float]:
    """Per attack persona, the median of the requests the detector had counted for an account when
    it first raised it to ``high`` or above (from the audit files: ``evidence.features.requests``).

    The report's ``requests_to_high`` counts the requests *sent* by then, which also includes
    those still in flight or queued for analysis; this one is the detector's own count (with
    replicas: the account's merged count on the replica that decided)."""
    import statistics

    first: dict[str, tuple[float, int]] = {}
    for path in workdir.glob("audit-*.jsonl"):
        for line in path.read_bytes().splitlines():
            entry = orjson.loads(line)
            if entry.get("source") != "detector" or entry.get("to") not in ("high", "critical"):
                continue
            counted = ((entry.get("evidence") or {}).get("features") or {}).get("requests")
            if counted is None:
                continue
            known = first.get(entry["account"])
            if known is None or entry["at"] < known[0]:
                first[entry["account"]] = (entry["at"], int(counted))
    out: dict[str, float] = {}
    for persona in mix:
        if persona.kind != "attack" or persona.cluster:
            continue
        counts = [n for account, (_, n) in first.items() if account.startswith(persona.name + "-")]
        if counts:
            out[persona.name] = statistics.median(counts)
    return out


def redis_commands(url: str | None) -> int:
    """Commands the Redis at ``url`` has executed (INFO commandstats), 0 without one."""
    if not url:
        return 0
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(int(entry["calls"]) for entry in stats.values())


def write_setup(args: argparse.Namespace, accounts: list[Any], detector: dict[str, Any]) -> int:
    import yaml

    directory = Path(args.write_setup)
    directory.mkdir(parents=True, exist_ok=True)
    write_keys(accounts, directory / "keys.jsonl")
    config = sim_config(directory, 8080, "http://127.0.0.1:9100", time.time() + args.duration / 3, detector)
    (directory / "policy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_accounts(accounts, directory / "accounts.json")
    print(f"wrote {directory}/policy.yaml, keys.jsonl and accounts.json ({len(accounts)} accounts)")
    return 0


def detector_cost(metrics: str) -> dict[str, Any]:
    from policies.detector.policy import TIMED_EVERY

    name = "distillguard_detector_seconds"
    # The histogram holds the requests whose CPU time was measured: one in TIMED_EVERY.
    out: dict[str, Any] = {
        "observations": histogram_count(metrics, name, {"stage": "total"}),
        "timed_every": TIMED_EVERY,
    }
    for stage in ("inline", "analysis", "total"):
        for q in (0.5, 0.99):
            out[f"{stage}_p{int(q * 100)}_seconds"] = histogram_quantile(metrics, name, {"stage": stage}, q)
    for stage in ("analysis", "semantic"):  # how far the analysis and the semantic signals ran behind
        lag = f"distillguard_detector_{stage}_lag_seconds"
        for q in (0.5, 0.9, 0.99):
            out[f"{stage}_lag_p{int(q * 100)}_seconds"] = histogram_quantile(metrics, lag, {}, q)
    # Observations the first replica forwarded to the accounts' owners, received, kept (routing.py).
    forwarded = "distillguard_detector_forwarded_total"
    out["forwarded"] = {
        outcome: counter_value(metrics, forwarded, {"outcome": outcome})
        for outcome in ("sent", "received", "kept")
    }
    out["note"] = "bucket upper bounds from /metrics; bench/detector.py measures exact quantiles"
    return out


def print_summary(report: dict[str, Any], out: Path) -> None:
    print(
        f"{'persona':<18} {'kind':<7} {'accts':>5} {'sent':>6} {'elev':>5} {'high':>5} {'crit':>5} "
        f"{'blkd':>5}  result"
    )
    for row in report["personas"]:
        reached = row["reached"]
        if row["kind"] == "attack":
            result = f"recall {row['recall_high_within_budget']:.3f} (budget {row['budget']})"
        else:
            result = f"FPR {row['false_positive_rate_elevated']:.4f}"
        median = (row["requests_to_high"] or {}).get("median")
        if median is not None:
            result += f", median {median} requests to high"
        print(
            f"{row['persona']:<18} {row['kind']:<7} {row['accounts']:>5} {row['requests_sent']:>6} "
            f"{reached['elevated']:>5} {reached['high']:>5} {reached['critical']:>5} "
            f"{row['blocked_accounts']:>5}  {result}"
        )
    targets = report["targets"]
    print(orjson.dumps({k: v for k, v in targets.items()}, option=orjson.OPT_INDENT_2).decode())
    print(
        f"wrote {out / 'report.json'} and {out / 'report.png'} ({report['requests_sent']} requests in "
        f"{report['duration_seconds']} s)"
    )
