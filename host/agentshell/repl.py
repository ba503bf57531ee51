"""The interactive loop: one PromptSession with completion, redacted history, a bottom
toolbar from plugins' status segments, and Ctrl-C that cancels the running command
but never the shell. The first prompt is drawn before plugins load (an "instant
prompt", see :func:`repl`); running lines without a terminal is
:mod:`agentshell.runner_cli`'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from prompt_toolkit.buffer import Buffer, BufferAcceptHandler
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import Lexer

from .commands import completing, split_line
from .errors import CommandError
from .live import live_status
from .redact import MASK, SECRET_KEY_NAMES, redact
from .repl_tab import KeyHold, tab_bindings
from .runner_cli import run_command
from .terminal import typeahead_hidden

if TYPE_CHECKING:
    from prompt_toolkit.styles import Style

    from .shell import Shell


class CommandCompleter(Completer):
    """Completes command names, then each command's options and declared arguments."""

    def __init__(self, shell: Shell, ready: asyncio.Future[None] | None = None) -> None:
        self.shell = shell
        self.ready = ready

    async def get_completions_async(
        self, document: Document, complete_event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        # a Tab pressed while plugins still load completes against the loaded shell
        if self.ready is not None and not self.ready.done():
            await asyncio.shield(self.ready)
        for completion in self.get_completions(document, complete_event):
            yield completion

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/"):
            return
        if " " not in text:
            prefix = text[1:]
            for name in self.shell.commands.names():
                if name.startswith(prefix):
                    command = self.shell.commands.get(name)
                    yield Completion(
                        "/" + name,
                        start_position=-len(text),
                        display_meta=command.help if command else "",
                    )
            return
        head, _, rest = text[1:].partition(" ")
        command = self.shell.commands.get(head)
        if command is None or command.raw:
            return
        try:
            words = split_line(rest)
        except CommandError:
            return  # inside an open quote: nothing sensible to offer
        current = "" if rest.endswith(" ") or not rest else words.pop()
        try:
            with completing(command, words):  # completers may read the words before
                candidates = list(self._candidates(command, words, current))
        except Exception:  # a plugin's completer failing must not break the prompt
            return
        for candidate in candidates:
            if candidate.startswith(current):
                yield Completion(candidate, start_position=-len(current))

    def _candidates(self, command: object, words: list[str], current: str) -> Iterable[str]:
        from .commands import Command

        assert isinstance(command, Command)
        options = {opt.name: opt for opt in command.options}
        # the word before the cursor may be an option that wants a value
        if words and words[-1] in options and not options[words[-1]].flag:
            opt = options[words[-1]]
            if opt.choices:
                return list(opt.choices)
            return list(opt.complete(self.shell, current)) if opt.complete else []
        used = {w.partition("=")[0] for w in words}  # "--from=plan" uses --from
        unused = [name for name in options if name not in used]
        if current.startswith("-"):
            return unused
        positional = [w for i, w in enumerate(words) if not self._is_option_part(words, i, options)]
        index = len(positional)
        args = list(command.args)
        choices: list[str] = []
        if index < len(args) or (args and args[-1].variadic):
            arg = args[min(index, len(args) - 1)]
            if arg.complete:
                choices = list(arg.complete(self.shell, current))
            elif arg.choices:
                choices = list(arg.choices)
        # the command could run as it stands (the next positional is optional, or there
        # is none): a single Tab must not commit to a positional ("/branches S prune")
        # when a flag is just as likely, so the options are offered alongside
        if all(not a.required for a in args[index:]):
            choices += [name for name in unused if name not in choices]
        return choices

    @staticmethod
    def _is_option_part(words: list[str], i: int, options: Mapping[str, object]) -> bool:
        if words[i].startswith("--"):
            return True
        prev = words[i - 1] if i else ""
        opt = options.get(prev)
        return opt is not None and not getattr(opt, "flag", True)


class _OneEntryPerLine(History):
    """A multi-line paste of commands runs line by line (see :func:`input_lines`), so
    each line is its own history entry, as if it had been typed; a multi-line message
    is one entry. Secrets are masked before an entry is kept: in the file, and in this
    session's Up-arrow recall, which is on screen."""

    def append_string(self, string: str) -> None:
        for line in input_lines(string):
            super().append_string(redact_history_line(line))


class RedactingHistory(_OneEntryPerLine, FileHistory):
    """File history that never writes a secret: values of ``/set-env`` for secret-looking
    names and anything that looks like a key or token are masked."""


class LineHistory(_OneEntryPerLine, InMemoryHistory):
    """The session's history when ``[shell] history = false``."""


def pasted_lines(text: str) -> list[str]:
    """The commands in what the prompt returned: a paste can hold several lines."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def input_lines(text: str) -> list[str]:
    """What to run for what the prompt returned. Several lines that do not start with
    ``/`` (a pasted paragraph, or lines joined with Esc-Enter) are ONE message, sent
    whole; a paste that starts with a command runs line by line, like a shell."""
    stripped = text.strip()
    if "\n" in stripped and not stripped.startswith("/"):
        return ["\n".join(line.rstrip() for line in stripped.splitlines())]
    return pasted_lines(text)


def newline_bindings() -> KeyBindings:
    """Esc-Enter (what Alt-Enter sends) inserts a newline: a message of several lines."""

    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return bindings


def redact_history_line(line: str) -> str:
    stripped = line.strip()
    if stripped.startswith("/set-env"):
        rest = stripped[len("/set-env") :]
        try:
            words = shlex.split(rest)
        except ValueError:  # unbalanced quotes: keep only the first name, mask the rest
            words = [rest.strip().partition("=")[0].strip(" \"'") + "=" + MASK]
        parts = []
        for word in words:
            name, eq, value = word.partition("=")
            if not eq:
                parts.append(MASK)
            elif value.strip() and SECRET_KEY_NAMES.search(name):
                parts.append(f"{name}={MASK}")  # an empty value stays empty (it unsets)
            else:  # DEMO_LATENCY_SCALE=1 is kept; a key-shaped value is still masked
                parts.append(f"{name}={shlex.quote(redact(value)) if value else ''}")
        return " ".join(["/set-env", *parts])
    return redact(line)


def early_settings(shell: Shell) -> tuple[str, bool, bool]:
    """``[shell]`` prompt, history and toolbar read straight from the files, so the first
    prompt can be drawn before plugins load and the configuration is validated."""
    from .configfiles import load_raw

    prompt, history, toolbar = "agentshell> ", True, True
    try:
        section = load_raw(environ=shell.environ, cwd=shell.cwd).data.get("shell", {})
    except Exception:  # reported properly when the shell starts
        return prompt, history, toolbar
    if isinstance(section, dict):
        prompt = section["prompt"] if isinstance(section.get("prompt"), str) else prompt
        history = section["history"] if isinstance(section.get("history"), bool) else history
        toolbar = section["toolbar"] if isinstance(section.get("toolbar"), bool) else toolbar
    return prompt, history, toolbar


async def repl(shell: Shell, *, start: bool = False) -> int:
    """The interactive session. Returns the exit status for ``sys.exit``.

    With ``start``, the shell is started here, right after the first prompt is drawn
    (an "instant prompt"): plugins load while the user starts typing. A line entered,
    or a completion asked for, before loading is done waits for it, so nothing typed
    early is lost or runs against a half-loaded shell.
    """
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    prompt, use_history, use_toolbar = early_settings(shell)
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    if not start:
        ready.set_result(None)

    history: History = LineHistory()
    if use_history:
        path = Path(shell.data_dir) / "history"
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            # commands can name hosts and files: the history is the user's alone
            path.touch(mode=0o600, exist_ok=True)
            path.chmod(0o600)
            history = RedactingHistory(str(path))

    def toolbar() -> str | None:
        if not ready.done():
            return " loading plugins… "
        if not shell.config.shell.toolbar:
            return None
        text = shell.status_text()
        return f" {text} " if text else None

    # a fresh install gets one hint, inside its first prompt (gone at the first key)
    first_run = _first_run(Path(shell.data_dir))
    completer = CommandCompleter(shell, ready)
    session: PromptSession[str] = PromptSession(
        lexer=CommandLexer(shell, ready),
        style=_style(shell),
        history=history,
        completer=completer,
        complete_while_typing=False,
        bottom_toolbar=toolbar if use_toolbar else None,
        enable_history_search=True,
    )
    from prompt_toolkit.key_binding import merge_key_bindings

    session.key_bindings = merge_key_bindings(
        [tab_bindings(completer, ready, KeyHold(session.app.key_processor)), newline_bindings()]
    )
    session.default_buffer.accept_handler = one_echo(session.default_buffer.accept_handler)

    failed: list[int] = []  # the exit status, once start-up has failed

    async def load() -> None:
        try:
            await shell.start()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            # A plugin's failure is isolated inside start() and the shell goes on
            # without it; what gets here left the shell half-started (perhaps before any
            # command was registered, when every line, /help and /quit included, would
            # be "unknown command"): say why and leave, at once.
            from .cli import start_failed

            failed.append(start_failed(shell, exc))
            shell.request_exit()
            if session.app.is_running:
                session.app.exit(exception=EOFError())  # out of the prompt being typed at
        finally:
            if not ready.done():
                ready.set_result(None)
            session.app.invalidate()

    loader: asyncio.Task[None] | None = None

    def after_first_render(_: object) -> None:
        nonlocal loader
        session.app.after_render -= after_first_render
        loader = loop.create_task(load())

    if start:
        session.app.after_render += after_first_render
    terminated = False
    try:
        while not shell.exit_requested:
            if ready.done():
                prompt = shell.config.shell.prompt
            try:
                # stdout goes through prompt_toolkit only while a prompt is drawn (so
                # that start-up messages land above it). Leaving the block joins the
                # proxy's writer thread: nothing it still holds can be written later,
                # from that thread, into the middle of the next prompt's render.
                with patch_stdout(raw=True):
                    # "" clears it: prompt_async keeps the last placeholder given
                    hint: StyleAndTextTuples | str = FIRST_RUN_HINT if first_run else ""
                    first_run = False
                    line = await session.prompt_async(prompt, placeholder=hint)
            except KeyboardInterrupt:
                continue  # Ctrl-C clears the line; it never leaves the shell
            except EOFError:
                break
            lines = input_lines(line)
            if not lines:
                continue
            # keys typed meanwhile are not echoed into the output; they wait in the
            # tty for the next prompt (see agentshell.terminal)
            with typeahead_hidden():
                await ready
                if failed:
                    break  # a line typed while loading must not run in a broken shell
                await run_lines(shell, lines)
        if ready.done():  # /quit or Ctrl-D (SIGTERM leaves through the except below)
            shell.output.info(shell.tally.summary(), style="dim")
    except asyncio.CancelledError:
        # SIGTERM (cli._terminable): stop loading plugins now rather than after a slow
        # shell_started hook; shell.stop() then closes whatever the start had opened
        terminated = True
        if loader is not None:
            loader.cancel()
        raise
    finally:
        if start and loader is None and not terminated:  # left before the first render:
            loader = loop.create_task(load())  # load, so that the shell stops cleanly
        if loader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await loader
    return failed[0] if failed else 0


FIRST_RUN_HINT: StyleAndTextTuples = [
    ("class:placeholder", "/help · Tab completes · Ctrl-D quits · type text to talk to an agent")
]


def _first_run(data_dir: Path) -> bool:
    """True once per data directory: the first REPL session of a fresh install."""
    marker = data_dir / "welcomed"
    if marker.exists():
        return False
    with contextlib.suppress(OSError):
        data_dir.mkdir(parents=True, exist_ok=True)
        marker.touch()
    return True


def _style(shell: Shell) -> Style:
    from prompt_toolkit.styles import Style

    # prompt_toolkit honours NO_COLOR itself; --color=never must too
    if not shell.output.colored():
        return Style([])
    return Style.from_dict(
        {
            "placeholder": "#888888 italic",
            "command": "ansicyan bold",
            "command.unknown": "ansired",
            "command.args": "",
        }
    )


class CommandLexer(Lexer):
    """Colours the command word as it is typed: known commands in one colour, an
    unknown one in another (case does not matter, as for running it)."""

    def __init__(self, shell: Shell, ready: asyncio.Future[None]) -> None:
        self.shell = shell
        self.ready = ready

    def lex_document(self, document: Document) -> Callable[[int], StyleAndTextTuples]:
        lines = document.lines

        def line(number: int) -> StyleAndTextTuples:
            text = lines[number] if number < len(lines) else ""
            stripped = text.lstrip()
            if not stripped.startswith("/") or not self.ready.done():
                return [("", text)]
            lead = text[: len(text) - len(stripped)]
            word, space, rest = stripped.partition(" ")
            known = len(word) > 1 and self.shell.commands.get(word) is not None
            # a word still being typed is only "unknown" once no command starts with it
            partial = not space and any(
                n.startswith(word[1:].lower()) for n in self.shell.commands.names()
            )
            style = "class:command" if known else "" if partial else "class:command.unknown"
            return [("", lead), (style, word), ("class:command.args", space + rest)]

        return line


def one_echo(accept: BufferAcceptHandler | None) -> BufferAcceptHandler:
    """Wraps the prompt's accept handler so that each accepted line shows once.

    prompt_toolkit leaves the accepted text drawn as it was typed. A paste of several
    commands then stays on screen as a block above the ``» line`` echo each of its lines
    gets when it runs (:func:`run_lines`): that prompt is left empty instead. A single
    command with stray newlines around it is left as that one line, no blank rows. A
    message of several lines is one entry: it stays drawn as typed.
    The history still gets every line (one entry each, see ``_OneEntryPerLine``).
    """

    def handler(buffer: Buffer) -> bool:
        lines = input_lines(buffer.text)
        keep = accept(buffer) if accept is not None else False
        if len(lines) > 1:
            return False  # the buffer is reset before the final render: prompt only
        if keep and lines and "\n" in buffer.text and "\n" not in lines[0]:
            # set after the result was taken: only the final render sees it
            buffer.set_document(Document(lines[0], len(lines[0])), bypass_readonly=True)
        return keep

    return handler


async def run_lines(shell: Shell, lines: list[str]) -> None:
    """Run the lines of one prompt (several after a multi-line paste) one by one, like
    a shell: each is its own command, never the arguments of the one before. Ctrl-C
    cancels the running one and drops the rest."""
    from .cli import EXIT_INTERRUPTED

    for index, line in enumerate(lines):
        if len(lines) > 1:
            shell.output.print(f"» {line}")
        shell.tally.commands += 1
        async with live_status(shell, line):
            code = await run_command(shell, line)
        rest = lines[index + 1 :]
        if code == EXIT_INTERRUPTED and rest and not shell.exit_requested:
            noun = "line" if len(rest) == 1 else "lines"
            shown = ", ".join(r.split()[0] for r in rest[:5])
            more = f" and {len(rest) - 5} more" if len(rest) > 5 else ""
            shell.output.info(f"skipped {len(rest)} pasted {noun}: {shown}{more}")
            return
        if shell.exit_requested:
            return


__all__ = [
    "CommandCompleter",
    "LineHistory",
    "RedactingHistory",
    "early_settings",
    "input_lines",
    "newline_bindings",
    "one_echo",
    "pasted_lines",
    "redact_history_line",
    "repl",
    "run_lines",
]
