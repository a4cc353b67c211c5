"""Re-take the pictures of docs/console.md: ``python -m tests.console.screenshots``.

Runs the browser test (tests/console/test_browser.py) with ``DG_CONSOLE_SCREENSHOTS`` pointing at
docs/console/, so the pictures show exactly the scenario the test checks.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.console.browser import SCREENSHOTS_ENV
from tests.support import ROOT


def main() -> int:
    env = {**os.environ, SCREENSHOTS_ENV: str(ROOT / "docs" / "console")}
    test = str(ROOT / "tests" / "console" / "test_browser.py")
    return subprocess.call([sys.executable, "-m", "pytest", test, "-q", "-p", "no:cacheprovider"], env=env)


if __name__ == "__main__":
    sys.exit(main())
