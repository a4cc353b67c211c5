"""``distillguard`` (``gateway.cli``) under tracemalloc: a snapshot is dumped on each SIGUSR1.

    DG_TRACE_DIR=<dir> [DG_TRACE_DEPTH=1] python -m bench.traced_gateway serve ...

For ``python -m bench.idle_streams --trace``: the bench signals the gateway before and while it holds
the streams, then compares the two snapshots (what each held stream keeps, by file and line). Tracing
starts at the first signal. The n-th signal writes ``<dir>/snapshot-<n>.trace``, then
``<dir>/snapshot-<n>.done`` once it is complete.
"""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType


def main() -> int:
    directory = Path(os.environ["DG_TRACE_DIR"])
    taken = 0

    def dump(_signum: int, _frame: FrameType | None) -> None:
        nonlocal taken
        taken += 1
        if not tracemalloc.is_tracing():
            # Tracing starts at the first snapshot: what a comparison with it shows was allocated
            # since (and the gateway's start, untraced, takes its usual time).
            tracemalloc.start(int(os.environ.get("DG_TRACE_DEPTH", "1")))
        snapshot = tracemalloc.take_snapshot()
        snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        snapshot.dump(str(directory / f"snapshot-{taken}.trace"))
        (directory / f"snapshot-{taken}.done").touch()

    signal.signal(signal.SIGUSR1, dump)
    from gateway.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
