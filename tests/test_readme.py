"""The README's set-up commands are the ones CI runs, word for word."""

from __future__ import annotations

import re

from tests.support import ROOT


def _commands(text: str) -> dict[str, str]:
    found = {}
    for label in ("install", "test", "demo"):
        match = re.search(rf"# README: {label}\n(.+)\n", text)
        if match:
            found[label] = match.group(1).strip()
    return found


def test_ci_runs_the_readme_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = _commands((ROOT / ".ci" / "run").read_text())
    assert set(ci) == {"install", "test"}
    for label, command in ci.items():
        assert command in readme, f"README lacks the CI {label} command: {command}"


def test_readme_demo_command_installs_then_starts_the_demo() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = _commands((ROOT / ".ci" / "run").read_text())
    assert f"{ci['install']} && .venv/bin/distillguard demo" in readme
