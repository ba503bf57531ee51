"""Slash commands: declaration, the registry, argument parsing and completion.

A command declares its positional arguments and options; the registry parses a line
into :class:`ParsedArgs` with clear one-line errors, and the same declarations drive
tab completion (each argument or option may name a completer).
"""

from __future__ import annotations

import contextlib
import difflib
import shlex
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import CommandError

if TYPE_CHECKING:
    from .shell import Shell

#: a completer gets the shell and the text typed so far for this word
Completer = Callable[["Shell", str], Iterable[str]]


@dataclass(frozen=True)
class Arg:
    """A positional argument."""

    name: str
    help: str = ""
    required: bool = True
    variadic: bool = False  # takes every remaining positional word
    complete: Completer | None = None
    choices: Sequence[str] | None = None
    metavar: str = ""  # the placeholder's word; default: the name, "spec_id" -> SPEC-ID

    @property
    def placeholder(self) -> str:
        """``<SPEC-ID>``: the one spelling of this argument in usage, help and errors."""
        return f"<{self.metavar or placeholder_word(self.name)}>"


def placeholder_word(name: str) -> str:
    return name.strip("<>").upper().replace("_", "-")


@dataclass(frozen=True)
class Option:
    """An option: ``--name VALUE`` (or ``--name=VALUE``), or a flag when ``flag``."""

    name: str  # with the dashes: "--from"
    help: str = ""
    flag: bool = False
    metavar: str = "VALUE"
    complete: Completer | None = None
    choices: Sequence[str] | None = None
    default: Any = None
    # given twice is an error unless repeatable (then the parser keeps the last value
    # and the handler reads every one from ctx.line)
    repeatable: bool = False

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")

    @property
    def label(self) -> str:
        """``--from <STAGE>`` (or just ``--force`` for a flag)."""
        return self.name if self.flag else f"{self.name} <{placeholder_word(self.metavar)}>"


@dataclass
class ParsedArgs:
    """Parsed arguments: attribute or item access by argument/option name."""

    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name)
        return default if value is None else value


@dataclass
class CommandContext:
    """What a command handler receives."""

    shell: Shell
    args: ParsedArgs
    line: str
    command: Command

    @property
    def out(self) -> Any:
        return self.shell.output


#: a handler returns an exit status (``None`` means 0) and may be async
Handler = Callable[[CommandContext], "int | Awaitable[int | None] | None"]


