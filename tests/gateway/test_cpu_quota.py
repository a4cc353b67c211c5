"""The worker count follows a container's CPU quota, which CPU affinity does not show."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.cpu_quota import cgroup_cpu_limit, usable_cpus
from gateway.server import default_workers


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def _v2(tmp_path: Path, cpu_max: str | None, cgroup: str = "/") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    root.mkdir()
    _write(root / "cgroup.controllers", "cpuset cpu io memory pids")
    if cpu_max is not None:
        _write(root / cgroup.lstrip("/") / "cpu.max", cpu_max)
    proc = tmp_path / "proc-self-cgroup"
    _write(proc, f"0::{cgroup}")
    return root, proc


def _v1(tmp_path: Path, quota: int, period: int = 100000, mount: str = "cpu,cpuacct") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    _write(root / mount / "cpu.cfs_quota_us", str(quota))
    _write(root / mount / "cpu.cfs_period_us", str(period))
    _write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712")
    proc = tmp_path / "proc-self-cgroup"
    _write(proc, f"12:memory:/\n4:{mount}:/\n0::/")
    return root, proc


@pytest.mark.parametrize(
    ("cpu_max", "limit"),
    [("200000 100000", 2.0), ("150000 100000", 1.5), ("50000 100000", 0.5), ("max 100000", None)],
)
def test_cgroup_v2_cpu_max(tmp_path: Path, cpu_max: str, limit: float | None) -> None:
    root, proc = _v2(tmp_path, cpu_max)
    assert cgroup_cpu_limit(root, proc) == limit


def test_cgroup_v2_quota_on_an_ancestor_applies(tmp_path: Path) -> None:
    # Kubernetes sets the limit on the pod's cgroup; the container's own cgroup below it says max.
    root, proc = _v2(tmp_path, "300000 100000", cgroup="/kubepods/pod1")
    _write(root / "kubepods" / "pod1" / "ctr" / "cpu.max", "max 100000")
    _write(proc, "0::/kubepods/pod1/ctr")
    assert cgroup_cpu_limit(root, proc) == 3.0


def test_cgroup_v2_smallest_quota_on_the_path_wins(tmp_path: Path) -> None:
    root, proc = _v2(tmp_path, "400000 100000", cgroup="/outer")
    _write(root / "outer" / "inner" / "cpu.max", "100000 100000")
    _write(proc, "0::/outer/inner")
    assert cgroup_cpu_limit(root, proc) == 1.0


@pytest.mark.parametrize(("quota", "limit"), [(200000, 2.0), (250000, 2.5), (-1, None)])
def test_cgroup_v1_cfs_quota(tmp_path: Path, quota: int, limit: float | None) -> None:
    root, proc = _v1(tmp_path, quota)
    assert cgroup_cpu_limit(root, proc) == limit


def test_cgroup_v1_host_path_not_visible_in_the_container(tmp_path: Path) -> None:
    # Without a cgroup namespace /proc/self/cgroup names the host path; the mount shows our own cgroup.
    root, proc = _v1(tmp_path, 300000, mount="cpu")
    _write(proc, "4:cpu:/kubepods/burstable/pod1/abc\n0::/")
    assert cgroup_cpu_limit(root, proc) == 3.0


def test_no_cgroup_information(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path / "nothing", tmp_path / "no-proc") is None


@pytest.mark.parametrize(
    ("cpu_max", "floor"), [("150000 100000", 1), ("50000 100000", 1), ("100000 100000", 1)]
)
def test_usable_cpus_rounds_the_quota_down_to_at_least_one(tmp_path: Path, cpu_max: str, floor: int) -> None:
    root, proc = _v2(tmp_path, cpu_max)
    assert usable_cpus(root, proc) == floor


def test_usable_cpus_never_exceeds_affinity(tmp_path: Path) -> None:
    root, proc = _v2(tmp_path, "6400000 100000")  # 64 CPUs of quota
    assert usable_cpus(root, proc) == len(os.sched_getaffinity(0))
    (tmp_path / "unlimited").mkdir()
    root2, proc2 = _v2(tmp_path / "unlimited", "max 100000")
    assert usable_cpus(root2, proc2) == len(os.sched_getaffinity(0))


def test_default_workers_on_this_machine_is_within_affinity() -> None:
    workers = default_workers()
    assert 1 <= workers <= len(os.sched_getaffinity(0))
    limit = cgroup_cpu_limit()
    if limit is not None:
        assert workers <= max(1, int(limit))
