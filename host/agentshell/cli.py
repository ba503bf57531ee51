"""The ``agentshell`` command.

    agentshell [-p MODULE]... [--continue]     the interactive shell
    agentshell run "/cmd ..." ["/cmd2 ..."]    run commands, exit non-zero on failure
    agentshell run [--json] "some text"        send a message to the chat agent (a plugin)
    agentshell run -f FILE                     run a script of commands ('-' for stdin)
    agentshell plugins [--json]                list plugins and their state
    agentshell install NAME... [-U] [-e PATH]  add plugin distributions to the environment
                                               agentshell runs in (install.py: pip or uv)
    agentshell uninstall [-y] NAME...          remove them from it
    agentshell --version

Start-up is a feature: ``--version`` answers before anything heavy is imported, and
the modules behind the other paths import their dependencies when they need them.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import argparse

    from .shell import Shell

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# every command succeeded, but a telemetry sink not marked optional lost events
# (3 is the spec-kit plugin's halt)
EXIT_TELEMETRY_LOST = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM: how CI cancels a job


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        from ._version import __version__

        print(f"agentshell {__version__}")
        return EXIT_OK
    if args[:1] and args[0].startswith("/"):
        # `agentshell /help`: a shell command where a subcommand goes; say how to run it
        # rather than argparse's "argument cmd: invalid choice: '/help'"
        import shlex

        line = shlex.quote(" ".join(args))
        print(
            f"error: {args[0]} is a command of the shell: run it with agentshell run {line}, "
            "or type it in the interactive shell (agentshell)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    parser = _parser()
    unknown = _unknown_leading_option(parser, args)
    if unknown:
        print(f"error: {unknown}; see agentshell --help", file=sys.stderr)
        return EXIT_USAGE
    ns = parser.parse_args(args)
    try:
        if ns.cmd in ("install", "uninstall"):
            from . import install

            return install.install(ns) if ns.cmd == "install" else install.uninstall(ns)
        import asyncio

        if ns.cmd == "run":
            return asyncio.run(_terminable(_run, ns))
        if ns.cmd == "plugins":
            return asyncio.run(_plugins(ns))
        return asyncio.run(_terminable(_interactive, ns))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


async def _terminable(body: Callable[[argparse.Namespace], Awaitable[int]], ns: Any) -> int:
    """Run ``body`` with SIGTERM handled like Ctrl-C: the running command is cancelled
    (plugins see the cancellation and record it), the shell stops cleanly (telemetry
    is flushed) and the exit status is 143."""
    import asyncio
    import contextlib
    import signal

    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        again = terminated
        terminated = True
        shell = _shells[-1] if _shells else None
        if shell is not None:
            shell.request_exit()
            command = shell.current_task
            if command is not None and not command.done():
                command.cancel()  # run_command returns; the loops see exit_requested
                return
            if shell in _stopping and not again:
                return  # stopping already: let it flush telemetry (a second SIGTERM won't wait)
        if main_task is not None:
            # at a prompt, or starting (the REPL then cancels the plugins still loading):
            # leave now; the finally below still stops the shell
            main_task.cancel()

    received = False

    def note_sigterm(signum: int, frame: object) -> None:
        # Python-level handler, run on the main thread as soon as the signal lands: the
        # loop's on_sigterm may never run if the body ends first (stdin's EOF racing the
        # signal), and a SIGTERM must still end in status 143
        nonlocal received
        received = True

    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        # asyncio keeps its wakeup fd; only the no-op Python handler is replaced
        signal.signal(signal.SIGTERM, note_sigterm)
        installed = True
    try:
        status = await body(ns)
    except asyncio.CancelledError:
        if not (terminated or received):
            raise
        status = EXIT_TERMINATED
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)
        for shell in _shells:
            await _stop(shell)  # a no-op when the body stopped it already
    return EXIT_TERMINATED if terminated or received else status


# the shells this process made, for the SIGTERM handler (one, in practice)
_shells: list[Shell] = []
# those being stopped: a SIGTERM then must not cut short the flush of their telemetry
_stopping: list[Shell] = []


async def _stop(shell: Shell) -> None:
    if shell not in _stopping:
        _stopping.append(shell)
    await shell.stop()


def _unknown_leading_option(parser: argparse.ArgumentParser, args: list[str]) -> str | None:
    """An unknown option before the subcommand (``--colour never``): argparse would
    take its value for a subcommand and say "invalid choice: 'never'"."""
    import difflib

    known = [o for action in parser._actions for o in action.option_strings]
    for arg in args:
        if not arg.startswith("-"):
            return None
        name = arg.partition("=")[0]
        if name.startswith("--") and name not in known:
            guess = difflib.get_close_matches(name, known, n=1)
            return f"unknown option {name}" + (f" (did you mean {guess[0]}?)" if guess else "")
    return None


def _parser() -> argparse.ArgumentParser:
    import argparse

    from .theme import COLOR_MODES

    parser = argparse.ArgumentParser(
        prog="agentshell",
        description="A small, fast, pluggable agent shell.",
        epilog="Run without a subcommand for the interactive shell. Type /help inside it.",
    )
    parser.add_argument("-V", "--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "-p",
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="also load the plugin in MODULE (an importable module name); repeatable",
    )
    color_help = "colour: auto (a terminal, unless NO_COLOR is set), always or never"
    parser.add_argument("--color", choices=COLOR_MODES, default=None, help=color_help)
    continue_help = "continue the last conversation (with a chat plugin installed)"
    parser.add_argument(
        "-c", "--continue", action="store_true", dest="continue_last", help=continue_help
    )
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run commands non-interactively",
        epilog=(
            "exit status: 0 every command succeeded; else the failing command's own "
            "(1 an error; a plugin's command may return others), "
            "2 bad usage or configuration, 4 the commands succeeded but a telemetry "
            "sink lost events ([telemetry] optional accepts that), 130 Ctrl-C, "
            "143 SIGTERM"
        ),
    )
    run.add_argument("commands", nargs="*", metavar="COMMAND", help='a command line, e.g. "/help"')
    run.add_argument("-f", "--file", help="read commands from FILE, one per line ('-' = stdin)")
    run.add_argument(
        "-k", "--keep-going", action="store_true", help="run every command even after a failure"
    )
    run.add_argument(
        "-p",
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        dest="plugin2",
        help="also load the plugin in MODULE (an importable module name); repeatable",
    )
    run.add_argument("--color", choices=COLOR_MODES, default=None, help=color_help, dest="color2")
    run.add_argument(
        "-c", "--continue", action="store_true", dest="continue_last2", help=continue_help
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print results as JSON where they have that form (a chat answer with its usage)",
    )
    plugins = sub.add_parser("plugins", help="list plugins and their state")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.add_argument(
        "--color", choices=COLOR_MODES, default=None, help=color_help, dest="color2"
    )
    _install_parsers(sub)
    return parser


def _install_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``install`` and ``uninstall`` (install.py does the work; it is imported only for
    them, so defining their options here costs the other commands nothing)."""
    p = sub.add_parser(
        "install",
        help="install plugin distributions into agentshell's own environment",
        description=(
            "Install distributions (plugins) into the environment agentshell runs in, "
            "with pip (or uv when that environment has no pip), then list the plugins "
            "they registered. Works for pipx and uv tool installs."
        ),
        epilog="e.g. agentshell install agentshell-speckit-metrics",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="a distribution or requirement")
    p.add_argument("-U", "--upgrade", action="store_true", help="upgrade to the newest version")
    p.add_argument("-q", "--quiet", action="store_true", help="less output from pip")
    p.add_argument(
        "-e",
        "--editable",
        action="append",
        default=[],
        metavar="PATH",
        help="install the project at PATH in editable mode (repeatable)",
    )
    p.add_argument(
        "-f",
        "--find-links",
        action="append",
        default=[],
        metavar="DIR",
        help="also look for distributions in DIR or at a URL (repeatable)",
    )
    p.add_argument("-i", "--index-url", metavar="URL", help="use this package index")
    p.add_argument("--no-index", action="store_true", help="do not use a package index (with -f)")
    p.add_argument("--pre", action="store_true", help="allow pre-release versions")
    p.add_argument("--force-reinstall", action="store_true", help="reinstall even when up to date")
    p.add_argument("--no-cache-dir", action="store_true", help="do not use pip's cache")

    u = sub.add_parser(
        "uninstall",
        help="remove plugin distributions from agentshell's own environment",
        description=(
            "Remove distributions (plugins) from the environment agentshell runs in. "
            "Their dependencies stay; agentshell itself cannot be removed this way."
        ),
        epilog="e.g. agentshell uninstall -y agentshell-speckit-metrics",
    )
    u.add_argument("names", nargs="+", metavar="NAME", help="a distribution name")
    u.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def _make_shell(ns: argparse.Namespace, mode: Literal["repl", "run"]) -> Shell:
    import importlib

    from .output import Output
    from .shell import Shell
    from .theme import ColorMode

    color: ColorMode = getattr(ns, "color2", None) or getattr(ns, "color", None) or "auto"
    shell = Shell(mode=mode, output=Output(color=color))
    shell.continue_last = bool(
        getattr(ns, "continue_last", False) or getattr(ns, "continue_last2", False)
    )
    shell.json_output = bool(getattr(ns, "json", False)) and getattr(ns, "cmd", None) == "run"
    _shells.append(shell)
    # a module named twice is loaded once (not reported as clashing with itself)
    for module_name in dict.fromkeys([*getattr(ns, "plugin", []), *getattr(ns, "plugin2", [])]):
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            from .plugins import PluginInfo, summarize_exception

            shell.plugins.infos[module_name] = PluginInfo(
                name=module_name,
                module=module_name,
                state="failed",
                reason=f"import failed: {summarize_exception(exc)}",
            )
            hint = ""
            if isinstance(exc, ModuleNotFoundError) and exc.name == module_name.split(".")[0]:
                hint = " (is it installed, or on PYTHONPATH?)"
            shell.output.error(f"plugin {module_name}: {summarize_exception(exc)}{hint}")
            continue
        shell.plugins.requested.add(module_name)  # a hook raising later is an error too
        info = shell.plugins.register(module, module_name)
        if info.state == "failed":  # e.g. a misspelt hook: say so, in every mode
            shell.output.error(f"plugin {module_name}: {info.reason}")
    return shell