@dataclass
class Command:
    """A slash command. ``name`` is given without the slash."""

    name: str
    handler: Handler
    help: str = ""
    args: Sequence[Arg] = ()
    options: Sequence[Option] = ()
    aliases: Sequence[str] = ()
    description: str = ""  # longer text for /help <command>
    raw: bool = False  # pass the line unparsed as args.rest (for /set-env and friends)
    plugin: str = ""  # filled in by the registry

    @property
    def usage(self) -> str:
        parts = [f"/{self.name}"]
        for arg in self.args:
            label = arg.placeholder + ("..." if arg.variadic else "")
            parts.append(label if arg.required else f"[{label}]")
        for opt in self.options:
            parts.append(f"[{opt.label}]")
        return " ".join(parts)

    def parse(self, words: Sequence[str]) -> ParsedArgs:
        # every usage error ends with ``self.usage``: a subclass's own grammar line, so a
        # command never shows two different usage lines
        values: dict[str, Any] = {arg.name: None for arg in self.args}
        for opt in self.options:
            values[opt.dest] = False if opt.flag else opt.default
        by_name = {opt.name: opt for opt in self.options}
        positional: list[str] = []
        given: set[str] = set()
        i = 0
        while i < len(words):
            word = words[i]
            if word == "--":
                positional.extend(words[i + 1 :])
                break
            if word.startswith("--") and len(word) > 2:
                name, eq, inline = word.partition("=")
                found = by_name.get(name)
                if found is None:
                    guess = difflib.get_close_matches(name, list(by_name), n=1)
                    hint = f" (did you mean {guess[0]}?)" if guess else ""
                    raise CommandError(
                        f"/{self.name}: unknown option {name}{hint}; usage: {self.usage}"
                    )
                opt = found
                # a repeated option is a mistake, not "the last one wins"
                if opt.dest in given and not opt.repeatable:
                    raise CommandError(f"/{self.name}: {name} given twice; usage: {self.usage}")
                given.add(opt.dest)
                if opt.flag:
                    if eq:
                        raise CommandError(
                            f"/{self.name}: {name} takes no value; usage: {self.usage}"
                        )
                    values[opt.dest] = True
                else:
                    if eq:
                        value = inline
                    elif i + 1 < len(words):
                        i += 1
                        value = words[i]
                    else:
                        raise CommandError(
                            f"/{self.name}: {name} needs {opt.label.split(' ', 1)[1]}; "
                            f"usage: {self.usage}"
                        )
                    if opt.choices and value not in opt.choices:
                        raise CommandError(
                            f"/{self.name}: {name} must be one of {', '.join(opt.choices)}; "
                            f"usage: {self.usage}"
                        )
                    values[opt.dest] = value
            else:
                positional.append(word)
            i += 1
        for arg in self.args:
            if arg.variadic:
                values[arg.name] = positional
                positional = []
                continue
            if positional:
                value = positional.pop(0)
                if arg.choices and value not in arg.choices:
                    raise CommandError(
                        f"/{self.name}: {arg.placeholder} must be one of {', '.join(arg.choices)}; "
                        f"usage: {self.usage}"
                    )
                values[arg.name] = value
            elif arg.required:
                raise CommandError(f"/{self.name}: missing {arg.placeholder}; usage: {self.usage}")
        if positional:
            raise CommandError(
                f"/{self.name}: unexpected argument {positional[0]!r}; usage: {self.usage}"
            )
        return ParsedArgs(values)


@dataclass(frozen=True)
class CompletionContext:
    """What is typed before the word being completed: a completer whose choices depend
    on an earlier argument (a spec's branch ids after its spec id) reads it with
    :func:`completion_context` while the REPL calls it."""

    command: Command
    words: tuple[str, ...]  # after the command name, the word being completed left out

    @property
    def positional(self) -> list[str]:
        """The positional words so far: options and their values left out, as parsed."""
        valued = {opt.name for opt in self.command.options if not opt.flag}
        out: list[str] = []
        skip = False
        for word in self.words:
            if skip:
                skip = False
            elif word.startswith("--") and len(word) > 2:
                skip = word in valued  # "--from=plan" carries its value inline
            else:
                out.append(word)
        return out


# a context variable, not a third completer parameter: every (shell, text) completer
# already declared keeps working, and only the completers that need it look
_COMPLETING: ContextVar[CompletionContext | None] = ContextVar("completing", default=None)


def completion_context() -> CompletionContext | None:
    """The line being completed, inside a completer called by the REPL (else None)."""
    return _COMPLETING.get()


@contextlib.contextmanager
def completing(command: Command, words: Sequence[str]) -> Iterator[None]:
    """Make ``command`` and ``words`` the :func:`completion_context` of this block."""
    token = _COMPLETING.set(CompletionContext(command, tuple(words)))
    try:
        yield
    finally:
        _COMPLETING.reset(token)


