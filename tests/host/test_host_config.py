"""Configuration: precedence, clear errors for bad files and values (naming file, line
and key), warnings for unknown setting and plugin names, homes and config files of the
wrong kind, credentials (auth providers, empty references, keyring, literal secrets),
and /config output that is valid TOML with secrets masked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from agentshell.config import Secret
from agentshell.errors import ConfigError
from agentshell.plugins import hookimpl
from tests.conftest import CapturedOutput
from tests.helpers.cli import child_env


def user_file(text: str) -> Path:
    path = Path(os.environ["AGENTSHELL_HOME"]) / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_precedence_user_then_project_then_env(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_file('[shell]\nprompt = "user> "\n\n[retry]\nattempts = 2\nbase_delay_s = 0.1\n')
    shell = await make_shell(config="[retry]\nattempts = 3\n")
    assert shell.config.shell.prompt == "user> "  # only the user file sets it
    assert shell.config.retry.attempts == 3  # project beats user
    assert shell.config.retry.base_delay_s == 0.1  # tables merge key by key

    monkeypatch.setenv("AGENTSHELL_RETRY__ATTEMPTS", "5")
    monkeypatch.setenv("AGENTSHELL_TELEMETRY_SINKS", "null")
    shell = await make_shell()
    assert shell.config.retry.attempts == 5  # environment beats both files
    assert shell.config.telemetry.sinks == ["null"]
    assert shell.config.shell.prompt == "user> "


async def test_bad_toml_is_one_message_with_file_and_line(make_shell: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config='[shell]\nprompt = "ok"\nhistory = tru\n')
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("./agentshell.toml: line 3, column 11: invalid TOML")


async def test_bad_toml_in_the_repl_starts_with_defaults(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(config="[retry\nattempts = 2\n", mode="repl")
    assert shell.started
    assert shell.config.retry.attempts == 4  # the default
    assert "error: ./agentshell.toml: line 1" in output.errors  # as `run` prints it
    assert "config:" not in output.errors
    assert await shell.execute("/help") == 0


async def test_wrong_type_names_file_key_and_line(make_shell: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config='[shell]\nprompt = "> "\n\n[retry]\nattempts = "many"\n')
    message = str(caught.value)
    assert message.startswith("./agentshell.toml:5: retry.attempts: ")
    assert "'many'" in message


async def test_wrong_type_in_user_file_names_that_file(make_shell: Any) -> None:
    path = user_file("[shell]\nhistory = 3.5\n")
    with pytest.raises(ConfigError) as caught:
        await make_shell()
    assert str(caught.value).startswith(f"{path}:2: shell.history: ")


async def test_unknown_key_suggests_the_right_one(make_shell: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config="[retry]\nattempst = 3\n")
    assert str(caught.value) == (
        "./agentshell.toml:2: retry.attempst: unknown key (did you mean 'attempts'?)"
    )


async def test_unknown_top_level_section(make_shell: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config="[shel]\nprompt = 'x'\n")
    assert "./agentshell.toml:1: unknown section 'shel' (did you mean 'shell'?)" in str(
        caught.value
    )


async def test_misspelt_env_section_names_the_variable(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_RETRYY__ATTEMPTS", "3")
    with pytest.raises(ConfigError) as caught:
        await make_shell()
    assert str(caught.value) == (
        "environment variable AGENTSHELL_RETRYY__ATTEMPTS: "
        "unknown section 'retryy' (did you mean 'retry'?)"
    )


async def test_bad_env_value_names_the_variable(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_RETRY__ATTEMPTS", "lots")
    with pytest.raises(ConfigError) as caught:
        await make_shell()
    message = str(caught.value)
    assert message.startswith("environment variable AGENTSHELL_RETRY__ATTEMPTS: retry.attempts:")


async def test_secret_indirection_and_redaction_in_config_command(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_AGENT_KEY", "sk-live-0123456789abcdef")
    shell = await make_shell(
        config=(
            "[agents.alpha]\n"
            'backend = "openai"\n'
            'api_key = { env = "MY_AGENT_KEY" }\n'
            "\n[agents.beta]\n"
            'backend = "openai"\n'
            'api_key = "literal-secret-value-42"\n'
        )
    )
    alpha = shell.config.agents["alpha"].api_key
    assert isinstance(alpha, Secret)
    assert alpha.get() == "sk-live-0123456789abcdef"
    assert "sk-live" not in repr(alpha) and "sk-live" not in str(alpha)
    # the reference follows the environment, so /set-env takes effect
    monkeypatch.setenv("MY_AGENT_KEY", "sk-rotated-9876543210")
    assert alpha.get() == "sk-rotated-9876543210"

    assert await shell.execute("/config") == 0
    assert 'api_key = { env = "MY_AGENT_KEY" }' in output.text
    assert "literal-secret-value-42" not in output.text
    assert "sk-live" not in output.text and "sk-rotated" not in output.text
    assert await shell.execute("/config --json") == 0
    assert "literal-secret-value-42" not in output.text
    assert '"env": "MY_AGENT_KEY"' in output.text


async def test_bad_secret_reference(make_shell: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config='[agents.a]\napi_key = { vault = "x" }\n')
    assert str(caught.value).startswith("./agentshell.toml:2: agents.a.api_key:")


class Greeter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    greeting: str = "hello"
    times: int = 1


class GreeterPlugin:
    __name__ = "greeter"

    @hookimpl
    def register_config(self, register: Any) -> None:
        register("greeter", Greeter)


async def test_plugin_section_is_validated_against_its_model(make_shell: Any) -> None:
    shell = await make_shell(
        plugins=[GreeterPlugin()], config='[plugins.greeter]\ngreeting = "hi"\n'
    )
    section = shell.plugin_config("greeter")
    assert isinstance(section, Greeter)
    assert (section.greeting, section.times) == ("hi", 1)


async def test_plugin_section_defaults_when_missing(make_shell: Any) -> None:
    shell = await make_shell(plugins=[GreeterPlugin()])
    assert shell.plugin_config("greeter") == Greeter()


async def test_plugin_section_errors_name_file_key_and_line(make_shell: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(
            plugins=[GreeterPlugin()], config='[plugins.greeter]\ngreeting = "hi"\ntimes = "x"\n'
        )
    assert str(caught.value).startswith("./agentshell.toml:3: plugins.greeter.times:")
    with pytest.raises(ConfigError) as caught:
        await make_shell(plugins=[GreeterPlugin()], config="[plugins.greeter]\ngreting = 'x'\n")
    assert "plugins.greeter.greting: unknown key" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[retry\n", "agentshell.toml: line 1"),
        ("[retry]\nattempts = 0\n", "./agentshell.toml:2: retry.attempts:"),
        ('[telemetry]\nsinks = "jsonl"\n', "./agentshell.toml:2: telemetry.sinks:"),
    ],
)
def test_cli_reports_bad_config_without_a_traceback(
    tmp_path: Path, text: str, expected: str
) -> None:
    work = tmp_path / "proj"
    work.mkdir()
    (work / "agentshell.toml").write_text(text, encoding="utf-8")
    env = child_env(tmp_path / "home", sinks=None)
    done = subprocess.run(
        [sys.executable, "-m", "agentshell", "run", "/help"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert expected in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.startswith("error:")]) == 1


async def test_unknown_sink_names_file_line_and_key(make_shell: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config='[telemetry]\nsinks = ["nope"]\n', mode="run")
    assert str(caught.value).startswith(
        "./agentshell.toml:2: telemetry.sinks: unknown telemetry sink 'nope' (available:"
    )


async def test_structured_env_value_is_shown(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_RETRY__ATTEMPTS", '{"a":1}')
    with pytest.raises(ConfigError) as caught:
        await make_shell(mode="run")
    assert str(caught.value) == (
        "environment variable AGENTSHELL_RETRY__ATTEMPTS: retry.attempts: "
        'Input should be a valid integer (got {"a": 1})'
    )


async def test_unknown_names_are_warned_about_once(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_BOGUS", "1")
    monkeypatch.setenv("AGENTSHELL_DEBGU", "1")
    monkeypatch.setenv("AGENTSHELL_DISABLE_PLUGINS", "faults,metrix")
    config = '[plugins]\ndisable = ["consensu"]\n\n[plugins.nosuch]\nx = 1\n\n[plugins.faults]\n'
    await make_shell(config=config, mode="repl")
    errors = output.errors
    assert "environment variable AGENTSHELL_BOGUS is not a setting" in errors
    assert "AGENTSHELL_DEBGU is not a setting (did you mean AGENTSHELL_DEBUG?)" in errors
    assert "./agentshell.toml:4: [plugins.nosuch]: no plugin named 'nosuch'" in errors
    assert "[plugins.faults]" not in errors  # disabled, but a plugin of that name exists
    assert (
        "AGENTSHELL_DISABLE_PLUGINS names no known plugin: 'metrix' (did you mean 'metrics'?)"
        in errors
    )
    assert "plugins.disable names no known plugin: 'consensu' (did you mean 'consensus'?)" in (
        errors
    )
    assert errors.count("AGENTSHELL_BOGUS") == 1


async def test_known_names_are_not_warned_about(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_DEBUG", "1")
    monkeypatch.setenv("AGENTSHELL_TELEMETRY_SINKS", "null")
    monkeypatch.setenv("AGENTSHELL_DISABLE_PLUGINS", "faults")
    await make_shell(config="[plugins.metrics]\nbudget_usd = 1.0\n", mode="repl")
    assert "warning" not in output.errors


async def test_a_home_that_is_a_file_is_one_clear_line(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home-file"
    home.write_text("", encoding="utf-8")
    monkeypatch.setenv("AGENTSHELL_HOME", str(home))
    with pytest.raises(ConfigError) as caught:
        await make_shell(mode="run")
    assert str(caught.value) == f"AGENTSHELL_HOME={home} is not a directory"
    await make_shell(mode="repl")  # jsonl, the default sink, writes under the home
    assert f"error: AGENTSHELL_HOME={home} is not a directory" in output.errors
    assert "NotADirectoryError" not in output.errors and "pathlib" not in output.errors
    assert re.search(r"telemetry sink jsonl: cannot write \S+: Not a directory", output.errors)


async def test_a_config_file_that_is_a_directory_is_reported(
    make_shell: Any, output: CapturedOutput
) -> None:
    user = Path(os.environ["AGENTSHELL_HOME"]) / "config.toml"
    user.mkdir()
    Path("agentshell.toml").mkdir()  # noqa: ASYNC240
    with pytest.raises(ConfigError) as caught:
        await make_shell(mode="run")
    assert str(caught.value).splitlines() == [
        f"{user}: is a directory, not a config file",
        "./agentshell.toml: is a directory, not a config file",
    ]
    shell = await make_shell(mode="repl")
    assert shell.started and f"error: {user}: is a directory" in output.errors


async def test_an_unknown_auth_provider_is_a_config_error(
    make_shell: Any, output: CapturedOutput
) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config='[agents.x]\nauth = "nope"\n', mode="run")
    assert str(caught.value) == (
        "./agentshell.toml:2: agents.x.auth: unknown auth provider 'nope' "
        "(use env:NAME or keyring:SERVICE/NAME; no auth providers are registered)"
    )
    shell = await make_shell(mode="repl")
    assert "x" not in shell.agents and "x" in shell.broken_agents
    assert await shell.execute("/agents") == 0
    assert "?" not in output.text and "unknown provider" not in output.text


async def test_a_device_login_provider_counts_as_known(make_shell: Any) -> None:
    shell = await make_shell(
        config=(
            '[agents.x]\nauth = "corp:me"\n'
            "[plugins.device_login.providers.corp]\n"
            'client_id = "cli"\n'
            'device_authorization_endpoint = "https://login.example/device"\n'
            'token_endpoint = "https://login.example/token"\n'
        ),
        mode="run",
    )
    assert "x" in shell.agents and not shell.broken_agents


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('api_key = { env = "" }', "agents.x.api_key: Value error, env: the variable name is"),
        ('api_key = { keyring = "svc" }', "agents.x.api_key: Value error, keyring: expected"),
        ('auth = "env:"', "agents.x.auth: Value error, auth: the variable name after 'env:'"),
        ('auth = "keyring:/n"', "agents.x.auth: Value error, keyring: expected 'service/name'"),
    ],
)
async def test_empty_credential_references_are_rejected(
    make_shell: Any, setting: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config=f"[agents.x]\n{setting}\n", mode="run")
    assert str(caught.value).startswith(f"./agentshell.toml:2: {message}"), caught.value


async def test_keyring_credentials_say_not_checked(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(
        config='[agents.k]\napi_key = { keyring = "svc/x" }\n[agents.p]\nauth = "keyring:svc/y"\n'
    )
    assert await shell.execute("/agents --json") == 0
    rows = {row["name"]: row for row in json.loads(output.text)}
    assert rows["k"]["credentials"] == "api_key keyring svc/x"
    assert rows["k"]["available"] is None
    assert await shell.execute("/agents") == 0
    assert "not checked (api_key keyring svc/x)" in output.text
    assert "not checked (keyring svc/y)" in output.text
    assert "?:" not in output.text


async def test_no_auth_providers_is_said_plainly(make_shell: Any, output: CapturedOutput) -> None:
    await make_shell(config='[agents.x]\nauth = "nope"\n', mode="repl")
    assert (
        "error: ./agentshell.toml:2: agents.x.auth: unknown auth provider 'nope' "
        "(use env:NAME or keyring:SERVICE/NAME; no auth providers are registered)"
    ) in output.errors.splitlines()
    assert "provider: none" not in output.errors


async def test_known_auth_providers_are_listed(make_shell: Any, output: CapturedOutput) -> None:
    await make_shell(
        config=(
            '[agents.x]\nauth = "nope"\n'
            "[plugins.device_login.providers.corp]\n"
            'client_id = "cli"\n'
            'device_authorization_endpoint = "https://login.example/device"\n'
            'token_endpoint = "https://login.example/token"\n'
        ),
        mode="repl",
    )
    assert "or a provider: corp)" in output.errors


LITERAL = (
    '[agents.claude]\nbackend = "openai"\nmodel = "m"\ntimeout = 30\n'
    'api_key = "sk-literal-123456789"\n'
)


async def test_config_output_is_valid_toml_with_documented_names(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(config=LITERAL)
    assert await shell.execute("/config") == 0
    parsed = tomllib.loads(output.text)  # masks and unset values must not break TOML
    claude = parsed["agents"]["claude"]
    assert claude["api_key"] == "****"
    assert claude["timeout"] == 30
    assert "timeout_s" not in claude
    assert "# base_url: (unset)" in output.text
    assert "# sources (lowest precedence first): defaults, ./agentshell.toml\n" in output.text
    assert "sk-literal" not in output.text


async def test_literal_secret_warns_once(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(config=LITERAL)
    await shell.execute("/config reload")
    expected = 'literal secret in ./agentshell.toml:5: prefer { env = "CLAUDE_API_KEY" }'
    assert output.errors.count(expected) == 1


async def test_agents_shows_literal_keys_and_json_keeps_long_fields(
    make_shell: Any, output: CapturedOutput
) -> None:
    import json

    long_command = ["python", "-c", "print(1)", *[f"--flag-{i}" for i in range(12)]]
    config = (
        LITERAL + f'\n[agents.local]\nbackend = "command"\ncommand = {json.dumps(long_command)}\n'
    )
    shell = await make_shell(config=config)
    assert await shell.execute("/agents") == 0
    assert "literal (config)" in output.text
    assert "?: api_key" not in output.text
    output.out_buffer.truncate(0)
    output.out_buffer.seek(0)
    assert await shell.execute("/agents --json") == 0
    local = next(a for a in json.loads(output.text) if a["name"] == "local")
    assert local["target"].endswith("--flag-11")
    assert "…" not in local["target"]
