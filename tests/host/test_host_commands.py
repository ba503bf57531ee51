"""Command parsing, completion (real prompt_toolkit documents), history redaction, the
built-in commands, /help's layout, and command failures as one plain line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from agentshell.commands import Arg, Command, CommandContext, CommandRegistry, Option, split_line
from agentshell.errors import CommandError
from agentshell.plugins import hookimpl
from agentshell.redact import register_secret
from agentshell.repl import CommandCompleter, RedactingHistory, redact_history_line
from tests.conftest import CapturedOutput

STAGES = ("plan", "tasks", "implement")


def _spec_ids(shell: Any, prefix: str) -> list[str]:
    return ["SPEC-KIT-DEMO", "SPEC-KIT-001", "OTHER-1"]


def make_deploy() -> Command:
    return Command(
        "deploy",
        lambda ctx: 0,
        help="deploy a spec",
        args=[Arg("spec", "spec id", complete=_spec_ids), Arg("goal", "goal", required=False)],
        options=[
            Option("--from", "first stage", choices=STAGES, metavar="STAGE"),
            Option("--dry-run", "do nothing", flag=True),
            Option("--note", "a note"),
        ],
    )


DEPLOY = make_deploy()


def parse(line: str) -> dict[str, Any]:
    return DEPLOY.parse(split_line(line)).values


def test_positional_options_and_flags() -> None:
    assert parse("SPEC-1") == {
        "spec": "SPEC-1",
        "goal": None,
        "from": None,
        "dry_run": False,
        "note": None,
    }
    values = parse('SPEC-1 "ship it now" --from tasks --dry-run --note=a=b')
    assert values == {
        "spec": "SPEC-1",
        "goal": "ship it now",
        "from": "tasks",
        "dry_run": True,
        "note": "a=b",
    }
    assert parse("--from=plan SPEC-2")["from"] == "plan"
    assert parse("SPEC-3 -- --not-an-option")["goal"] == "--not-an-option"
    assert parse("'SPEC 4'")["spec"] == "SPEC 4"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "",
            "/deploy: missing <SPEC>; usage: /deploy <SPEC> [<GOAL>] [--from <STAGE>] [--dry-run]"
            " [--note <VALUE>]",
        ),
        ("A B C", "/deploy: unexpected argument 'C'; usage: /deploy"),
        ("A --form plan", "/deploy: unknown option --form (did you mean --from?)"),
        ("A --from", "/deploy: --from needs <STAGE>"),
        ("A --from deploy", "/deploy: --from must be one of plan, tasks, implement"),
        ("A --dry-run=yes", "/deploy: --dry-run takes no value"),
        ('A "unclosed', "cannot parse the line: No closing quotation"),
    ],
)
def test_parse_errors_are_one_clear_line(line: str, message: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse(line)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_variadic_and_choices() -> None:
    cmd = Command(
        "x",
        lambda ctx: 0,
        args=[Arg("mode", choices=("a", "b")), Arg("rest", variadic=True, required=False)],
    )
    assert cmd.parse(["a", "1", "2"]).values == {"mode": "a", "rest": ["1", "2"]}
    with pytest.raises(CommandError, match="<MODE> must be one of a, b"):
        cmd.parse(["c"])


def test_registry_unknown_command_suggests() -> None:
    registry = CommandRegistry()
    registry.add(make_deploy(), "p")
    registry.add(Command("status", lambda ctx: 0, aliases=("st",)), "p")
    with pytest.raises(CommandError) as caught:
        registry.resolve("/deplyo SPEC")
    assert (
        str(caught.value)
        == "unknown command /deplyo — did you mean /deploy? (type /help for the list)"
    )
    with pytest.raises(CommandError, match="commands start with '/'"):
        registry.resolve("deploy")
    assert registry.resolve("/st")[0].name == "status"
    with pytest.raises(CommandError, match="unknown command /zzzzzz \\(type /help"):
        registry.resolve("/zzzzzz")


# -- completion --------------------------------------------------------------------


class DeployPlugin:
    __name__ = "deploy-plugin"

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register(make_deploy())  # a fresh one: the registry records its plugin


def complete(shell: Any, text: str) -> list[str]:
    completer = CommandCompleter(shell)
    doc = Document(text, cursor_position=len(text))
    return [
        c.text for c in completer.get_completions(doc, CompleteEvent(completion_requested=True))
    ]


async def test_completion_of_commands_args_and_option_values(make_shell: Any) -> None:
    shell = await make_shell(plugins=[DeployPlugin()])
    assert complete(shell, "/he") == ["/help"]
    assert complete(shell, "/de") == ["/deploy"]
    assert set(complete(shell, "/")) >= {
        "/help",
        "/plugins",
        "/config",
        "/set-env",
        "/quit",
        "/deploy",
    }
    assert complete(shell, "/deploy SPEC-K") == ["SPEC-KIT-DEMO", "SPEC-KIT-001"]
    assert complete(shell, "/deploy ") == ["SPEC-KIT-DEMO", "SPEC-KIT-001", "OTHER-1"]
    assert complete(shell, "/deploy SPEC-1 --from ") == list(STAGES)
    assert complete(shell, "/deploy SPEC-1 --from im") == ["implement"]
    assert complete(shell, "/deploy SPEC-1 --d") == ["--dry-run"]
    assert sorted(complete(shell, "/deploy --dry-run --")) == ["--from", "--note"]
    assert complete(shell, "/help conf") == ["config"]  # /conversations is installed too
    assert complete(shell, "/config re") == ["reload"]
    assert complete(shell, "not a command") == []
    assert complete(shell, '/deploy "unclosed') == []
    assert complete(shell, "/nosuch x") == []


async def test_completion_positions_replace_the_current_word(make_shell: Any) -> None:
    shell = await make_shell(plugins=[DeployPlugin()])
    completer = CommandCompleter(shell)
    doc = Document("/deploy SPEC-K", cursor_position=14)
    first = next(iter(completer.get_completions(doc, CompleteEvent(completion_requested=True))))
    assert first.start_position == -len("SPEC-K")
    new = doc.text[: len(doc.text) + first.start_position] + first.text
    assert new == "/deploy SPEC-KIT-DEMO"


# -- history -----------------------------------------------------------------------


def test_history_never_stores_secrets(tmp_path: Path) -> None:
    path = tmp_path / "history"
    register_secret("registered-secret-value-7")
    history = RedactingHistory(str(path))
    history.append_string("/set-env OPENAI_API_KEY=sk-proj-abcdefghijklmnop")
    history.append_string("/set-env   PASSWORD=hunter2hunter2")
    history.append_string("/ask please use registered-secret-value-7 here")
    history.append_string("/agents --json")
    raw = path.read_text(encoding="utf-8")
    assert "sk-proj" not in raw
    assert "hunter2" not in raw
    assert "registered-secret-value-7" not in raw
    assert "/set-env OPENAI_API_KEY=****" in raw
    assert "/agents --json" in raw
    # and what comes back from the file (the next session's up-arrow) is the redacted form
    reloaded = list(RedactingHistory(str(path)).load_history_strings())
    assert "/set-env OPENAI_API_KEY=****" in reloaded
    assert "/ask please use **** here" in reloaded


# -- built-in commands -------------------------------------------------------------


async def test_help_lists_and_describes(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(plugins=[DeployPlugin()])
    assert await shell.execute("/help") == 0
    for name in ("/help", "/plugins", "/config", "/set-env", "/quit", "/deploy"):
        assert name in output.text
    assert await shell.execute("/help deploy") == 0
    assert (
        "usage: /deploy <SPEC> [<GOAL>] [--from <STAGE>] [--dry-run] [--note <VALUE>]"
        in output.text
    )
    assert "(from plugin deploy-plugin)" in output.text
    assert await shell.execute("/help deplyo") == 1
    assert "no command /deplyo — did you mean /deploy?" in output.errors


async def test_unknown_command_did_you_mean(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell()
    assert await shell.execute("/plgins") == 1
    assert "unknown command /plgins — did you mean /plugins" in output.errors


async def test_plugins_table_and_json(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell()
    assert await shell.execute("/plugins") == 0
    assert "builtins" in output.text and "loaded" in output.text
    start = len(output.text)
    assert await shell.execute("/plugins --json") == 0
    listed = json.loads(output.text[start:])
    builtins = next(item for item in listed if item["name"] == "builtins")
    assert set(builtins) == {
        "name",
        "module",
        "version",
        "distribution",
        "hooks",
        "state",
        "reason",
        "builtin",
    }
    assert builtins["state"] == "loaded"


async def test_config_command_shows_sources(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(config="[retry]\nattempts = 7\n")
    assert await shell.execute("/config") == 0
    assert "attempts = 7" in output.text
    assert "# sources (lowest precedence first): defaults, ./agentshell.toml" in output.text
    assert await shell.execute("/config path") == 0
    assert "project: " in output.text
    Path("agentshell.toml").write_text("[retry]\nattempts = 9\n", encoding="utf-8")  # noqa: ASYNC240
    assert await shell.execute("/config reload") == 0
    assert shell.config.retry.attempts == 9
    assert await shell.execute("/config bogus") == 1
    assert "<ACTION> must be one of show, reload, path" in output.errors


async def test_set_env_affects_the_session(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENTSHELL_TEST_VAR", raising=False)
    shell = await make_shell()
    try:
        assert await shell.execute("/set-env AGENTSHELL_TEST_VAR=sk-test-1234567890abc") == 0
        assert os.environ["AGENTSHELL_TEST_VAR"] == "sk-test-1234567890abc"
        assert "sk-test" not in output.text
        shell.output.print("echo sk-test-1234567890abc")  # now a registered secret
        assert "echo ****" in output.text
        assert await shell.execute("/set-env 9BAD=x") == 1
        assert "invalid variable name '9BAD'" in output.errors
        assert await shell.execute("/set-env NOVALUE") == 1
        assert "usage: /set-env NAME=VALUE" in output.errors
    finally:
        os.environ.pop("AGENTSHELL_TEST_VAR", None)


async def test_quit_requests_exit(make_shell: Any) -> None:
    shell = await make_shell()
    assert not shell.exit_requested
    assert await shell.execute("/quit") == 0
    assert shell.exit_requested


async def test_handler_exception_is_one_line(make_shell: Any, output: CapturedOutput) -> None:
    class Crashy:
        __name__ = "crashy"

        @hookimpl
        def register_commands(self, register: Any) -> None:
            def boom(ctx: Any) -> int:
                raise ZeroDivisionError("division by zero")

            register(Command("boom", boom))

    shell = await make_shell(plugins=[Crashy()])
    assert await shell.execute("/boom") == 1
    assert (
        "error: /boom failed: ZeroDivisionError: division by zero at test_host_commands.py:"
        in output.errors
    )
    assert "Traceback" not in output.errors


def test_history_masks_set_env_values_of_secret_names_only() -> None:
    # quoted forms are parsed like the command parses them; a secret-looking name's value
    # is masked, any other value is kept (quoted so that the line replays as typed)
    assert redact_history_line('/set-env "DB_PASSWORD=hunter2 pass"') == "/set-env DB_PASSWORD=****"
    assert redact_history_line('/set-env "OTHER=hunter2 pass"') == "/set-env OTHER='hunter2 pass'"
    assert redact_history_line("/set-env MY_KEY='sk-live-abc'") == "/set-env MY_KEY=****"
    assert redact_history_line("/set-env A=") == "/set-env A="
    assert redact_history_line("/set-env A=''") == "/set-env A="
    assert redact_history_line("/set-env DEMO_LATENCY_SCALE=1 B=2") == (
        "/set-env DEMO_LATENCY_SCALE=1 B=2"
    )
    # a value shaped like a key is masked whatever the name
    assert "sk-abcdefghijklmnop1234" not in redact_history_line(
        "/set-env FOO=sk-abcdefghijklmnop1234"
    )
    unbalanced = redact_history_line("/set-env K='hunter2 pass")
    assert "hunter2" not in unbalanced and unbalanced.startswith("/set-env K=")


async def test_set_env_refuses_the_history_mask(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_MASK_KEY", "real-value")
    shell = await make_shell()
    # Up-arrow recalls "/set-env QA_MASK_KEY=****": setting that would lose the real key
    assert await shell.execute("/set-env QA_MASK_KEY=****") == 1
    assert "masked placeholder from history; type the real value" in output.errors
    assert os.environ["QA_MASK_KEY"] == "real-value"


async def test_set_env_uses_shell_quoting(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("QA_Q1", "QA_Q2", "QA_A", "QA_B"):
        monkeypatch.delenv(name, raising=False)
    shell = await make_shell()
    assert await shell.execute("/set-env QA_Q1='K'") == 0
    assert os.environ["QA_Q1"] == "K"
    assert await shell.execute('/set-env "QA_Q2=hunter2 pass"') == 0
    assert os.environ["QA_Q2"] == "hunter2 pass"
    assert await shell.execute("/set-env QA_A=1 QA_B=2") == 1
    assert "one NAME=VALUE per /set-env" in output.errors
    assert "QA_A" not in os.environ and "QA_B" not in os.environ
    assert await shell.execute("/set-env QA_A='unbalanced") == 1
    assert "QA_A" not in os.environ


def test_tables_off_a_terminal_honour_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from agentshell.output import Output

    long = "a long description " * 10  # 190 characters

    def render() -> list[str]:
        stream = io.StringIO()  # not a terminal
        Output(stream=stream).table(["command", "what it does"], [("/x", long)])
        return stream.getvalue().splitlines()

    monkeypatch.delenv("COLUMNS", raising=False)
    full = render()
    assert any(long.strip() in line for line in full)  # full width: one line, nothing cut
    monkeypatch.setenv("COLUMNS", "60")
    narrow = render()
    assert max(len(line) for line in narrow) <= 60
    assert "".join(narrow).count("description") == 10  # wrapped, not cut
    monkeypatch.setenv("COLUMNS", "junk")
    assert render() == full


class Failing:
    @hookimpl
    def register_commands(self, register: Any) -> None:
        def oserror(ctx: CommandContext) -> int:
            with open("/proc/nope/t.jsonl", "w"):  # a real OSError from the OS
                return 0

        def bug(ctx: CommandContext) -> int:
            table: dict[str, int] = {}
            return table["missing"]

        register(Command("write", oserror, help="writes where it cannot"))
        register(Command("bug", bug, help="has a bug"))


async def test_oserror_is_one_plain_line(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(plugins=[Failing()])
    assert await shell.execute("/write") == 1
    assert output.errors.strip() == "error: /write: No such file or directory: /proc/nope/t.jsonl"


async def test_unexpected_exception_says_it_is_a_bug(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(plugins=[Failing()])
    assert await shell.execute("/bug") == 1
    assert "error: /bug failed: KeyError" in output.errors
    assert "(a bug: run with AGENTSHELL_DEBUG=1 for the traceback)" in output.errors


def _noop(ctx: CommandContext) -> int:
    return 0


class Documented:
    @hookimpl
    def register_commands(self, register: Any) -> None:
        register(
            Command(
                "doc",
                _noop,
                help="uses ``markup`` in help",
                options=[
                    Option("--x", "short one", flag=True),
                    Option("--a-long-option", "set ``path`` here", metavar="PATH"),
                ],
            )
        )


async def test_help_aligns_options_and_strips_rst(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(plugins=[Documented()])
    assert await shell.execute("/help doc") == 0
    text = output.text
    assert "``" not in text
    assert "uses markup in help" in text
    lines = [line for line in text.splitlines() if "short one" in line or "set path" in line]
    assert len(lines) == 2
    assert lines[0].index("short one") == lines[1].index("set path here")


async def test_set_env_with_empty_value_unsets(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMP_SESSION_VAR", "1")
    shell = await make_shell()
    assert await shell.execute("/set-env TEMP_SESSION_VAR=") == 0
    assert "TEMP_SESSION_VAR" not in os.environ
    assert "TEMP_SESSION_VAR unset for this session" in output.text
    path = os.environ["PATH"]
    assert await shell.execute("/set-env PATH=") == 1
    assert "refusing to unset PATH" in output.errors
    assert os.environ["PATH"] == path
