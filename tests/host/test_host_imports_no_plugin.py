"""The dependency points one way: plugins import the host, never the reverse. The host
reaches plugins only through entry points and hooks, so it neither names a plugin
module in its source nor imports one when its own modules are imported."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.helpers.paths import REPO

HOST = REPO / "host" / "agentshell"
PLUGIN_PREFIX = "speckit_"


def plugin_imports(path: Path) -> list[str]:
    """``import speckit_…``, ``from speckit_… import``, and ``import_module("speckit_…")``
    or ``__import__("speckit_…")`` in one file, as ``file:line: module``."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"import_module", "__import__"} and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    modules = [arg.value]
        for module in modules:
            if module.startswith(PLUGIN_PREFIX):
                found.append(f"{path.name}:{node.lineno}: {module}")
    return found


def test_host_source_imports_no_plugin_module() -> None:
    sources = sorted(HOST.rglob("*.py"))
    assert len(sources) > 20  # the scan looks at the real package
    found = [hit for path in sources for hit in plugin_imports(path)]
    assert found == []


def test_the_scan_finds_a_plugin_import(tmp_path: Path) -> None:
    # the check above must be able to fail: every form it looks for, in one file
    probe = tmp_path / "probe.py"
    source = (
        "import speckit_metrics\n"
        "from speckit_consensus.stages import STAGES\n"
        "def f():\n"
        "    import importlib\n"
        "    importlib.import_module('speckit_resume.plugin')\n"
        "    __import__('speckit_faults')\n"
    )
    probe.write_text(source, encoding="utf-8")
    assert [hit.rsplit(": ", 1)[1] for hit in plugin_imports(probe)] == [
        "speckit_metrics",
        "speckit_consensus.stages",
        "speckit_resume.plugin",
        "speckit_faults",
    ]


def test_importing_every_host_module_imports_no_plugin() -> None:
    # the plugins are installed in this environment, so a host import of one would work
    # (and show up in sys.modules) rather than fail
    probe = (
        "import json, pkgutil, sys, importlib\n"
        "import agentshell\n"
        "names = [m.name for m in pkgutil.walk_packages(agentshell.__path__, 'agentshell.')\n"
        "         if m.name != 'agentshell.__main__']  # that one runs the shell\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps({'imported': names,\n"
        f"    'plugins': [m for m in sys.modules if m.startswith({PLUGIN_PREFIX!r})]}}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "agentshell.cli" in result["imported"] and "agentshell.install" in result["imported"]
    assert len(result["imported"]) > 20
    assert result["plugins"] == []
