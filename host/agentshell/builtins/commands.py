"""The built-in commands: /help, /plugins, /config, /set-env, /quit.

An ordinary plugin (entry point ``builtins``): the host registers its own commands
through the same hook a third party uses.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import TYPE_CHECKING

from agentshell.commands import Arg, Command, CommandContext, Option
from agentshell.errors import CommandError
from agentshell.plugins import hookimpl
from agentshell.redact import MASK

if TYPE_CHECKING:
    from agentshell.hookspecs import Register
    from agentshell.shell import Shell


def _command_names(shell: Shell, prefix: str) -> Iterable[str]:
    return [n for n in shell.commands.names() if n.startswith(prefix.lstrip("/"))]


def help_command(ctx: CommandContext) -> int:
    shell, out = ctx.shell, ctx.out
    name = ctx.args.command
    if name:
        command = shell.commands.get(name)
        if command is None:
            guesses = shell.commands.suggest(name)
            hint = f" — did you mean {', '.join('/' + g for g in guesses)}?" if guesses else ""
            raise CommandError(f"no command /{name.lstrip('/')}{hint}")
        out.print(f"usage: {command.usage}")
        out.print(f"  {_plain(command.help)}")
        if command.description:
            out.print("")
            for line in command.description.strip().splitlines():
                out.print(f"  {_plain(line)}".rstrip())
        entries = [(arg.placeholder, arg.help) for arg in command.args]
        entries += [(opt.label, opt.help) for opt in command.options]
        if entries:
            out.print("")
            width = max(len(label) for label, _ in entries)
            for label, text in entries:  # descriptions aligned in one column
                out.print(f"  {label.ljust(width)}  {_plain(text)}".rstrip())
        if command.aliases:
            out.print(f"  aliases: {', '.join('/' + a for a in command.aliases)}")
        out.print(f"  (from plugin {command.plugin})")
        return 0
    aliases: dict[str, list[str]] = {}
    for alias, target in sorted(shell.commands.aliases().items()):
        aliases.setdefault(target, []).append(alias)
    rows = [
        (", ".join(f"/{n}" for n in [c.name, *aliases.get(c.name, [])]), c.help, c.plugin)
        for c in shell.commands.all()
    ]
    out.table(["command", "what it does", "plugin"], rows, title="Commands")
    out.print("Type /help <command> for its arguments. Tab completes commands and arguments.")
    out.print("Ctrl-C cancels a running command; Ctrl-D on an empty line (or /quit) exits.")
    return 0


def _plain(text: str) -> str:
    """Help text is written for Sphinx too: drop RST inline markup for the terminal."""
    import re

    text = re.sub(r"``([^`]+)``", r"\1", text)
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)


def plugins_command(ctx: CommandContext) -> int:
    infos = list(ctx.shell.plugins.infos.values())
    if ctx.args.json:
        ctx.out.json([info.as_dict() for info in infos])
        return 0
    rows = [
        (
            info.name,
            info.state + (f": {info.reason}" if info.reason else ""),
            info.version,
            info.distribution,
            ", ".join(info.hooks),
        )
        for info in infos
    ]
    ctx.out.table(
        ["plugin", "state", "version", "distribution", "hooks"],
        rows,
        title="Plugins",
        optional=["version", "distribution"],  # left out when narrow, last first
    )
    return 0


async def config_command(ctx: CommandContext) -> int:
    from agentshell.config import redacted

    shell, out = ctx.shell, ctx.out
    action = ctx.args.action or "show"
    if action == "reload":
        await shell.reload_config()
        out.success("configuration reloaded")
        return 0
    if action == "path":
        from agentshell.configfiles import PROJECT_FILE, USER_FILE

        out.print(f"user:    {shell.home / USER_FILE}")
        out.print(f"project: {shell.cwd / PROJECT_FILE}")
        out.print(f"data:    {shell.data_dir}")
        return 0
    # by_alias: show the documented names ("timeout", not the field's "timeout_s")
    merged = redacted(shell.config.model_dump(mode="python", by_alias=True))
    merged.setdefault("plugins", {})
    for name in shell.plugin_sections:
        merged["plugins"][name] = redacted(shell.plugin_config(name))
    if ctx.args.json:
        out.json(merged)
    else:
        # never folded to the terminal: a value moved to the next line, or a comment
        # continued without its '#', is no longer TOML (the terminal wraps it softly)
        out.print(_to_toml(merged).strip("\n"), fold=False)
    # only the sources that set something ("environment" only if a variable did)
    sources = [s.label for s in shell.raw_config.sources if s.data] if shell.raw_config else []
    out.print(
        f"# sources (lowest precedence first): defaults, {', '.join(sources) or 'none'}",
        fold=False,
    )
    for problem in shell.config_errors:
        out.print(f"# problem: {' '.join(problem.split())}", fold=False)
    return 0


def _to_toml(value: dict[str, object], prefix: str = "") -> str:
    import json

    scalars, tables = [], []
    for key, item in value.items():
        if isinstance(item, dict) and not (set(item) <= {"env", "keyring"} and item):
            tables.append((key, item))
        elif item is None:
            scalars.append(f"# {key}: (unset)")  # TOML has no null
        else:
            scalars.append(f"{key} = {_toml_value(item, json)}")
    lines = []
    if prefix and scalars:
        lines.append(f"[{prefix}]")
    lines.extend(scalars)
    for key, item in tables:
        sub = _to_toml(item, f"{prefix}.{key}" if prefix else key)  # type: ignore[arg-type]
        sub = sub.strip("\n")  # a table with only sub-tables adds no blank line of its own
        if sub:
            lines.append("")
            lines.append(sub)
    return "\n".join(lines)


def _toml_value(item: object, json: object) -> str:
    import json as _json

    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v, json)}" for k, v in item.items()) + " }"
    return _json.dumps(item, default=str)


def parse_set_env(rest: str) -> tuple[str, str]:
    """``NAME=VALUE`` from the rest of a ``/set-env`` line, shell-style quoted like every
    other command's arguments (``MY_KEY='K'`` sets ``K``)."""
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise CommandError(f"/set-env: {exc}") from None
    if len(words) > 1:
        raise CommandError("one NAME=VALUE per /set-env (quote a value that has spaces)")
    name, eq, value = (words[0] if words else "").partition("=")
    name = name.strip()
    if not eq or not name:
        raise CommandError("usage: /set-env NAME=VALUE")
    return name, value.strip()


