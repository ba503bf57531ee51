"""Configuration: precedence, clear errors for bad files and values, secrets."""

from __future__ import annotations

import os
import subprocess
import sys
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
