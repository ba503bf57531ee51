"""``/agents``: the configured agents, their backend, model and target, and whether their
credentials are available (never the credentials themselves)."""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING, Any

from agentshell.commands import Command, CommandContext, Option
from agentshell.plugins import hookimpl
from agentshell.redact import redact

if TYPE_CHECKING:
    from agentshell.hookspecs import Register


def _target(shell: Any, spec: Any, limit: int | None = 60) -> str:
    """Where the agent's answers come from, for the user (no secrets: redacted)."""
    options = spec.options
    if spec.backend == "openai":
        from agentshell.backends.openai import DEFAULT_BASE_URL

        return redact(spec.base_url or DEFAULT_BASE_URL)
    if spec.backend == "command":
        command = options.get("command")
        text = shlex.join(command) if isinstance(command, list) else str(command or "")
        text = redact(text)
        return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"
    if spec.backend == "replay":
        return _short_path(shell, str(options.get("dir") or ".agentshell/recordings"))
    return spec.base_url or ""


def _short_path(shell: Any, path: str) -> str:
    """Relative to the working directory when inside it, else ``…/parent/name``."""
    from pathlib import Path

    full = Path(path)
    if not full.is_absolute():
        return path
    try:
        return str(full.relative_to(Path(shell.cwd)))
    except ValueError:
        return f"…/{'/'.join(full.parts[-2:])}" if len(full.parts) > 3 else path


def _credentials(shell: Any, spec: Any) -> tuple[bool | None, str]:
    """(available: True/False/None = not checked, where they come from)."""
    # never "NAME: set": output redaction masks whatever follows "..._KEY: "
    env = _env_name(spec)
    if env:
        return bool(os.environ.get(env)), f"{'env' if spec.auth else 'api_key env'} {env}"
    if spec.auth:
        return shell.auth.available(spec.auth), shell.auth.describe(spec.auth)
    secret = spec.options.get("api_key")
    if secret is not None:
        if getattr(secret, "keyring", None):
            # reading the keyring may prompt to unlock it: not done just to list agents
            return None, f"api_key keyring {secret.keyring}"
        return True, "literal (config)"
    if spec.backend == "replay":
        return True, "not needed"
    return True, "none"


def agents_command(ctx: CommandContext) -> int:
    shell = ctx.shell
    rows = []
    data = []
    for name, spec in sorted(shell.agents.items()):
        available, source = _credentials(shell, spec)
        recorded = " (recorded)" if spec.backend == "replay" else ""
        target = _target(shell, spec)
        plain = ("none", "not needed", "literal (config)")
        if source in plain:
            shown = source
        elif available is None:
            shown = f"not checked ({source})"
        else:
            shown = f"{'yes' if available else 'MISSING'}: {source}"
        rows.append((name, spec.backend + recorded, spec.model, spec.role, target, shown))
        data.append(
            {
                "name": name,
                "backend": spec.backend,
                "recorded": spec.backend == "replay",
                "model": spec.model,
                "role": spec.role,
                "target": _target(shell, spec, limit=None),  # JSON is for tools: never cut
                "timeout_s": spec.timeout_s,
                "credentials": source,
                "available": available,
                "broken": False,
            }
        )
    for name, error in sorted(getattr(shell, "broken_agents", {}).items()):
        backend, model, role, target = _configured(shell, name)
        shown_backend = f"{backend} (broken)" if backend else "(broken)"
        rows.append((name, shown_backend, model, role, target, "not used: see below"))
        data.append(
            {
                "name": name,
                "backend": backend,
                "broken": True,
                "error": error,
                "model": model,
                "role": role,
            }
        )
    if ctx.args.json:
        ctx.out.json(data)
        return 0
    if not rows:
        ctx.out.print("No agents configured. Add [agents.<name>] tables to agentshell.toml.")
        return 0
    ctx.out.table(
        ["agent", "backend", "model", "role", "target", "credentials"],
        rows,
        title="Agents",
        wrap=["backend", "credentials"],  # words: "replay (recorded)"
        # left out when narrow, target first (--json has both); never a cut model
        optional=["role", "target"],
    )
    for item in data:
        if item["broken"]:
            ctx.out.warn(f"{item['name']} is left out: {item['error']}")
        elif item["available"] is False:
            spec = shell.agents[item["name"]]
            env = _env_name(spec)
            fix = f": run /set-env {env}=<value>" if env else ""
            ctx.out.warn(f"{item['name']}: credentials missing{fix}")
    return 0


def _configured(shell: Any, name: str) -> tuple[str, str, str, str]:
    """(backend, model, role, target) of a broken agent as written in the configuration
    (it has no valid spec to read them from)."""
    cfg = shell.config.agents.get(name)
    if cfg is not None:  # valid settings, but an unknown backend or auth provider
        return cfg.backend, cfg.model, cfg.role, redact(cfg.base_url or "")
    raw = getattr(shell.raw_config, "data", {}).get("agents", {})
    table = raw.get(name) if isinstance(raw, dict) else None
    table = table if isinstance(table, dict) else {}

    def text(key: str) -> str:
        value = table.get(key)
        return redact(value) if isinstance(value, str) else ""

    return text("backend"), text("model"), text("role"), text("base_url")


def _env_name(spec: Any) -> str | None:
    if spec.auth and spec.auth.startswith("env:"):
        return str(spec.auth[4:])
    env = getattr(spec.options.get("api_key"), "env", None)
    return env if isinstance(env, str) else None


@hookimpl
def register_commands(register: Register) -> None:
    register(
        Command(
            "agents",
            agents_command,
            help="list agents: backend, model, role, target, credentials available",
            options=[Option("--json", "print JSON", flag=True)],
        )
    )
