"""``agentshell install`` / ``uninstall``: what they say about what was installed, the
pip or uv command lines they run, and the refusals that happen before either runs.
(Installing for real into fresh venvs: test_plugin_install.py.)"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from agentshell.install import Dist, Environment, Installer, report_installed, requested_name
from tests.helpers.cli import agentshell, child_env


def env(*dists: Dist) -> Environment:
    return Environment({d.name.lower(): d for d in dists})


HOST = Dist("agentshell", "0.2.0", plugins=("builtins", "openai"), requires=("pydantic",))
PYDANTIC = Dist("pydantic", "2.9.0")
PRICES = Dist("genai-prices", "0.2.5", requires=("pydantic",))
METRICS = Dist(
    "agentshell-speckit-metrics",
    "0.2.0",
    plugins=("metrics",),
    requires=("agentshell", "pydantic", "genai-prices"),
)
CONSENSUS = Dist("agentshell-speckit-consensus", "0.2.0", ("consensus",), ("agentshell",))
RESUME = Dist(
    "agentshell-speckit-resume",
    "0.2.0",
    ("resume",),
    ("agentshell", "agentshell-speckit-consensus"),
)
META = Dist(
    "agentshell-speckit",
    "0.2.0",
    requires=("agentshell", "agentshell-speckit-metrics", "agentshell-speckit-resume"),
)


def report(
    before: Environment, after: Environment, requested: list[str], *, unnamed: bool = False
) -> tuple[list[str], list[str]]:
    said: list[str] = []
    warned: list[str] = []
    report_installed(before, after, requested, unnamed=unnamed, say=said.append, warn=warned.append)
    return said, warned


def test_install_names_the_plugins_of_the_requested_distribution_not_of_its_dependencies() -> None:
    said, warned = report(
        env(HOST, PYDANTIC), env(HOST, PYDANTIC, PRICES, METRICS), ["agentshell-speckit-metrics"]
    )
    assert said == ["agentshell-speckit-metrics 0.2.0: plugin metrics"]
    assert warned == []  # genai-prices has no plugin, and needs none: it is a dependency


def test_a_distribution_whose_plugins_come_through_its_dependencies() -> None:
    after = env(HOST, PYDANTIC, PRICES, METRICS, CONSENSUS, RESUME, META)
    said, warned = report(env(HOST, PYDANTIC), after, ["agentshell-speckit"])
    assert said == [
        "agentshell-speckit 0.2.0: plugins consensus, metrics, resume (through "
        "agentshell-speckit-consensus, agentshell-speckit-metrics, agentshell-speckit-resume)"
    ]
    assert warned == []


def test_a_distribution_that_registers_no_plugin_is_a_warning() -> None:
    requests = Dist("requests", "2.32.3")
    said, warned = report(env(HOST), env(HOST, requests), ["requests"])
    assert said == []
    assert warned == [
        "warning: requests 2.32.3 registers no agentshell plugin (no entry point in group "
        "'agentshell'): agentshell loads nothing from it"
    ]


def test_an_unnamed_install_reports_the_new_top_level_distribution() -> None:
    # e.g. `agentshell install ./some.tar.gz`: the name is not known before pip runs
    hello = Dist("agentshell-hello", "0.3.0", ("hello",), ("agentshell", "pydantic"))
    said, warned = report(env(HOST), env(HOST, PYDANTIC, hello), [])
    assert said == ["agentshell-hello 0.3.0: plugin hello"]
    assert warned == []
    # beside a named one (`install agentshell-speckit-metrics ./hello.tar.gz`)
    after = env(HOST, PYDANTIC, PRICES, METRICS, hello)
    said, warned = report(env(HOST), after, ["agentshell-speckit-metrics"], unnamed=True)
    assert said == [
        "agentshell-speckit-metrics 0.2.0: plugin metrics",
        "agentshell-hello 0.3.0: plugin hello",
    ]
    assert warned == []


def test_an_extra_of_the_host_names_the_host_and_warns_about_nothing() -> None:
    # `agentshell install 'agentshell[otlp]'`: the extra's packages have no plugin and
    # need none
    otel = Dist("opentelemetry-sdk", "1.30.0")
    said, warned = report(env(HOST, PYDANTIC), env(HOST, PYDANTIC, otel), ["agentshell"])
    assert said == ["agentshell 0.2.0 (the shell itself)"]
    assert warned == []


def test_a_plugin_name_taken_by_another_distribution_is_a_warning() -> None:
    other = Dist("metrics-pro", "1.0", ("metrics",), ("agentshell",))
    said, warned = report(env(HOST, METRICS), env(HOST, METRICS, other), ["metrics-pro"])
    assert said == ["metrics-pro 1.0: plugin metrics"]
    assert warned == [
        "warning: plugin name 'metrics' of metrics-pro is also registered by "
        "agentshell-speckit-metrics: only one of them loads"
    ]


@pytest.mark.parametrize(
    ("arg", "name"),
    [
        ("agentshell-speckit-metrics", "agentshell-speckit-metrics"),
        ("Agentshell_Speckit.Metrics>=0.2", "agentshell-speckit-metrics"),
        ("agentshell-speckit[extra]", "agentshell-speckit"),
        ("hello @ https://example.invalid/hello-1.0.tar.gz", "hello"),
        ("dist/agentshell_hello-0.3.0-py3-none-any.whl", "agentshell-hello"),
        ("https://example.invalid/x.tar.gz", None),
        ("./archive.tar.gz", None),
    ],
)
def test_requested_name(arg: str, name: str | None) -> None:
    assert requested_name(arg) == name


def test_requested_name_of_a_project_folder(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "My_Plugin"\n')
    assert requested_name(str(tmp_path)) == "my-plugin"
    assert requested_name(str(tmp_path / "missing")) is None


def _ns(**kw: object) -> argparse.Namespace:
    defaults: dict[str, object] = dict(
        names=["x"],
        pre=False,
        force_reinstall=False,
        no_cache_dir=False,
        quiet=False,
        upgrade=False,
        no_index=False,
        index_url=None,
        find_links=[],
        editable=[],
    )
    defaults.update(kw)
    return argparse.Namespace(**defaults)


def test_pip_and_uv_get_the_same_request_in_their_own_words() -> None:
    ns = _ns(
        names=["agentshell-speckit"],
        pre=True,
        force_reinstall=True,
        no_cache_dir=True,
        quiet=True,
        upgrade=True,
        no_index=True,
        index_url="https://index.invalid/simple",
        find_links=["wheels"],
        editable=["../plugin"],
    )
    common = [
        "--quiet",
        "--upgrade",
        "--no-index",
        "--index-url",
        "https://index.invalid/simple",
        "--find-links",
        "wheels",
        "--editable",
        "../plugin",
        "agentshell-speckit",
    ]
    assert Installer("pip", "/env/bin/python").install_argv(ns) == [
        "/env/bin/python",
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--pre",
        "--force-reinstall",
        "--no-cache-dir",
        *common,
    ]
    assert Installer("uv", "/env/bin/python", uv="/bin/uv").install_argv(ns) == [
        "/bin/uv",
        "pip",
        "install",
        "--python",
        "/env/bin/python",
        "--prerelease",
        "allow",
        "--reinstall",
        "--no-cache",
        *common,
    ]
    assert Installer("uv", "/p", uv="/bin/uv").uninstall_argv(["a"]) == [
        "/bin/uv",
        "pip",
        "uninstall",
        "--python",
        "/p",
        "a",
    ]


# -- refusals, in this (development) environment: nothing is run or removed ------------


def test_uninstall_refuses_to_remove_agentshell_itself(tmp_path: Path) -> None:
    # no -y and stdin closed: even a broken refusal could not remove anything
    done = agentshell(child_env(tmp_path / "home"), "uninstall", "AgentShell", "x")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: refusing to uninstall agentshell itself")
    assert "pipx uninstall agentshell" in line
    assert done.stdout == ""


def test_uninstall_of_a_distribution_that_is_not_installed_removes_nothing(
    tmp_path: Path,
) -> None:
    done = agentshell(
        child_env(tmp_path / "home"), "uninstall", "agentshell-speckit-faults", "no-such-dist-x"
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: no-such-dist-x is not installed in agentshell's environment ({sys.prefix})",
        "nothing was uninstalled",
    ]


def test_install_needs_something_to_install(tmp_path: Path) -> None:
    done = agentshell(child_env(tmp_path / "home"), "install")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: nothing to install: give a distribution name, or -e PATH"


@pytest.mark.parametrize("cmd", ["install", "uninstall"])
def test_help_describes_the_shells_own_environment(tmp_path: Path, cmd: str) -> None:
    done = agentshell(child_env(tmp_path / "home"), cmd, "--help")
    assert done.returncode == 0
    assert f"usage: agentshell {cmd}" in done.stdout
    assert "environment agentshell runs in" in done.stdout
    listed = agentshell(child_env(tmp_path / "home"), "--help")
    assert cmd in listed.stdout
