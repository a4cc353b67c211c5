"""The console's page templates (jinja2), built at the first page a worker renders.

A worker whose console is never opened does not keep jinja2 in memory (~2.2 MB resident).
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

from gateway.console import charts
from gateway.plugins.base import RISK_LEVELS

if TYPE_CHECKING:
    from jinja2 import Environment


@functools.cache
def environment() -> Environment:
    """The templates with the console's filters and globals (one per process)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("gateway.console", "templates"), autoescape=select_autoescape())
    env.filters["when"] = lambda ts: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "—"
    env.filters["num"] = lambda v, d=3: f"{v:.{d}f}" if isinstance(v, int | float) else "—"
    env.filters["pvalue"] = lambda v: f"{v:.2e}" if isinstance(v, int | float) else "—"
    env.globals["charts"] = charts
    env.globals["levels"] = RISK_LEVELS
    return env