def split_line(line: str) -> list[str]:
    """Split a command line like a POSIX shell; an unclosed quote is a clear error."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise CommandError(f"cannot parse the line: {exc}") from None


# words people type to leave or get help in any shell: pointed at the command instead
_BARE_WORDS = {
    "exit": "/quit",
    "quit": "/quit",
    "q": "/quit",
    "bye": "/quit",
    "help": "/help",
    "?": "/help",
    "h": "/help",
}


def bare_word_hint(text: str) -> str | None:
    """What a bare ``exit``/``quit``/``help`` typed without the slash meant: a hint at
    the command, given instead of treating the word as text (a chat message)."""
    meant = _BARE_WORDS.get(text.strip().lower().rstrip("!"))
    if meant == "/quit":
        return "to leave, type /quit (or press Ctrl-D on an empty line)"
    if meant == "/help":
        return "type /help for the list of commands (commands start with '/')"
    return None


#: plain text when no plugin takes it (the handle_text hook): how to get one
NO_CHAT = (
    "plain text goes to a chat agent, and none is installed: "
    "agentshell install agentshell-chat (commands start with '/'; type /help for the list)"
)


def _not_a_command(text: str) -> str:
    return bare_word_hint(text) or NO_CHAT


class CommandRegistry:
    """Commands by name (and alias), with the plugin that registered each."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}
        self._aliases: dict[str, str] = {}
        self.clashes: list[str] = []
        # explains an unknown name better than a guess (a disabled plugin's command)
        self.unknown_hint: Callable[[str], str | None] | None = None
        # replaces "type /help for the list" when commands may be missing for a reason
        # the user should know (plugins disabled or failed: "see /plugins")
        self.unknown_note: Callable[[], str | None] | None = None

    def add(self, command: Command, plugin: str = "") -> bool:
        """Register ``command``; on a name clash keep the first and record the clash."""
        name = command.name.lstrip("/")
        command.name = name
        command.plugin = command.plugin or plugin
        for key in (name, *command.aliases):
            owner = self._commands.get(key) or self._commands.get(self._aliases.get(key, ""))
            if owner is not None:
                self.clashes.append(
                    f"/{key} from plugin {plugin or '?'} clashes with /{owner.name} "
                    f"from plugin {owner.plugin or '?'} (kept the latter)"
                )
                return False
        self._commands[name] = command
        for alias in command.aliases:
            self._aliases[alias] = name
        return True

    def remove_plugin(self, plugin: str) -> None:
        for name in [n for n, c in self._commands.items() if c.plugin == plugin]:
            command = self._commands.pop(name)
            for alias in command.aliases:
                self._aliases.pop(alias, None)

    def get(self, name: str) -> Command | None:
        """The command called ``name`` or an alias of it; case does not matter."""
        name = name.lstrip("/")
        for key in (name, name.lower()):
            found = self._commands.get(key) or self._commands.get(self._aliases.get(key, ""))
            if found is not None:
                return found
        return None

    def aliases(self) -> dict[str, str]:
        """Alias -> the command's name."""
        return dict(self._aliases)

    def names(self) -> list[str]:
        return sorted(self._commands)

    def all(self) -> list[Command]:
        return [self._commands[n] for n in self.names()]

    def suggest(self, name: str) -> list[str]:
        candidates = list(self._commands) + list(self._aliases)
        # 0.7: "/hlep" still finds /help, but "/bogus" no longer suggests /logout
        return difflib.get_close_matches(name.lstrip("/"), candidates, n=3, cutoff=0.7)

    def resolve(self, line: str) -> tuple[Command, ParsedArgs]:
        """Parse a full ``/command args...`` line."""
        text = line.strip()
        if not text.startswith("/"):
            raise CommandError(_not_a_command(text))
        head, _, rest = text[1:].partition(" ")
        command = self.get(head)
        if command is None:
            why = self.unknown_hint(head) if self.unknown_hint is not None else None
            if why:
                raise CommandError(f"unknown command /{head}: {why}")
            guesses = self.suggest(head)
            hint = f" — did you mean {', '.join('/' + g for g in guesses)}?" if guesses else ""
            note = self.unknown_note() if self.unknown_note is not None else None
            note = note or "type /help for the list"
            raise CommandError(f"unknown command /{head}{hint} ({note})")
        if command.raw:
            return command, ParsedArgs({"rest": rest.strip()})
        return command, command.parse(split_line(rest))


__all__ = [
    "NO_CHAT",
    "Arg",
    "Command",
    "CommandContext",
    "CommandRegistry",
    "Completer",
    "CompletionContext",
    "Handler",
    "Option",
    "ParsedArgs",
    "bare_word_hint",
    "completing",
    "completion_context",
    "split_line",
]
