"""What forwarding an observation to its account's owner costs, against analysing it here.

    python -m bench.routing [--requests 4000] [--rounds 3]

With owners (``shared.owners``, policies/detector/routing.py) a replica that does not own an
account encodes the observation (settling its prompt slices and client key) and the owner decodes
it, then analyses it as its own. The baseline, measured in the same run on the same observations,
is the analysis itself (``DetectorCore.process``, semantic signals off: the lexical analysis every
request gets), so the ratio says how much CPU the fleet spends per forwarded request on top of the
analysis that one replica would spend anyway. Also printed: the encoded size (what the store
carries per forwarded request). CPU time (``time.process_time``), best of ``--rounds``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.detector import build_exchanges
from gateway.metrics import GatewayMetrics
from gateway.plugins.services import PolicyServices, SharedObjects
from gateway.risk import RiskBoard
from gateway.state.memory import MemoryStore
from policies.detector.config import DetectorConfig
from policies.detector.core import DetectorCore
from policies.detector.request import observe
from policies.detector.routing import decode, encode, settings_key

CONFIG = {"shared": {"semantic": {"enabled": "off"}}, "text": {"max_chars": 1000}}


def _core(settings: DetectorConfig) -> DetectorCore:
    core = DetectorCore()
    core.attach(
        settings, PolicyServices(MemoryStore("bench"), GatewayMetrics(), RiskBoard(), SharedObjects())
    )
    return core


def one_round(exchanges: list, settings: DetectorConfig) -> tuple[float, float, float, list[int]]:
    """CPU seconds per request of: analysing here; encoding (the sender); decoding (the owner)."""
    key = settings_key(settings)
    known = {key: settings}
    core = _core(settings)
    observations = [observe(e, settings) for e in exchanges]
    started = time.process_time()
    for observation in observations:
        core.process(observation)
    analysis = time.process_time() - started
    observations = [observe(e, settings) for e in exchanges]
    mono, wall = time.monotonic(), time.time()
    started = time.process_time()
    encoded = [encode(o, key, mono, wall) for o in observations]
    sending = time.process_time() - started
    started = time.process_time()
    for raw in encoded:
        decode(raw, known, settings, mono, wall)
    receiving = time.process_time() - started
    n = len(exchanges)
    return analysis / n, sending / n, receiving / n, [len(raw) for raw in encoded]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = DetectorConfig.model_validate(CONFIG)
    exchanges = build_exchanges(args.requests, 11)
    results = [one_round(exchanges, settings) for _ in range(args.rounds)]
    analysis = min(r[0] for r in results)
    sending = min(r[1] for r in results)
    receiving = min(r[2] for r in results)
    sizes = results[0][3]
    print(
        f"{args.requests} observations of the simulator's mix, best of {args.rounds} rounds (CPU per request)"
    )
    print(f"  {'step':<44} {'µs':>8} {'ratio':>7}")
    print(f"  {'baseline: the analysis (lexical, here)':<44} {analysis * 1e6:8.1f} {1:7.2f}")
    print(
        f"  {'encode on the replica the request reached':<44} {sending * 1e6:8.1f} {sending / analysis:7.2f}"
    )
    print(f"  {'decode on the owner':<44} {receiving * 1e6:8.1f} {receiving / analysis:7.2f}")
    both = sending + receiving
    print(f"  {'forwarding, both ends':<44} {both * 1e6:8.1f} {both / analysis:7.2f}")
    print(
        f"  encoded size: median {statistics.median(sizes):.0f} bytes, p99 "
        f"{sorted(sizes)[int(0.99 * (len(sizes) - 1))]} bytes, max {max(sizes)} bytes"
    )


if __name__ == "__main__":
    main()
