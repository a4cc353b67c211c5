"""The upstream exchange's timeouts: what the watchdog costs per exchange, in process.

    python -m bench.watchdog [--exchanges 50000] [--rounds 5] [--held 10000]

An exchange here is what a streamed upstream exchange does with its watchdog: create it, wait for
the response head (the first-byte limit), wait for a body read (the shorter idle limit, which moves
the timer earlier), close. The waits are futures already done, so the figure is the watchdog's own
cost. Baseline, in the same run: the same two awaits without a watchdog. ``--held`` watchdogs stay
armed meanwhile (idle streams waiting on their upstream), as a loaded worker has them. Prints µs per
exchange, best of ``--rounds``, and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import uvloop

from gateway.watchdog import Watchdog


async def _exchanges(count: int, guarded: bool) -> float:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    for _ in range(count):
        watchdog = Watchdog(600.0) if guarded else None
        for limit in (60.0, 30.0):  # the first byte, then a body read
            reply = loop.create_future()
            reply.set_result(None)
            if watchdog is not None:
                await watchdog.wait(reply, limit)
            else:
                await reply
        if watchdog is not None:
            watchdog.close()
    return (time.perf_counter() - started) / count


async def _measure(exchanges: int, rounds: int, held: int) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    waiting = [loop.create_future() for _ in range(held)]
    holders = [asyncio.ensure_future(Watchdog(600.0).wait(reply, 300.0)) for reply in waiting]
    await asyncio.sleep(0)
    await _exchanges(1000, True)  # warm-up
    base = guarded = float("inf")
    for _ in range(rounds):
        base = min(base, await _exchanges(exchanges, False))
        guarded = min(guarded, await _exchanges(exchanges, True))
    for reply in waiting:
        reply.set_result(None)
    await asyncio.gather(*holders)
    return base, guarded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--held", type=int, default=10_000, help="watchdogs armed meanwhile")
    args = parser.parse_args()
    base, guarded = uvloop.run(_measure(args.exchanges, args.rounds, args.held))
    print(f"{args.exchanges} exchanges x best of {args.rounds} rounds, {args.held} other watchdogs armed")
    print(f"  baseline (two awaits, no watchdog): {base * 1e6:6.2f} µs per exchange")
    print(f"  with the watchdog:                  {guarded * 1e6:6.2f} µs per exchange")
    print(f"  watchdog cost: {(guarded - base) * 1e6:.2f} µs per exchange ({guarded / base:.2f}x baseline)")


if __name__ == "__main__":
    main()
