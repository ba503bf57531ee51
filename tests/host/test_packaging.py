"""The distributions as built: each wheel's name, version, requirements and entry
points, what each wheel and sdist contains, and that each sdist builds the same wheel
as the checkout. Built offline once per session (tests/host/conftest.py)."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import sys
import tarfile
import tomllib
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.helpers.paths import REPO
from tests.helpers.venvs import PROJECTS, build, normalize, sdist_of, wheel_of

pytestmark = pytest.mark.slow

HOST = "agentshell"
META = "agentshell-speckit"
# each distribution's import package; the meta package has none
PACKAGES = {
    HOST: "agentshell",
    "agentshell-speckit-consensus": "speckit_consensus",
    "agentshell-speckit-metrics": "speckit_metrics",
    "agentshell-speckit-faults": "speckit_faults",
    "agentshell-speckit-resume": "speckit_resume",
    "agentshell-speckit-device-login": "speckit_device_login",
    "agentshell-chat": "agentshell_chat",
}
PLUGINS = [name for name in PACKAGES if name != HOST]
# what the meta package installs: spec-kit's five, not the chat plugin
SPECKIT = [name for name in PLUGINS if name.startswith("agentshell-speckit-")]
OWNER = {package: dist for dist, package in PACKAGES.items()}  # import package -> dist


def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(zf.read(name).decode())


def entry_points(wheel: Path) -> dict[str, dict[str, str]]:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        if not names:
            return {}
        parser = configparser.ConfigParser(delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(zf.read(names[0]).decode())
    return {section: dict(parser[section]) for section in parser.sections()}


def requirements(wheel: Path) -> dict[str, Requirement]:
    """Requires-Dist of a plain install (optional extras left out), by normalized name."""
    found = {}
    for line in metadata(wheel).get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or "extra" not in str(req.marker):
            found[normalize(req.name)] = req
    return found


def project_version(dist: str) -> str:
    if dist == HOST:
        scope: dict[str, str] = {}
        exec((REPO / "host" / "agentshell" / "_version.py").read_text(), scope)
        return scope["__version__"]
    with open(PROJECTS[dist] / "pyproject.toml", "rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def next_breaking(version: str) -> str:
    v = Version(version)
    return f"0.{v.minor + 1}.0" if v.major == 0 else f"{v.major + 1}.0.0"


def imported_top_levels(wheel: Path) -> set[str]:
    """The top-level modules the wheel's own code imports (absolute imports only)."""
    found: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if not name.endswith(".py"):
                continue
            for node in ast.walk(ast.parse(zf.read(name).decode(), filename=name)):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found


def distribution_of(module: str) -> str:
    if module in OWNER:
        return OWNER[module]
    owners = importlib.metadata.packages_distributions().get(module)
    assert owners, f"no installed distribution provides {module!r}"
    return normalize(owners[0])


@pytest.mark.parametrize("dist", list(PROJECTS))
def test_wheel_has_the_distributions_name_version_and_python(dists: Path, dist: str) -> None:
    meta = metadata(wheel_of(dists, dist))
    assert meta["Name"] == dist
    assert meta["Version"] == project_version(dist)
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Summary"]
    assert meta.get_payload(), f"{dist}: no README as the long description"


@pytest.mark.parametrize("dist", PLUGINS)
def test_plugin_requires_exactly_what_its_code_imports(dists: Path, dist: str) -> None:
    wheel = wheel_of(dists, dist)
    imported = {
        distribution_of(module)
        for module in imported_top_levels(wheel)
        if module not in sys.stdlib_module_names and module != PACKAGES[dist]
    }
    assert set(requirements(wheel)) == imported


@pytest.mark.parametrize("dist", [*PLUGINS, META])
def test_plugin_requires_a_compatible_range_of_agentshell_and_its_siblings(
    dists: Path, dist: str
) -> None:
    required = requirements(wheel_of(dists, dist))
    assert HOST in required
    for name, req in required.items():
        if name not in PROJECTS:
            continue
        version = project_version(name)
        assert req.specifier.contains(version), f"{dist}: {req} excludes {name} {version}"
        # an upper bound: the next breaking release of the host or a sibling is not assumed
        assert not req.specifier.contains(next_breaking(version)), f"{dist}: {req} is open"


