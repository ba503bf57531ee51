"""A third-party plugin distribution (tests/thirdparty/agentshell-hello, its own
pyproject.toml and entry point) built and installed into a fresh venv beside
agentshell, then used through the real console script.

Offline and fast: both wheels are built with this environment's hatchling (no build
isolation, no index), installed without dependencies by this environment's pip into
the new venv, and the new venv sees the already-installed third-party dependencies
(pydantic, prompt_toolkit...) through a .pth file (tests/helpers/venvs.py) — agentshell
itself is deliberately not among them, so the venv's agentshell is the one built from
the repo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers.paths import REPO
from tests.helpers.venvs import build, make_venv, pip_install, run, venv_env

PLUGIN = REPO / "tests" / "thirdparty" / "agentshell-hello"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("thirdparty")
    env_dir = make_venv(root)
    wheels = root / "wheels"
    build([REPO, PLUGIN], wheels, sdist=False)
    pip_install(env_dir, "--no-deps", "--no-index", *map(str, sorted(wheels.glob("*.whl"))))
    return env_dir


def test_thirdparty_plugin_appears_runs_and_can_be_disabled(venv: Path, tmp_path: Path) -> None:
    agentshell = str(venv / "bin" / "agentshell")
    env = venv_env(venv, tmp_path / "home")

    where = run(
        [str(venv / "bin" / "python"), "-c", "import agentshell; print(agentshell.__file__)"],
        env=env,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel, not the checkout

    listed = json.loads(run([agentshell, "plugins", "--json"], env=env, cwd=tmp_path).stdout)
    plugins = {item["name"]: item for item in listed}
    hello = plugins["hello"]
    assert hello["state"] == "loaded", hello
    assert hello["distribution"] == "agentshell-hello"
    assert hello["version"] == "0.3.0"
    assert hello["builtin"] is False
    assert sorted(hello["hooks"]) == ["register_commands", "status_segments"]
    assert plugins["builtins"]["distribution"] == "agentshell"

    greeted = run(
        [agentshell, "run", "/hello", "/hello plugin-author --shout"], env=env, cwd=tmp_path
    )
    assert "hello, world!" in greeted.stdout
    assert "HELLO, PLUGIN-AUTHOR!" in greeted.stdout

    off = venv_env(venv, tmp_path / "home", AGENTSHELL_DISABLE_PLUGINS="hello")
    listed = json.loads(run([agentshell, "plugins", "--json"], env=off, cwd=tmp_path).stdout)
    assert {i["name"]: i["state"] for i in listed}["hello"] == "disabled"
    refused = subprocess.run(
        [agentshell, "run", "/hello"],
        env=off,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "unknown command /hello" in refused.stderr