def set_env_command(ctx: CommandContext) -> int:
    name, value = parse_set_env(ctx.args.rest)
    if value == MASK:
        # an Up-arrow recall of a history line, whose value was masked when it was saved
        raise CommandError(
            f"{name}: that value is the masked placeholder from history; type the real value"
        )
    ctx.shell.set_env(name, value)
    if value:
        ctx.out.success(f"{name} set for this session")
    else:
        ctx.out.success(f"{name} unset for this session")
    return 0


def quit_command(ctx: CommandContext) -> int:
    ctx.shell.request_exit()
    return 0


@hookimpl
def register_commands(register: Register) -> None:
    register(
        Command(
            "help",
            help_command,
            help="list commands, or show one command's usage",
            args=[Arg("command", "a command name", required=False, complete=_command_names)],
        )
    )
    register(
        Command(
            "plugins",
            plugins_command,
            help="list plugins: state, version, distribution, hooks",
            options=[Option("--json", "print JSON", flag=True)],
        )
    )
    register(
        Command(
            "config",
            config_command,
            help="show the merged configuration (secrets redacted)",
            args=[
                Arg(
                    "action",
                    "show (default), reload or path",
                    required=False,
                    choices=("show", "reload", "path"),
                    complete=lambda shell, prefix: ["show", "reload", "path"],
                )
            ],
            options=[Option("--json", "print JSON", flag=True)],
        )
    )
    register(
        Command(
            "set-env",
            set_env_command,
            help="set an environment variable for this session: /set-env NAME=VALUE",
            raw=True,
            description="The value never reaches the history file, logs or telemetry.",
        )
    )
    register(Command("quit", quit_command, help="leave the shell", aliases=("exit",)))