def test_only_metrics_needs_genai_prices_and_resume_declares_consensus(dists: Path) -> None:
    needs = {dist: set(requirements(wheel_of(dists, dist))) for dist in PROJECTS}
    assert [d for d, reqs in needs.items() if "genai-prices" in reqs] == [
        "agentshell-speckit-metrics"
    ]
    assert "agentshell-speckit-consensus" in needs["agentshell-speckit-resume"]
    assert "agentshell-speckit-resume" in needs["agentshell-chat"]  # its store
    # the host depends on no plugin
    assert not {name for name in needs[HOST] if name.startswith("agentshell")}


def test_meta_distribution_installs_the_five_plugins_and_ships_no_code(dists: Path) -> None:
    wheel = wheel_of(dists, META)
    assert set(requirements(wheel)) == {HOST, *SPECKIT}
    assert entry_points(wheel).get("agentshell", {}) == {}
    with zipfile.ZipFile(wheel) as zf:
        assert {n.split("/")[0] for n in zf.namelist()} == {"agentshell_speckit-0.2.0.dist-info"}


def test_entry_points_name_modules_inside_their_own_wheel(dists: Path) -> None:
    plugins: dict[str, str] = {}
    for dist in PACKAGES:
        wheel = wheel_of(dists, dist)
        with zipfile.ZipFile(wheel) as zf:
            files = set(zf.namelist())
        for name, value in entry_points(wheel).get("agentshell", {}).items():
            module = value.split(":")[0].strip()
            assert module.split(".")[0] == PACKAGES[dist], f"{dist}: {name} = {value}"
            path = module.replace(".", "/")
            # a module, or a package (agentshell.sinks.otlp is a folder)
            assert {f"{path}.py", f"{path}/__init__.py"} & files, (
                f"{dist}: {value} not in the wheel"
            )
            assert name not in plugins, f"plugin {name} in {plugins.get(name)} and {dist}"
            plugins[name] = dist
    assert {p: d for p, d in plugins.items() if d != HOST} == {
        "consensus": "agentshell-speckit-consensus",
        "metrics": "agentshell-speckit-metrics",
        "faults": "agentshell-speckit-faults",
        "resume": "agentshell-speckit-resume",
        "device_login": "agentshell-speckit-device-login",
        "chat": "agentshell-chat",
    }
    assert {p for p, d in plugins.items() if d == HOST} == {
        "builtins", "agents", "telemetry", "openai", "command", "replay",
        "jsonl", "console", "otlp", "null",
    }  # fmt: skip
    scripts = entry_points(wheel_of(dists, HOST))["console_scripts"]
    assert scripts == {"agentshell": "agentshell.cli:main"}


def test_no_wheel_contains_another_distributions_package(dists: Path) -> None:
    for dist, package in PACKAGES.items():
        wheel = wheel_of(dists, dist)
        with zipfile.ZipFile(wheel) as zf:
            tops = {n.split("/")[0] for n in zf.namelist()}
        dist_info = f"{dist.replace('-', '_')}-{project_version(dist)}.dist-info"
        assert tops == {package, dist_info}, f"{wheel.name}: {sorted(tops)}"


@pytest.mark.parametrize("dist", list(PROJECTS))
def test_sdist_has_pyproject_readme_and_only_its_own_package(dists: Path, dist: str) -> None:
    sdist = sdist_of(dists, dist)
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= names
    package = PACKAGES.get(dist)
    prefix = "host/" if dist == HOST else ""
    if package:
        assert f"{prefix}{package}/__init__.py" in names
    ours = {f"{prefix}{package}/" if package else "", "pyproject.toml", "README.md"}
    strays = {
        n
        for n in names
        if n not in {"PKG-INFO", ".gitignore"}
        and not any(n.startswith(o) for o in ours if o)
        and n not in ours
    }
    assert not strays, f"{sdist.name} carries files of no use to it: {sorted(strays)}"


def test_each_sdist_builds_the_wheel_the_checkout_builds(dists: Path, tmp_path: Path) -> None:
    unpacked = []
    for dist in PROJECTS:
        with tarfile.open(sdist_of(dists, dist)) as tf:
            tf.extractall(tmp_path / "src", filter="data")
            unpacked.append(tmp_path / "src" / tf.getnames()[0].split("/")[0])
    rebuilt = tmp_path / "rebuilt"
    build(unpacked, rebuilt, sdist=False)
    for dist in PROJECTS:
        with zipfile.ZipFile(wheel_of(dists, dist)) as zf:
            expected = sorted(zf.namelist())
        with zipfile.ZipFile(wheel_of(rebuilt, dist)) as zf:
            assert sorted(zf.namelist()) == expected, dist
        assert metadata(wheel_of(rebuilt, dist)).items() == metadata(wheel_of(dists, dist)).items()
