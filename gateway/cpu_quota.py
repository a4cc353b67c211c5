"""How many CPUs this process may really use: its CPU affinity, capped by its cgroup's CPU quota.

``os.sched_getaffinity`` lists the CPUs a process may run on, which in a
container is usually every CPU of the node. A container's CPU limit (Docker
``--cpus``, a Kubernetes ``resources.limits.cpu``) is a CFS quota instead:
cgroup v2 ``cpu.max`` (``"200000 100000"`` = 2 CPUs, ``"max 100000"`` =
unlimited), cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota
``-1`` = unlimited). Starting one worker per node CPU under a 2-CPU limit gets
every worker throttled, so the worker count takes the smaller of the two.

A quota may be set on any ancestor of the process's cgroup, so the cgroup
path and each of its parents are read and the smallest quota wins. Inside a
container the cgroup is usually mounted at its own root (cgroup namespaces),
which the walk reaches too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
# cgroup v1 mounts the cpu controller under one of these names.
V1_CPU_MOUNTS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _v2_quota(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max":
        return None
    try:
        return int(quota) / int(period or "100000")
    except (ValueError, ZeroDivisionError):
        return None


def _v1_quota(directory: Path) -> float | None:
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    try:
        quota_us, period_us = int(quota or "-1"), int(period or "0")
    except ValueError:
        return None
    if quota_us <= 0 or period_us <= 0:
        return None
    return quota_us / period_us


def _cgroup_paths(proc_self_cgroup: Path) -> dict[str, str]:
    """Controller list -> cgroup path, from ``/proc/self/cgroup`` (``"0::/x"`` is the v2 hierarchy)."""
    paths: dict[str, str] = {}
    for line in (_read(proc_self_cgroup) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            paths[parts[1]] = parts[2]
    return paths


def _smallest_on_path(mount: Path, cgroup_path: str, reader: Callable[[Path], float | None]) -> float | None:
    limits = []
    directory = mount / cgroup_path.lstrip("/")
    while True:
        limit = reader(directory)
        if limit is not None:
            limits.append(limit)
        if directory == mount or mount not in directory.parents:
            break
        directory = directory.parent
    return min(limits) if limits else None


def cgroup_cpu_limit(
    cgroup_root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP
) -> float | None:
    """The CPU quota of this process in CPUs (e.g. ``1.5``), or None when there is none or it is unknown."""
    paths = _cgroup_paths(proc_self_cgroup)
    limits = []
    if "" in paths or (cgroup_root / "cpu.max").exists():
        limit = _smallest_on_path(cgroup_root, paths.get("", "/"), _v2_quota)
        if limit is not None:
            limits.append(limit)
    for controllers, path in paths.items():
        if "cpu" not in controllers.split(","):
            continue
        for name in V1_CPU_MOUNTS:
            if (cgroup_root / name).is_dir():
                limit = _smallest_on_path(cgroup_root / name, path, _v1_quota)
                if limit is not None:
                    limits.append(limit)
                break
    return min(limits) if limits else None


def usable_cpus(cgroup_root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP) -> int:
    """CPUs this process may use: affinity, capped by the cgroup quota rounded down (at least 1).

    Rounding down follows Go's automaxprocs: under a 1.5-CPU limit a second
    busy worker would spend its time throttled.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root, proc_self_cgroup)
    if limit is not None:
        available = min(available, math.floor(limit))
    return max(1, available)
