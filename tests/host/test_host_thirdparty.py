"""A third-party plugin distribution (tests/thirdparty/agentshell-hello, its own
pyproject.toml and entry point) built and installed into a fresh venv beside
agentshell, then used through the real console script.

Offline and fast: both wheels are built with this environment's hatchling (no build
isolation, no index), installed without dependencies by this environment's pip into
the new venv, and the new venv sees the already-installed third-party dependencies
(pydantic, prompt_toolkit...) through a .pth file pointing at a directory of symlinks
to them — agentshell itself is deliberately not among them, so the venv's agentshell
is the one built from the repo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

PLUGIN = REPO / "tests" / "thirdparty" / "agentshell-hello"

pytestmark = pytest.mark.slow


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("thirdparty")
    env_dir = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)])
    python = env_dir / "bin" / "python"
    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
        ).stdout.strip()
    )

    # the dependencies, minus anything of agentshell's own (its dist-info and .pth)
    deps = root / "deps"
    deps.mkdir()
    ours = Path(sysconfig.get_path("purelib"))
    for entry in ours.iterdir():
        name = entry.name.lower()
        if name.startswith(("agentshell", "_editable_impl_agentshell", "__editable__")):
            continue
        if name.endswith(".pth") or name in {"pip", "__pycache__"}:
            continue
        (deps / entry.name).symlink_to(entry)
    (site / "zz_shared_deps.pth").write_text(str(deps) + "\n", encoding="utf-8")

    wheels = root / "wheels"
    for project in (REPO, PLUGIN):
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "-q",
                "-w",
                str(wheels),
                str(project),
            ],
            cwd=root,
        )
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            *map(str, sorted(wheels.glob("*.whl"))),
        ],
        cwd=root,
    )
    return env_dir


def shell_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTSHELL_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(AGENTSHELL_HOME=str(tmp / "home"), AGENTSHELL_TELEMETRY_SINKS="null", **extra)
    return env


def test_thirdparty_plugin_appears_runs_and_can_be_disabled(venv: Path, tmp_path: Path) -> None:
    agentshell = str(venv / "bin" / "agentshell")
    env = shell_env(tmp_path)

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

    off = shell_env(tmp_path, AGENTSHELL_DISABLE_PLUGINS="hello")
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
