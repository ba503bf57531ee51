"""What start-up says about plugins that are not usable: a plugin that fails to import
(or to register) is one ``warning: plugin X failed: ...`` line at start-up, in the REPL
and in ``agentshell run`` (whose exit status a broken third-party plugin does not
change); a setting that names a backend or sink of a disabled plugin says the plugin is
disabled, and by what, rather than ``unknown backend``; and plugin code that breaks
start-up in ways the hooks did not isolate (``sys.exit`` in a hook, a config model that
raises) fails that plugin alone.

Real parts: real distributions on ``sys.path`` (tests/helpers/dists.py), real child
processes for ``agentshell run``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentshell.errors import ConfigError
from tests.conftest import CapturedOutput
from tests.helpers.cli import agentshell, child_env
from tests.helpers.dists import install_dist
from tests.helpers.paths import REPO

IMPORT_ERROR = """
import json
raise RuntimeError("cannot import me")
"""

EXITS_IN_REGISTER_CONFIG = """
import sys
from agentshell.plugins import hookimpl

@hookimpl
def register_config(register):
    sys.exit(3)
"""

RAISING_CONFIG_MODEL = """
from pydantic import BaseModel, model_validator
from agentshell.plugins import hookimpl

class Settings(BaseModel):
    level: int = 1

    @model_validator(mode="after")
    def _explode(self):
        raise TypeError("the validator itself is broken")

@hookimpl
def register_config(register):
    register("raisingmodel", Settings)
"""

Install = Callable[[str, dict[str, str]], dict[str, str]]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """``install("dist-name", {"ep": source})``: a distribution on this process's sys.path."""
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    made: list[str] = []

    def make(dist: str, plugins: dict[str, str]) -> dict[str, str]:
        modules = install_dist(site, dist, plugins)
        made.extend(modules.values())
        importlib.invalidate_caches()
        return modules

    yield make
    for module in made:
        sys.modules.pop(module, None)


NULL_SINKS = {"AGENTSHELL_TELEMETRY_SINKS": "null"}


# -- a plugin that fails to import is reported at start-up ---------------------------------


async def test_a_plugin_that_fails_to_import_is_one_warning_at_start_up(
    make_shell: Any, install: Install, output: CapturedOutput
) -> None:
    modules = install("agentshell-hello", {"hello": IMPORT_ERROR})
    shell = await make_shell(mode="repl", env=NULL_SINKS)
    assert shell.plugins.infos["hello"].state == "failed"
    expected = (
        "warning: plugin hello failed: import failed: RuntimeError: cannot import me "
        f"at {modules['hello']}.py:3"
    )
    assert output.errors.splitlines().count(expected) == 1, output.errors
    assert await shell.execute("/help quit") == 0  # and the shell works


def test_run_warns_about_a_broken_third_party_plugin_and_keeps_its_exit_status(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    install_dist(site, "agentshell-hello", {"hello": IMPORT_ERROR})
    env = child_env(tmp_path / "home", PYTHONPATH=f"{site}:{REPO}")
    done = agentshell(env, "run", "/help quit")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: plugin")]
    assert warnings == [
        f"warning: plugin hello failed: import failed: RuntimeError: cannot import me "
        f"at {next(site.glob('distplug_hello_*.py')).name}:3"
    ]
    assert "Traceback" not in done.stderr
    assert "usage: /quit" in done.stdout


def test_run_exits_non_zero_when_a_requested_plugin_is_broken(tmp_path: Path) -> None:
    done = agentshell(
        child_env(tmp_path / "home", BROKEN_START="exit"),
        "run",
        "-p",
        "tests.helpers.broken_start",
        "/help quit",
    )
    assert done.returncode == 2
    assert (
        "error: plugin tests.helpers.broken_start: hook register_config raised SystemExit: 3"
        in (done.stderr)
    )
    assert "usage: /quit" not in done.stdout  # nothing ran without the plugin asked for


# -- plugin code that breaks start-up fails that plugin alone ------------------------------


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (EXITS_IN_REGISTER_CONFIG, "hook register_config raised SystemExit: 3"),
        (RAISING_CONFIG_MODEL, "TypeError: the validator itself is broken"),
    ],
    ids=["sys-exit-in-a-hook", "raising-config-model"],
)
async def test_plugin_code_breaking_start_up_fails_that_plugin_alone(
    make_shell: Any, install: Install, output: CapturedOutput, source: str, why: str
) -> None:
    install("agentshell-breaks", {"breaks": source})
    shell = await make_shell(mode="repl", env=NULL_SINKS)
    info = shell.plugins.infos["breaks"]
    assert info.state == "failed"
    assert info.reason is not None and why in info.reason
    assert shell.started
    assert await shell.execute("/help quit") == 0
    assert "Traceback" not in output.errors


def test_run_reports_a_raising_config_model_of_a_third_party_plugin(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_dist(site, "agentshell-breaks", {"breaks": RAISING_CONFIG_MODEL})
    done = agentshell(
        child_env(tmp_path / "home", PYTHONPATH=f"{site}:{REPO}"), "run", "/help quit"
    )
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr
    assert "TypeError: the validator itself is broken" in done.stderr


# -- a disabled plugin's backend or sink named in the configuration -------------------------


AGENT_ON_OPENAI = """
[agents.claude]
backend = "openai"
model = "m"
"""


async def test_an_agent_on_a_disabled_plugins_backend_says_the_plugin_is_disabled(
    make_shell: Any,
) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(
            config=AGENT_ON_OPENAI, env={**NULL_SINKS, "AGENTSHELL_DISABLE_PLUGINS": "openai"}
        )
    message = str(caught.value)
    assert (
        "./agentshell.toml:3: agents.claude.backend: backend 'openai' comes from plugin "
        "'openai', which is disabled (AGENTSHELL_DISABLE_PLUGINS)"
    ) in message
    assert "unknown backend" not in message


async def test_the_repl_says_which_file_disabled_the_backend_plugin(
    make_shell: Any, output: CapturedOutput
) -> None:
    config = '[plugins]\ndisable = ["openai"]\n' + AGENT_ON_OPENAI
    shell = await make_shell(mode="repl", config=config, env=NULL_SINKS)
    assert "claude" not in shell.agents
    assert (
        "backend 'openai' comes from plugin 'openai', which is disabled "
        "(plugins.disable in ./agentshell.toml)"
    ) in output.errors
    assert "unknown backend" not in output.errors


async def test_a_configured_sink_of_a_disabled_plugin_says_the_plugin_is_disabled(
    make_shell: Any,
) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(
            config='[telemetry]\nsinks = ["jsonl"]\n',
            env={"AGENTSHELL_DISABLE_PLUGINS": "jsonl"},
        )
    message = str(caught.value)
    assert (
        "telemetry.sinks: telemetry sink 'jsonl' comes from plugin 'jsonl', which is "
        "disabled (AGENTSHELL_DISABLE_PLUGINS)"
    ) in message
    assert "unknown telemetry sink" not in message
