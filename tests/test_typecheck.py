"""mypy runs over the engine (strict) and the policies (normal), as configured in pyproject.toml.

CI runs only the README's pytest command, so the type check is a test: any error mypy reports,
an unused ``# type: ignore`` included (``warn_unused_ignores``), fails it with mypy's own output.
The incremental cache (``.mypy_cache``, gitignored) keeps a re-run to a few seconds.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT


def test_mypy_reports_no_error_on_gateway_and_policies() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "gateway", "policies"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"mypy found errors:\n{result.stdout}{result.stderr}"
    assert "Success: no issues found" in result.stdout, result.stdout


def test_every_type_ignore_names_its_error_code() -> None:
    # enable_error_code = ["ignore-without-code"] makes mypy report a bare ignore; this keeps the
    # setting from being dropped from the config unnoticed.
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert "ignore-without-code" in config["enable_error_code"]
    assert config["warn_unused_ignores"] is True
