"""Third-party plugin distributions made on disk: a ``*.dist-info`` directory with
``METADATA`` and ``entry_points.txt`` next to the plugin modules is exactly what pip
installs, and ``importlib.metadata`` discovers it the same way."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path


def install_dist(
    site: Path, dist: str, plugins: dict[str, str], version: str = "1.0"
) -> dict[str, str]:
    """Write distribution ``dist`` into the directory ``site`` with one entry point (group
    ``agentshell``) per item of ``plugins`` (entry-point name -> module source). Returns
    entry-point name -> module name (unique per call, so tests do not share modules)."""
    site.mkdir(parents=True, exist_ok=True)
    modules: dict[str, str] = {}
    lines = ["[agentshell]"]
    for ep_name, source in plugins.items():
        module = f"distplug_{ep_name}_{uuid.uuid4().hex[:8]}"
        (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        lines.append(f"{ep_name} = {module}")
        modules[ep_name] = module
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return modules
