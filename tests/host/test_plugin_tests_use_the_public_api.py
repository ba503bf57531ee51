"""A plugin's tests use what a third party could: ``agentshell``'s public API (the
names ``import agentshell`` exports, not its submodules), the plugin itself, and the
plugins its pyproject declares. Tests of several plugins together live in
tests/plugins/speckit/. The check reads the imports (including those inside
functions), so a new file is covered without touching this one."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

PLUGIN_TESTS = REPO / "tests" / "plugins"
CROSS_PLUGIN = "speckit"  # tests of several plugins at once


def plugin_packages() -> dict[str, str]:
    """Distribution name -> the import package it ships, for every plugin folder."""
    packages = {}
    for project in (REPO / "plugins").glob("*/pyproject.toml"):
        data = tomllib.loads(project.read_text(encoding="utf-8"))
        wheel = data.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {})
        for package in wheel.get("wheel", {}).get("packages", []):
            packages[data["project"]["name"]] = package
    return packages


def allowed_for(folder: str, packages: dict[str, str]) -> set[str]:
    """The plugin packages the tests in tests/plugins/<folder>/ may import."""
    project = REPO / "plugins" / folder / "pyproject.toml"
    data = tomllib.loads(project.read_text(encoding="utf-8"))
    names = [data["project"]["name"]]
    for requirement in data["project"].get("dependencies", []):
        match = re.match(r"\s*([A-Za-z0-9._-]+)", requirement)
        if match:
            names.append(match.group(1))
    return {packages[n] for n in names if n in packages}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def problems(plugin: str, files: list[Path], packages: dict[str, str]) -> list[str]:
    """What the test files of ``plugin`` (a folder name under tests/plugins) import
    that they should not."""
    plugin_packages_ = set(packages.values())
    allowed = plugin_packages_ if plugin == CROSS_PLUGIN else allowed_for(plugin, packages)
    found = []
    for path in files:
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            where = f"{path.name}:{line}"
            if module.startswith("agentshell."):
                found.append(f"{where}: {module} is not the public API (import from agentshell)")
            elif top in plugin_packages_ and top not in allowed:
                found.append(f"{where}: {module} is a plugin {plugin} does not declare")
    return found


FOLDERS = sorted(p for p in PLUGIN_TESTS.iterdir() if p.is_dir() and p.name != "__pycache__")


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_plugin_tests_import_the_public_api_and_declared_plugins(folder: Path) -> None:
    assert problems(folder.name, sorted(folder.rglob("*.py")), plugin_packages()) == []


def test_the_check_finds_a_private_import_and_an_undeclared_plugin(tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "from agentshell.telemetry import Event\nimport speckit_consensus.stages\n"
        "from agentshell import Event\nimport speckit_faults\n",
        encoding="utf-8",
    )
    found = problems("faults", [probe], plugin_packages())
    assert len(found) == 2, found
    assert "is not the public API" in found[0] and "does not declare" in found[1]
