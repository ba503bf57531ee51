"""A fresh virtualenv with agentshell and plugin distributions built from source.

Offline and fast: every wheel is built with this environment's build backend (no build
isolation, no index), installed without dependencies by this environment's pip into
the new venv, and the new venv sees the already-installed third-party dependencies
(pydantic, prompt_toolkit...) through a .pth file pointing at a directory of symlinks
to them — agentshell and its plugin distributions are deliberately not among them, so
the venv's agentshell is the one built from the repo and its plugins are only the ones
installed here."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from tests.helpers.paths import REPO


def run(argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; its exit status must be 0 (the message has its output)."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done  # type: ignore[no-any-return]


def make_venv(root: Path, projects: Sequence[Path] = ()) -> Path:
    """A venv in ``root/venv`` with agentshell (built from the repo) and ``projects``
    (directories with a pyproject.toml) installed; returns the venv's directory."""
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
    install(env_dir, [REPO, *projects])
    return env_dir


def install(env_dir: Path, projects: Sequence[Path]) -> None:
    """Build ``projects`` into wheels and install them (no dependencies) into the venv."""
    wheels = env_dir.parent / "wheels"
    wheels.mkdir(exist_ok=True)
    built: list[Path] = []
    for project in projects:
        before = set(wheels.glob("*.whl"))
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
            cwd=env_dir.parent,
        )
        built += sorted(set(wheels.glob("*.whl")) - before)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env_dir / "bin" / "python"),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            *map(str, built),
        ],
        cwd=env_dir.parent,
    )


def venv_env(env_dir: Path, home: Path, **extra: str) -> dict[str, str]:
    """``os.environ`` for a child in the venv: the venv's ``bin`` first on PATH, no
    ``AGENTSHELL_*``/``PYTHON*``/``VIRTUAL_ENV`` of the test runner, ``home`` as
    AGENTSHELL_HOME, telemetry to the null sink, and ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTSHELL_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(AGENTSHELL_HOME=str(home), AGENTSHELL_TELEMETRY_SINKS="null", **extra)
    return env
