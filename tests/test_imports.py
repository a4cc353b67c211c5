"""Every module imports on its own, and no two modules need each other to load.

A cycle works or fails depending on which module a process happens to import first
(``python -c "import gateway.risk"`` failed while the app, importing in another order, ran).
Two checks: each module is imported first, in a fresh interpreter; and the load-time import
graph (imports that run when a module loads: not those in functions or ``TYPE_CHECKING``)
has no cycle.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from tests.imports import cycles, imports, load_time_graph, modules
from tests.support import ROOT

MODULES = modules()

# One interpreter imports the third-party libraries once, then forks a child per module: each
# child starts with no project module loaded and imports only the one it tests (seconds, where
# a fresh interpreter per module takes close to a minute).
_IMPORT_EACH = r"""
import json, os, sys
names, third_party = json.loads(sys.stdin.read())
for name in third_party:
    try:
        __import__(name)
    except ImportError:
        pass  # an optional dependency: the module that needs it shows it
assert not [m for m in sys.modules if m.split(".")[0] in ("gateway", "policies")]
failures, running = {}, {}
def reap():
    pid, status = os.wait()
    name, read_end = running.pop(pid)
    with os.fdopen(read_end) as pipe:
        message = pipe.read()
    if status:
        failures[name] = message or f"exit status {status}"
for name in names:
    if len(running) >= 4:
        reap()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            __import__(name)
        except BaseException as exc:
            os.write(write_end, f"{type(exc).__name__}: {exc}".encode())
            os._exit(1)
        os._exit(0)
    os.close(write_end)
    running[pid] = (name, read_end)
while running:
    reap()
print(json.dumps(failures))
"""


@pytest.fixture(scope="module")
def import_failures() -> dict[str, str]:
    third_party = sorted(
        {
            i.module
            for path in MODULES.values()
            for i in imports(path, MODULES)
            if not i.deferred and i.module.split(".")[0] not in ("gateway", "policies")
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH],
        input=json.dumps([sorted(MODULES), third_party]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    failures: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return failures


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_on_its_own(module: str, import_failures: dict[str, str]) -> None:
    assert module not in import_failures, (
        f"import {module} (first, in a fresh interpreter): {import_failures[module]}"
    )


def test_the_modules_were_found() -> None:
    assert {"gateway.risk", "gateway.plugins", "gateway.config.schema", "policies.detector.core"} <= set(
        MODULES
    )


def test_no_import_cycle_when_modules_load() -> None:
    found = cycles(load_time_graph(MODULES))
    assert not found, "modules that import each other when they load: " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# The plugin interface is the layer below the engine: policies import it, and the engine's config,
# proxy and admin are built on it. It must load without them (config.loader imported the plugins
# and the pipeline imported config.loader: gateway.plugins <-> gateway.config).
_ABOVE_THE_PLUGINS = (
    "gateway.config",
    "gateway.engine",
    "gateway.runtime",
    "gateway.admin",
    "gateway.app",
    "gateway.proxy",
    "gateway.relay",
    "gateway.server",
    "gateway.cli",
)


def test_the_plugin_interface_loads_without_the_engine() -> None:
    graph = load_time_graph(MODULES)
    reach: set[str] = set()
    todo = [m for m in MODULES if m == "gateway.plugins" or m.startswith("gateway.plugins.")]
    while todo:
        module = todo.pop()
        if module not in reach:
            reach.add(module)
            todo.extend(graph[module])
    above = sorted(m for m in reach if m.startswith(_ABOVE_THE_PLUGINS))
    assert not above, f"gateway.plugins loads {above} (through {sorted(reach)})"


# ---- policies import the engine only through gateway.plugins -------------------------------------


def _engine_imports() -> dict[tuple[str, str], int]:
    policies = modules(("policies",))
    found: dict[tuple[str, str], int] = {}
    for name, path in policies.items():
        for item in imports(path, MODULES):
            if item.module == "gateway" or item.module.startswith("gateway."):
                found.setdefault((name, item.module), item.line)
    return found


def test_policies_import_the_engine_only_through_gateway_plugins() -> None:
    found = _engine_imports()
    stray = {
        f"{module} line {line}: {target}"
        for (module, target), line in found.items()
        if target != "gateway.plugins"
    }
    assert not stray, "policies import engine internals (use gateway.plugins): " + "; ".join(sorted(stray))


def test_gateway_plugins_declares_what_it_offers() -> None:
    import gateway.plugins

    exported = set(gateway.plugins.__all__)
    assert {"Policy", "Exchange", "StreamEvent", "StateStore", "PolicyViolationError", "Ranked"} <= exported
    assert all(hasattr(gateway.plugins, name) for name in exported)
    used = set()
    for path in modules(("policies",)).values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "gateway.plugins":
                used |= {alias.name for alias in node.names}
    assert used <= exported, (
        f"policies import names gateway.plugins does not declare: {sorted(used - exported)}"
    )
