"""``agentshell install`` / ``uninstall`` against real pip (and uv) in fresh venvs,
with the wheels built from the checkout (tests/host/conftest.py), and what installing
one plugin adds to an environment that has only the host.

The shell's own flows run offline: the venv sees this environment's third-party
packages (pip among them) through tests/helpers/venvs.py, and our wheels come from
``--find-links`` with ``--no-index``. The tests that resolve third-party dependencies
for real use the package index (pip's and uv's caches make it quick); where it cannot
be reached they skip, except in CI (env ``CI`` set), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.venvs import (
    installed,
    make_venv,
    pip_install,
    python_of,
    shell_env,
    wheel_of,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

METRICS = "agentshell-speckit-metrics"

# what pip and uv print when the index cannot be reached
_OFFLINE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Network is unreachable|Max retries exceeded|error sending request|dns error"
    r"|Failed to fetch|No matching distribution found|Could not find a version",
    re.IGNORECASE,
)


def shell(
    env_dir: Path, env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The venv's own ``agentshell`` console script."""
    return subprocess.run(
        [str(env_dir / "bin" / "agentshell"), *args],
        env=env,
        cwd=Path(env["AGENTSHELL_HOME"]).parent,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def plugins(env_dir: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    done = shell(env_dir, env, "plugins", "--json")
    assert done.returncode == 0, done.stderr
    return {item["name"]: item for item in json.loads(done.stdout)}


def from_index(done: subprocess.CompletedProcess[str], what: str) -> None:
    """Fail on a failed step that used the package index — or skip, outside CI, when
    its output says the index could not be reached."""
    if done.returncode == 0:
        return
    output = f"{done.stdout}\n{done.stderr}"
    if not os.environ.get("CI") and _OFFLINE.search(output):
        last = output.strip().splitlines()[-1] if output.strip() else ""
        pytest.skip(f"the package index is unreachable ({what}): {last}")
    pytest.fail(f"{what} failed:\n{output}")


def uv_path() -> str:
    uv = shutil.which("uv", path=os.path.dirname(sys.executable)) or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not installed: it is in agentshell's test extras")
    return uv


def uv_install(env_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [uv_path(), "pip", "install", "-q", "--python", python_of(env_dir), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def install_host(dists: Path, root: Path, *, pip: bool) -> Path:
    """A fresh venv with only agentshell, from its wheel, and (shared) third-party deps."""
    env_dir = make_venv(root, pip=pip)
    pip_install(env_dir, "--no-deps", "--no-index", str(wheel_of(dists, "agentshell")))
    return env_dir


def test_install_and_uninstall_a_plugin_in_the_shells_own_environment(
    dists: Path, tmp_path: Path
) -> None:
    env_dir = install_host(dists, tmp_path, pip=True)
    env = shell_env(tmp_path)

    before = plugins(env_dir, env)  # this start also writes the entry-point cache
    assert "metrics" not in before and before["builtins"]["distribution"] == "agentshell"
    assert (tmp_path / "home" / "data" / "entry-points.json").exists()

    done = shell(env_dir, env, "install", "-q", "--no-index", "--find-links", str(dists), METRICS)
    assert done.returncode == 0, done.stderr
    assert f"{METRICS} 0.2.0: plugin metrics" in done.stdout
    assert "warning" not in done.stderr and "Traceback" not in done.stderr

    ran = shell(env_dir, env, "run", "/metrics")
    assert ran.returncode == 0, ran.stderr
    assert "est. next prompt" in ran.stdout and "budget" in ran.stdout
    metrics = plugins(env_dir, env)["metrics"]
    assert metrics["state"] == "loaded"
    assert metrics["distribution"] == METRICS and metrics["version"] == "0.2.0"
    assert metrics["builtin"] is False
    table = shell(env_dir, env, "plugins")
    assert re.search(rf"metrics\s.*loaded\s.*0\.2\.0\s.*{METRICS}", table.stdout), table.stdout

    # not confirmed: nothing happens
    kept = shell(env_dir, env, "uninstall", METRICS, stdin="n\n")
    assert kept.returncode == 1
    assert "nothing was uninstalled" in kept.stderr
    assert METRICS in installed(env_dir)

    removed = shell(env_dir, env, "uninstall", "-y", METRICS)
    assert removed.returncode == 0, removed.stderr
    assert f"removed {METRICS} 0.2.0" in removed.stdout
    gone = shell(env_dir, env, "run", "/metrics")
    assert gone.returncode == 1
    assert gone.stderr.strip() == "error: unknown command /metrics (type /help for the list)"
    listed = shell(env_dir, env, "plugins")
    assert listed.returncode == 0 and "faults" not in listed.stdout
    assert "builtins" in listed.stdout and "metrics" not in listed.stdout

    # the meta package: its plugins come through its dependencies, one distribution each
    done = shell(
        env_dir, env, "install", "-q", "--no-index", "-f", str(dists), "agentshell-speckit"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "agentshell-speckit 0.2.0: plugins consensus, device_login, faults, metrics, resume "
        "(through agentshell-speckit-consensus, agentshell-speckit-device-login, "
        "agentshell-speckit-faults, agentshell-speckit-metrics, agentshell-speckit-resume)"
    )
    speckit = {
        name: (item["distribution"], item["version"], item["state"])
        for name, item in plugins(env_dir, env).items()
        if not item["builtin"]
    }
    assert speckit == {
        name: (f"agentshell-speckit-{name.replace('_', '-')}", "0.2.0", "loaded")
        for name in ["consensus", "device_login", "faults", "metrics", "resume"]
    }


@pytest.fixture(scope="module")
def host_without_pip(dists: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """agentshell alone in a venv that has no pip (shared by the two tests below: one
    adds a plugin with this environment's pip, the other fails before installing)."""
    return install_host(dists, tmp_path_factory.mktemp("nopip"), pip=False)


def test_a_plugin_installed_with_plain_pip_is_seen_at_the_next_start(
    dists: Path, host_without_pip: Path, tmp_path: Path
) -> None:
    # the entry-point cache is keyed on sys.path's mtimes: an install agentshell did not
    # make (so did not clear the cache after) must show at the next start all the same
    env_dir = host_without_pip
    env = shell_env(tmp_path)
    assert "faults" not in plugins(env_dir, env)
    assert (tmp_path / "home" / "data" / "entry-points.json").exists()
    pip_install(
        env_dir, "--no-deps", "--no-index", str(wheel_of(dists, "agentshell-speckit-faults"))
    )
    faults = plugins(env_dir, env)["faults"]
    assert (faults["state"], faults["distribution"]) == ("loaded", "agentshell-speckit-faults")


def test_install_without_pip_or_uv_is_one_error_line_saying_how_to_fix_it(
    host_without_pip: Path, tmp_path: Path
) -> None:
    env_dir = host_without_pip
    path = [d for d in os.environ["PATH"].split(os.pathsep) if not Path(d, "uv").exists()]
    env = shell_env(tmp_path, PATH=os.pathsep.join([str(env_dir / "bin"), *path]))
    done = shell(env_dir, env, "install", "agentshell-speckit-faults")
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: pip is not available in agentshell's environment")
    assert python_of(env_dir) in line and "uv tool install agentshell --with" in line
    # uninstall says so before asking (pydantic: installed, through the shared deps)
    refused = shell(env_dir, env, "uninstall", "pydantic", stdin="y\n")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.splitlines() == [line]


def test_install_falls_back_to_uv_when_the_environment_has_no_pip(
    dists: Path, tmp_path: Path
) -> None:
    # the environment `uv tool install agentshell` makes: no pip, dependencies installed
    uv = uv_path()
    env_dir = make_venv(tmp_path, shared_deps=False)
    from_index(
        uv_install(env_dir, str(wheel_of(dists, "agentshell"))),
        "uv installing agentshell's dependencies",
    )
    env = shell_env(tmp_path, PATH=os.pathsep.join([os.path.dirname(uv), os.environ["PATH"]]))
    done = shell(
        env_dir, env, "install", "-q", "--find-links", str(dists), "agentshell-speckit-faults"
    )
    from_index(done, "uv installing agentshell-speckit-faults")
    no_pip = subprocess.run([python_of(env_dir), "-c", "import pip"], capture_output=True)
    assert no_pip.returncode != 0  # so it was uv that installed
    assert "agentshell-speckit-faults 0.2.0: plugin faults" in done.stdout
    assert plugins(env_dir, env)["faults"]["distribution"] == "agentshell-speckit-faults"
    removed = shell(env_dir, env, "uninstall", "-y", "agentshell-speckit-faults")
    assert removed.returncode == 0, removed.stderr
    assert "faults" not in plugins(env_dir, env)


def test_a_plugin_adds_only_its_own_dependencies_to_the_host(dists: Path, tmp_path: Path) -> None:
    env_dir = make_venv(tmp_path, shared_deps=False)
    pip = [sys.executable, "-m", "pip", "--python", python_of(env_dir), "install", "-q"]

    def pip_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*pip, *args], capture_output=True, text=True, timeout=600)

    # the host from its wheel, its dependencies from the index (uv resolves the host's
    # thirty-odd in a second where pip takes tens; the plugins below go through pip)
    from_index(uv_install(env_dir, str(wheel_of(dists, "agentshell"))), "installing agentshell")
    host_only = installed(env_dir)
    assert not {n for n in host_only if n.startswith("agentshell-")}
    assert "genai-prices" not in host_only

    # metrics: itself, genai-prices and what genai-prices needs that the host has not
    from_index(pip_run(str(wheel_of(dists, METRICS))), f"installing {METRICS}")
    with_metrics = installed(env_dir)
    added = set(with_metrics) - set(host_only)
    assert added == closure(with_metrics, METRICS) - set(host_only)
    assert {METRICS, "genai-prices"} <= added
    assert not {n for n in added if n.startswith("agentshell") and n != METRICS}
    assert all(with_metrics[n]["version"] == v["version"] for n, v in host_only.items())

    # resume brings consensus (from our wheels) and nothing else
    done = pip_run("--no-index", "--find-links", str(dists), "agentshell-speckit-resume")
    assert done.returncode == 0, done.stderr
    added = set(installed(env_dir)) - set(with_metrics)
    assert added == {"agentshell-speckit-resume", "agentshell-speckit-consensus"}


def closure(dists: dict[str, dict[str, Any]], name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        key = todo.pop()
        if key in seen or key not in dists:
            continue
        seen.add(key)
        todo.extend(dists[key]["requires"])
    return seen
