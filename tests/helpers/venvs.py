"""Building the project's distributions and installing them into fresh virtualenvs.

Builds are offline: this environment's hatchling builds each project in its own folder
(no build isolation, no index). A fresh venv made with :func:`make_venv` may *share*
this environment's third-party dependencies (pydantic, prompt_toolkit, genai-prices,
pip itself if asked...) through a ``.pth`` file pointing at a folder of symlinks to
them — everything of agentshell's own (the host and every plugin, their dist-info and
editable ``.pth`` files) is left out, so what the venv has of agentshell is only what
a test installs into it from the wheels built here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.helpers.paths import REPO

# distribution name -> its project folder (pyproject.toml)
PROJECTS: dict[str, Path] = {
    "agentshell": REPO,
    "agentshell-speckit-consensus": REPO / "plugins" / "consensus",
    "agentshell-speckit-metrics": REPO / "plugins" / "metrics",
    "agentshell-speckit-faults": REPO / "plugins" / "faults",
    "agentshell-speckit-resume": REPO / "plugins" / "resume",
    "agentshell-speckit-device-login": REPO / "plugins" / "device_login",
    "agentshell-speckit": REPO / "plugins" / "speckit",
    "agentshell-chat": REPO / "plugins" / "chat",
}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def run(
    argv: list[str], *, timeout: float = 180, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; a non-zero exit fails the test with its output."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done


def build(projects: Iterable[Path], out: Path, *, sdist: bool = True) -> None:
    """Build each project's wheel (and sdist) into ``out``, all at once: the builds are
    independent and each is mostly interpreter start-up."""
    out.mkdir(parents=True, exist_ok=True)
    targets = ["-t", "wheel", *(["-t", "sdist"] if sdist else [])]
    procs = [
        (
            project,
            subprocess.Popen(
                [sys.executable, "-m", "hatchling", "build", *targets, "-d", str(out)],
                cwd=project,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
        for project in projects
    ]
    failed = []
    for project, proc in procs:
        output, _ = proc.communicate(timeout=180)
        if proc.returncode != 0:
            failed.append(f"{project}: {output}")
    assert not failed, "\n".join(failed)


def wheel_of(out: Path, name: str) -> Path:
    (found,) = out.glob(f"{normalize(name).replace('-', '_')}-*.whl")
    return found


def sdist_of(out: Path, name: str) -> Path:
    (found,) = out.glob(f"{normalize(name).replace('-', '_')}-*.tar.gz")
    return found


def _shared_deps(root: Path, *, pip: bool) -> Path:
    deps = root / "deps"
    deps.mkdir()
    ours = Path(sysconfig.get_path("purelib"))
    for entry in ours.iterdir():
        name = entry.name.lower()
        if name.startswith(("agentshell", "speckit_", "_editable_impl_", "__editable__")):
            continue
        if name.endswith(".pth") or name == "__pycache__":
            continue
        if not pip and (name == "pip" or name.startswith("pip-")):
            continue
        (deps / entry.name).symlink_to(entry)
    return deps


def make_venv(root: Path, *, shared_deps: bool = True, pip: bool = False) -> Path:
    """A fresh venv under ``root`` (no pip of its own); with ``shared_deps`` it sees this
    environment's third-party packages, and pip among them when ``pip``."""
    env_dir = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)])
    if shared_deps:
        site = Path(
            run(
                [python_of(env_dir), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
            ).stdout.strip()
        )
        deps = _shared_deps(root, pip=pip)
        (site / "zz_shared_deps.pth").write_text(str(deps) + "\n", encoding="utf-8")
    return env_dir


def python_of(env_dir: Path) -> str:
    return str(env_dir / "bin" / "python")


def pip_install(
    env_dir: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """This environment's pip installing into the venv (it has none of its own)."""
    return run(
        [sys.executable, "-m", "pip", "--python", python_of(env_dir), "install", "-q", *args],
        cwd=cwd,
    )


def installed(env_dir: Path) -> dict[str, dict[str, Any]]:
    """Every distribution the venv's interpreter sees: normalized name -> version and
    the normalized names it requires (optional extras left out)."""
    script = (
        "import importlib.metadata as m, json\n"
        "print(json.dumps([[d.metadata['Name'], d.version, d.requires or []]"
        " for d in m.distributions()]))"
    )
    found: dict[str, dict[str, Any]] = {}
    for name, version, requires in json.loads(run([python_of(env_dir), "-c", script]).stdout):
        needs = []
        for line in requires:
            requirement, _, marker = line.partition(";")
            if "extra" not in marker:
                match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
                if match:
                    needs.append(normalize(match.group(1)))
        found.setdefault(normalize(name), {"version": version, "requires": needs})
    return found


def shell_env(tmp: Path, **extra: str) -> dict[str, str]:
    """An environment for running a venv's ``agentshell``: none of the developer's
    ``AGENTSHELL_*``/``PYTHON*`` settings nor this venv, a private home, no telemetry."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTSHELL_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(AGENTSHELL_HOME=str(tmp / "home"), AGENTSHELL_TELEMETRY_SINKS="null", **extra)
    return env


def venv_with(root: Path, projects: Iterable[Path] = ()) -> Path:
    """A venv (sharing this environment's third-party packages) with agentshell built
    from the repo and each of ``projects`` (folders with a pyproject.toml) installed."""
    env_dir = make_venv(root)
    install(env_dir, [REPO, *projects])
    return env_dir


def install(env_dir: Path, projects: Iterable[Path]) -> None:
    """Build ``projects`` into wheels and install them (no dependencies, no index)."""
    projects = list(projects)
    out = env_dir.parent / f"wheels-{len(list(env_dir.parent.glob('wheels-*')))}"
    build(projects, out, sdist=False)
    pip_install(env_dir, "--no-deps", "--no-index", *map(str, sorted(out.glob("*.whl"))))


def venv_env(env_dir: Path, home: Path, **extra: str) -> dict[str, str]:
    """:func:`shell_env` with ``home`` as AGENTSHELL_HOME and the venv's ``bin`` first
    on PATH, so ``agentshell`` and ``pip`` in a console line are the venv's."""
    env = shell_env(home.parent, **extra)
    env["AGENTSHELL_HOME"] = str(home)
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env