def _requested_failed(shell: Shell, ns: argparse.Namespace) -> list[str]:
    """The ``-p`` modules that are not usable (failed to import, register or start)."""
    requested = [*getattr(ns, "plugin", []), *getattr(ns, "plugin2", [])]
    infos = shell.plugins.infos
    return [m for m in requested if m not in infos or infos[m].state == "failed"]


async def _start(shell: Shell) -> int | None:
    """Start the shell; ``None``, or the exit status after a start-up that failed."""
    try:
        await shell.start()
    except Exception as exc:  # Ctrl-C is main()'s; cancellation (SIGTERM) _terminable's
        return start_failed(shell, exc)
    return None


def start_failed(shell: Shell, exc: BaseException) -> int:
    """Report a start-up that raised, in one line each; return the exit status. Plugins'
    failures are isolated before this (the plugin fails, the shell starts without it),
    so what arrives here left the shell half-started — possibly before its commands were
    registered — and no command may run in it: every caller exits with this status."""
    from .errors import AgentshellError

    if isinstance(exc, AgentshellError):  # `run`: every configuration problem at once
        for line in str(exc).splitlines():
            shell.output.error(line)
        return EXIT_USAGE
    if isinstance(exc, KeyboardInterrupt):
        shell.output.error("start-up interrupted")
        return EXIT_INTERRUPTED
    from .plugins import summarize_exception

    shell.output.error(
        f"start-up failed: {summarize_exception(exc)} "
        "(run with AGENTSHELL_DEBUG=1 for the traceback)"
    )
    if shell.environ.get("AGENTSHELL_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    return EXIT_FAILED


async def _interactive(ns: argparse.Namespace) -> int:
    shell = _make_shell(ns, "repl")
    if sys.stdin.isatty() and sys.stdout.isatty():
        from .repl import repl

        try:
            # the prompt appears first; plugins load right after it is drawn
            return await repl(shell, start=True)
        finally:
            await _stop(shell)
    shell.fail_on_telemetry_loss = True  # commands from a pipe: a script, as `run`
    failed = await _start(shell)
    if failed is not None:
        return failed
    status = EXIT_FAILED
    try:
        from .runner_cli import line_reader

        status = await line_reader(shell)
    finally:
        await _stop(shell)
    return _with_telemetry(shell, status)


def _with_telemetry(shell: Shell, status: int) -> int:
    """The exit status once the shell has stopped: a success whose telemetry was lost
    (a sink not marked optional) becomes 4; a failure keeps its own status."""
    return EXIT_TELEMETRY_LOST if status == EXIT_OK and shell.telemetry_lost else status


def _read_script(path: str) -> list[str]:
    from .errors import CommandError

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            # utf-8-sig: editors on Windows start files with a byte-order mark
            with open(path, encoding="utf-8-sig") as fh:
                text = fh.read()
    except UnicodeDecodeError:
        raise CommandError(f"cannot read {path}: not UTF-8 text") from None
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    text = text.removeprefix("\ufeff")  # stdin too
    return [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


async def _run(ns: argparse.Namespace) -> int:
    from .errors import AgentshellError
    from .runner_cli import run_command

    try:
        lines = list(getattr(ns, "commands", []))
        if getattr(ns, "file", None):
            lines += _read_script(ns.file)
    except AgentshellError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not lines:
        print(
            'error: nothing to run: give commands (agentshell run "/help") or -f FILE',
            file=sys.stderr,
        )
        return EXIT_USAGE
    shell = _make_shell(ns, "run")
    shell.fail_on_telemetry_loss = True  # a lost event fails the run (status 4)
    if _requested_failed(shell, ns):
        return EXIT_USAGE  # asked for by name: running without it would mislead
    failed = await _start(shell)
    if failed is not None:
        return failed
    status = EXIT_OK
    echo = len(lines) > 1
    try:
        if _requested_failed(shell, ns):
            # a hook raised while the shell started: its one error line is printed
            # already (like an import error's); running without the plugin would mislead
            return EXIT_USAGE
        for index, line in enumerate(lines):
            if echo:
                shell.output.print(f"» {line}")
            code = await run_command(shell, line)
            if code == EXIT_INTERRUPTED:
                return EXIT_INTERRUPTED
            if shell.output.closed:
                break  # the reader of stdout has gone (| head): stop quietly
            if code:
                status = status or code
                skipped = lines[index + 1 :]
                if skipped and not getattr(ns, "keep_going", False):
                    shown = ", ".join(s.split()[0] for s in skipped[:5])
                    more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
                    noun = "command" if len(skipped) == 1 else "commands"
                    shell.output.error(
                        f"skipped {len(skipped)} {noun} after the failure: {shown}{more}; "
                        "use -k to keep going"
                    )
                    break
            if shell.exit_requested:
                break
    finally:
        await _stop(shell)
    return _with_telemetry(shell, status)


async def _plugins(ns: argparse.Namespace) -> int:
    shell = _make_shell(ns, "run")
    shell.mode = "repl"  # a bad config must not hide the list
    failed = await _start(shell)
    if failed is not None:
        return failed
    try:
        return await shell.execute("/plugins --json" if getattr(ns, "json", False) else "/plugins")
    finally:
        await _stop(shell)


if __name__ == "__main__":
    sys.exit(main())
