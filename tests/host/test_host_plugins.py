"""The plugin manager: entry-point discovery from real distributions, enabling and
disabling, isolation of broken plugins (bad registrations, hooks that raise at start),
name clashes, tracing and the discovery cache; a ``-p MODULE`` that cannot be used says
why in one line (``run`` exits 2, piped stdin goes on without it).

Third-party distributions are real: a ``*.dist-info`` directory with ``METADATA`` and
``entry_points.txt`` on ``sys.path`` is exactly what pip installs, and
``importlib.metadata`` discovers it the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentshell import __version__, hookimpl
from agentshell.commands import Command, CommandContext
from agentshell.errors import ConfigError
from agentshell.plugins import CACHE_FILE, PluginHost, discover_entry_points
from agentshell.shell import Shell
from tests.conftest import CapturedOutput
from tests.helpers.cli import REPO, agentshell, child_env

FakeDist = Callable[..., dict[str, str]]


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDist:
    """``fake_dist("name", {"ep": "module source"})`` installs a distribution on sys.path
    whose entry points (group ``agentshell``) name freshly written modules. Returns the
    entry-point name -> module name map (module names are unique per test)."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []

    def make(dist: str, plugins: dict[str, str], version: str = "1.2.3") -> dict[str, str]:
        modules = {}
        lines = ["[agentshell]"]
        for ep_name, source in plugins.items():
            module = f"fakeplug_{ep_name}_{uuid.uuid4().hex[:8]}"
            (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
            lines.append(f"{ep_name} = {module}")
            modules[ep_name] = module
            created.append(module)
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        import importlib

        importlib.invalidate_caches()
        return modules

    yield make  # type: ignore[misc]
    for module in created:
        sys.modules.pop(module, None)


GOOD = """
from agentshell.commands import Command
from agentshell.plugins import hookimpl

def _good(ctx):
    ctx.out.print("good ran")
    return 0

@hookimpl
def register_commands(register):
    register(Command("good", _good, help="a working third-party command"))
"""

IMPORT_ERROR = """
import json
raise RuntimeError("cannot import me")
"""

RAISING_HOOK = """
from agentshell.commands import Command
from agentshell.plugins import hookimpl

@hookimpl
def register_commands(register):
    register(Command("half", lambda ctx: 0, help="registered before the error"))
    raise ValueError("register exploded")
"""

UNKNOWN_HOOK = """
from agentshell.plugins import hookimpl

@hookimpl
def register_comands(register):
    pass
"""


async def test_builtins_load_from_the_installed_distribution(make_shell: Any) -> None:
    shell = await make_shell()
    info = shell.plugins.infos["builtins"]
    assert info.state == "loaded", info.reason
    assert info.distribution == "agentshell"
    assert info.version == __version__
    assert info.builtin is True
    assert info.module == "agentshell.builtins.commands"
    assert "register_commands" in info.hooks
    for name in ("help", "plugins", "config", "set-env", "quit"):
        assert shell.commands.get(name) is not None, name
        assert shell.commands.get(name).plugin == "builtins"


async def test_disable_builtin_by_env(make_shell: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSHELL_DISABLE_PLUGINS", "builtins, agents")
    shell = await make_shell()
    assert shell.plugins.infos["builtins"].state == "disabled"
    assert shell.plugins.infos["agents"].state == "disabled"
    assert shell.commands.get("help") is None
    assert shell.commands.get("agents") is None
    assert "agentshell.builtins.commands" not in shell.plugins.loaded


async def test_disable_by_config(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(config='[plugins]\ndisable = ["agents"]\n')
    assert shell.plugins.infos["agents"].state == "disabled"
    reason = shell.plugins.infos["agents"].reason
    assert reason == "disabled by plugins.disable in ./agentshell.toml"
    assert shell.commands.get("agents") is None
    assert await shell.execute("/help") == 0  # the rest still works


async def test_load_plugins_empty_means_none(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "")
    shell = await make_shell()
    assert shell.plugins.loaded == []
    assert shell.commands.names() == []
    assert all(info.state == "disabled" for info in shell.plugins.infos.values())


async def test_load_plugins_list_selects(make_shell: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,null")
    shell = await make_shell(env={"AGENTSHELL_TELEMETRY_SINKS": "null"})
    assert set(shell.plugins.loaded) == {"builtins", "null"}
    assert shell.plugins.infos["agents"].reason == "not in AGENTSHELL_LOAD_PLUGINS"
    assert shell.commands.get("agents") is None


async def test_broken_plugins_are_reported_and_the_shell_works(
    make_shell: Any, fake_dist: FakeDist, output: CapturedOutput
) -> None:
    modules = fake_dist(
        "agentshell-broken",
        {"good": GOOD, "importerr": IMPORT_ERROR, "raising": RAISING_HOOK, "typo": UNKNOWN_HOOK},
    )
    shell = await make_shell(mode="repl", env={"AGENTSHELL_TELEMETRY_SINKS": "null"})
    infos = shell.plugins.infos

    assert infos["good"].state == "loaded"
    assert infos["good"].distribution == "agentshell-broken"
    assert infos["good"].version == "1.2.3"
    assert infos["good"].builtin is False

    imp = infos["importerr"]
    assert imp.state == "failed"
    # the traceback summary: exception, message, and the plugin's own file and line
    assert (
        imp.reason
        == f"import failed: RuntimeError: cannot import me at {modules['importerr']}.py:3"
    )

    raising = infos["raising"]
    assert raising.state == "failed"
    assert raising.reason is not None
    assert raising.reason.startswith("hook register_commands raised ValueError: register exploded")
    assert f"{modules['raising']}.py:8" in raising.reason
    assert shell.commands.get("half") is None  # what it registered before raising is discarded

    typo = infos["typo"]
    assert typo.state == "failed"
    assert typo.reason == "unknown hook 'register_comands' (did you mean 'register_commands'?)"

    # the shell still started and both built-in and third-party commands work
    assert shell.started
    assert await shell.execute("/good") == 0
    assert "good ran" in output.text
    assert await shell.execute("/plugins --json") == 0
    listed = json.loads(output.text[output.text.index("[") :])
    states = {item["name"]: (item["state"], item["reason"]) for item in listed}
    assert states["importerr"][0] == "failed"
    assert "cannot import me" in states["importerr"][1]
    assert states["good"] == ("loaded", None)
    assert "Traceback" not in output.text + output.errors


class MisnamedArgument:
    """``register_commands(reg)``: pluggy passes ``register`` by name, so ``reg`` would
    never be filled in."""

    __name__ = "misnamed"

    @hookimpl
    def register_commands(self, reg: Any) -> None:
        reg(Command("misnamed", lambda ctx: 0))


class OptionalExtra:
    """An argument the hook does not pass is fine when it has a default."""

    __name__ = "optional-extra"

    @hookimpl
    def register_commands(self, register: Any, prefix: str = "x") -> None:
        register(Command(f"{prefix}-extra", lambda ctx: 0))


async def test_a_hook_argument_the_hook_does_not_pass_fails_the_plugin_clearly(
    make_shell: Any,
) -> None:
    shell = await make_shell(plugins=[MisnamedArgument(), OptionalExtra()])
    misnamed = shell.plugins.infos["misnamed"]
    assert misnamed.state == "failed"
    assert misnamed.reason == ("hook register_commands has no argument 'reg' (it passes: register)")
    assert shell.commands.get("misnamed") is None
    assert shell.plugins.infos["optional-extra"].state == "loaded"
    assert shell.commands.get("x-extra") is not None


async def test_raising_lifecycle_hook_is_reported_once(
    make_shell: Any, output: CapturedOutput
) -> None:
    class Grumpy:
        __name__ = "grumpy"

        @hookimpl
        def status_segments(self, shell: Any) -> str:
            raise KeyError("no status today")

    shell = await make_shell(plugins=[Grumpy()], entry_points=False)
    assert shell.status_text() == ""
    assert shell.status_text() == ""
    assert output.errors.count("plugin grumpy: hook status_segments raised KeyError") == 1


def _command_plugin(name: str, text: str) -> object:
    class P:
        __name__ = name

        @hookimpl
        def register_commands(self, register: Any) -> None:
            def handler(ctx: CommandContext) -> int:
                ctx.out.print(text)
                return 0

            register(Command("dup", handler, help=text))

    return P()


async def test_command_name_clash_keeps_the_first(make_shell: Any, output: CapturedOutput) -> None:
    first, second = _command_plugin("first", "from first"), _command_plugin("second", "from second")
    shell = await make_shell(plugins=[first, second])
    owner = shell.commands.get("dup").plugin
    other = "second" if owner == "first" else "first"
    assert owner in {"first", "second"}
    assert f"/dup from plugin {other} clashes with /dup from plugin {owner}" in output.errors
    assert await shell.execute("/dup") == 0
    assert f"from {owner}" in output.text
    assert f"from {other}" not in output.text


async def test_command_clash_with_a_builtin(make_shell: Any, output: CapturedOutput) -> None:
    class Impostor:
        __name__ = "impostor"

        @hookimpl
        def register_commands(self, register: Any) -> None:
            register(Command("help", lambda ctx: 7, help="not the real help"))

    shell = await make_shell(plugins=[Impostor()])
    assert shell.commands.get("help").plugin == "builtins"
    assert "clashes with /help from plugin builtins" in output.errors
    assert await shell.execute("/help") == 0


async def test_plugin_name_clash_between_distributions(
    make_shell: Any, fake_dist: FakeDist
) -> None:
    fake_dist("agentshell-impostor", {"builtins": GOOD})
    shell = await make_shell(env={"AGENTSHELL_TELEMETRY_SINKS": "null"})
    assert shell.plugins.infos["builtins"].distribution == "agentshell"
    assert shell.plugins.infos["builtins"].state == "loaded"
    clash = shell.plugins.infos["builtins (agentshell-impostor)"]
    assert clash.state == "failed"
    assert clash.reason is not None and "name clash" in clash.reason
    assert shell.commands.get("good") is None


def test_register_in_process_plugin_twice_is_a_clash() -> None:
    host = PluginHost(trace=False)
    plugin = _command_plugin("p", "x")
    assert host.register(plugin, "p").state == "loaded"
    again = host.register(_command_plugin("p", "y"), "p")
    assert again.state == "failed"
    assert again.reason == "name clash: a plugin named 'p' is loaded"


def test_trace_plugins_writes_hook_calls_to_stderr(tmp_path: Path) -> None:
    env = _cli_env(tmp_path, AGENTSHELL_TRACE_PLUGINS="1")
    done = subprocess.run(
        [sys.executable, "-m", "agentshell", "run", "/help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "hook register_commands -> builtins" in done.stderr
    assert "hook shell_started" in done.stderr or "shell_started" in done.stderr
    untraced = subprocess.run(
        [sys.executable, "-m", "agentshell", "run", "/help"],
        env=_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "hook register_commands" not in untraced.stderr


def _cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return child_env(tmp_path / "clihome", **extra)


# -- the discovery cache -----------------------------------------------------------


def test_discovery_cache_is_written_reused_and_invalidated(
    tmp_path: Path, fake_dist: FakeDist
) -> None:
    cache = tmp_path / "cache"
    first = discover_entry_points(cache)
    assert (cache / CACHE_FILE).is_file()
    names = [ep.name for ep in first]
    assert "builtins" in names
    assert names.index("builtins") < len([ep for ep in first if ep.distribution == "agentshell"])

    # tamper with the cached list: a hit returns what the cache says, proving it is used
    data = json.loads((cache / CACHE_FILE).read_text())
    data["entry_points"].append(
        {"name": "cached-only", "value": "nowhere", "distribution": "x", "version": "1"}
    )
    (cache / CACHE_FILE).write_text(json.dumps(data))
    assert "cached-only" in [ep.name for ep in discover_entry_points(cache)]

    # installing a distribution changes sys.path's directory mtimes: the cache is rebuilt
    fake_dist("agentshell-late", {"late": GOOD})
    rebuilt = [ep.name for ep in discover_entry_points(cache)]
    assert "late" in rebuilt
    assert "cached-only" not in rebuilt


def test_discovery_cache_survives_garbage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / CACHE_FILE).write_text("{not json")
    assert "builtins" in [ep.name for ep in discover_entry_points(tmp_path)]
    assert json.loads((tmp_path / CACHE_FILE).read_text())["entry_points"]
    monkeypatch.setenv("AGENTSHELL_NO_PLUGIN_CACHE", "1")
    (tmp_path / CACHE_FILE).unlink()
    discover_entry_points(tmp_path)
    assert not (tmp_path / CACHE_FILE).exists()


async def test_unreadable_config_does_not_stop_plugin_listing(make_shell: Any) -> None:
    with pytest.raises(ConfigError):
        await make_shell(config="[plugins\n")


async def test_command_of_a_failed_plugin_names_the_failure(
    make_shell: Any, fake_dist: FakeDist, output: CapturedOutput
) -> None:
    fake_dist("agentshell-hello", {"hello": IMPORT_ERROR})
    shell = await make_shell(mode="repl", env={"AGENTSHELL_TELEMETRY_SINKS": "null"})
    assert shell.plugins.infos["hello"].state == "failed"
    # /hi matches no plugin name, but the name is unknown and a plugin failed: say so
    assert await shell.execute("/hi") == 1
    assert "unknown command /hi: plugin 'hello' failed: import failed: RuntimeError" in (
        output.errors
    )
    assert await shell.execute("/hello") == 1
    assert "unknown command /hello: plugin 'hello' failed: import failed" in output.errors
    # a typo of a real command still gets its did-you-mean
    assert await shell.execute("/hlep") == 1
    assert "did you mean /help?" in output.errors


RAISING = (
    "from agentshell import hookimpl\n"
    "@hookimpl\n"
    "def shell_started(shell):\n"
    '    raise RuntimeError("boom at start")\n'
)


ERROR_LINE = (
    "error: plugin raising_at_start: hook shell_started raised "
    "RuntimeError: boom at start at raising_at_start.py:4"
)


@pytest.fixture
def raising_plugin_env(tmp_path: Path) -> dict[str, str]:
    plugdir = tmp_path / "plugins"
    plugdir.mkdir()
    (plugdir / "raising_at_start.py").write_text(RAISING, encoding="utf-8")
    env = child_env(tmp_path / "home")
    env["PYTHONPATH"] = f"{plugdir}:{REPO}"
    return env


def test_run_with_a_p_module_raising_at_start_exits_2_and_runs_nothing(
    raising_plugin_env: dict[str, str],
) -> None:
    ran = agentshell(raising_plugin_env, "-p", "raising_at_start", "run", "/config path")
    assert ran.returncode == 2
    assert ran.stderr.splitlines() == [ERROR_LINE]
    assert ran.stdout == ""  # /config path did not run


def test_piped_stdin_goes_on_and_plugins_shows_the_p_module_failed(
    raising_plugin_env: dict[str, str],
) -> None:
    piped = agentshell(raising_plugin_env, "-p", "raising_at_start", stdin="/plugins --json\n")
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr.splitlines() == [ERROR_LINE]
    infos = {info["name"]: info for info in json.loads(piped.stdout)}
    assert infos["raising_at_start"]["state"] == "failed"
    assert infos["raising_at_start"]["reason"] == (
        "hook shell_started raised RuntimeError: boom at start at raising_at_start.py:4"
    )


class StartsBadly:
    """A plugin with a command whose ``shell_started`` raises."""

    __name__ = "starts_badly"

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register(Command("badly-hello", self.hello, help="say hello"))

    @staticmethod
    def hello(ctx: CommandContext) -> int:
        ctx.out.print("hello")
        return 0

    @hookimpl
    def shell_started(self, shell: Any) -> None:
        raise RuntimeError("no start for me")


async def test_a_requested_plugin_raising_at_start_is_failed_with_its_commands(
    output: CapturedOutput,
) -> None:
    shell = Shell(mode="repl", output=output)
    shell.plugins.requested.add("starts_badly")  # what `-p` does
    shell.plugins.register(StartsBadly(), "starts_badly")
    await shell.start()
    try:
        assert "error: plugin starts_badly: hook shell_started raised RuntimeError: " in (
            output.errors
        )
        assert "warning:" not in output.errors
        info = shell.plugins.infos["starts_badly"]
        assert info.state == "failed"
        assert info.reason is not None and "no start for me" in info.reason
        assert await shell.execute("/badly-hello") == 1  # failed: its command went with it
        assert await shell.execute("/plugins") == 0
        row = next(line for line in output.text.splitlines() if "starts_badly" in line)
        assert "failed: hook shell_started raised RuntimeError" in row
    finally:
        await shell.stop()


async def test_an_entry_point_plugin_raising_at_start_only_warns(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(plugins=[StartsBadly()], mode="repl")
    assert "warning: plugin starts_badly: hook shell_started raised RuntimeError" in output.errors
    assert "error:" not in output.errors
    info = shell.plugins.infos["starts_badly"]
    assert info.state == "loaded"  # a broken third-party plugin does not stop anything
    assert info.reason is not None and "no start for me" in info.reason
    assert await shell.execute("/badly-hello") == 0
    assert await shell.execute("/plugins --json") == 0
    listed = json.loads(output.text[output.text.index("[") :])
    entry = next(item for item in listed if item["name"] == "starts_badly")
    assert entry["state"] == "loaded" and "no start for me" in entry["reason"]


async def test_a_run_mode_shell_with_an_entry_point_raising_still_starts(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(plugins=[StartsBadly()], mode="run")
    assert shell.started
    assert await shell.execute("/badly-hello") == 0


PLUGINS = {
    "typo_hook": (
        "from agentshell import hookimpl\n@hookimpl\ndef register_comands(register): pass\n"
    ),
    "bad_import": "import no_such_dependency_for_tests\n",
    "raises_at_import": 'raise ValueError("broken on purpose")\n',
    "raises_in_hook": (
        "from agentshell import hookimpl\n"
        "@hookimpl\n"
        "def register_commands(register):\n"
        '    raise RuntimeError("hook broken on purpose")\n'
    ),
}


EXPECTED = {
    "typo_hook": (
        "error: plugin typo_hook: unknown hook 'register_comands'"
        " (did you mean 'register_commands'?)"
    ),
    "bad_import": (
        "error: plugin bad_import: ModuleNotFoundError: "
        "No module named 'no_such_dependency_for_tests' at bad_import.py:1"
    ),
    "raises_at_import": (
        "error: plugin raises_at_import: ValueError: broken on purpose at raises_at_import.py:1"
    ),
    "not_an_installed_module": (
        "error: plugin not_an_installed_module: ModuleNotFoundError: "
        "No module named 'not_an_installed_module' (is it installed, or on PYTHONPATH?)"
    ),
}


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    plugdir = tmp_path / "plugins"
    plugdir.mkdir()
    for name, source in PLUGINS.items():
        (plugdir / f"{name}.py").write_text(source, encoding="utf-8")
    env = child_env(tmp_path / "home")
    env["PYTHONPATH"] = os.pathsep.join([str(plugdir), str(REPO)])
    return env


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_unusable_p_module_is_one_clear_line(plugin_env: dict[str, str], module: str) -> None:
    ran = agentshell(plugin_env, "-p", module, "run", "/help quit")
    assert ran.returncode == 2
    assert ran.stderr.splitlines() == [EXPECTED[module]]
    assert ran.stdout == ""  # nothing ran
    # piped stdin (like the REPL) goes on without the plugin, with the same line shown
    piped = agentshell(plugin_env, "-p", module, stdin="/help quit\n")
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr.splitlines() == [EXPECTED[module]]
    assert "usage: /quit" in piped.stdout


def test_p_module_whose_hook_raises_at_start(plugin_env: dict[str, str]) -> None:
    ran = agentshell(plugin_env, "-p", "raises_in_hook", "run", "/help quit")
    assert ran.returncode == 2
    assert ran.stderr.splitlines() == [
        "error: plugin raises_in_hook: hook register_commands raised "
        "RuntimeError: hook broken on purpose at raises_in_hook.py:4",
    ]
    assert ran.stdout == ""
    piped = agentshell(plugin_env, "-p", "raises_in_hook", stdin="/help quit\n")
    assert piped.returncode == 0, piped.stderr
    assert "hook broken on purpose at raises_in_hook.py:4" in piped.stderr
    assert "Traceback" not in piped.stderr
    assert "usage: /quit" in piped.stdout


def test_p_module_given_twice_is_loaded_once(plugin_env: dict[str, str]) -> None:
    args = ["-p", "tests.helpers.recorder", "-p", "tests.helpers.recorder"]
    ran = agentshell(plugin_env, *args, "run", "/zz-record once")
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr == ""
    assert ran.stdout.splitlines() == ["ran: [once]"]


def _noop(ctx: CommandContext) -> int:
    return 0


class WrongArity:
    """register_commands: one good command, then register("boom", fn)."""

    __name__ = "WrongArity"  # the plugin name make_shell registers it under

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register(Command("fine-before", _noop, help="registered before the bad call"))
        register("boom", _noop)


class WrongTypes:
    __name__ = "WrongTypes"  # the plugin name make_shell registers it under

    @hookimpl
    def register_agent_backends(self, register: Any) -> None:
        register("okay-backend", lambda spec: None)
        register(123, "not callable")

    @hookimpl
    def register_telemetry_sinks(self, register: Any) -> None:
        register("bad-sink", "not callable")

    @hookimpl
    def register_auth_providers(self, register: Any) -> None:
        register("lonely")  # no factory


class BadConfigModel:
    __name__ = "BadConfigModel"  # the plugin name make_shell registers it under

    @hookimpl
    def register_config(self, register: Any) -> None:
        register("badcfg", dict)  # not a pydantic model


async def test_bad_register_calls_fail_only_their_plugin(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(plugins=[WrongArity(), WrongTypes(), BadConfigModel()], mode="repl")
    assert shell.started
    infos = shell.plugins.infos
    arity = infos["WrongArity"]
    assert arity.state == "failed"
    assert "register_commands: bad registration" in (arity.reason or "")
    assert "register(command) called wrongly: too many positional arguments" in (arity.reason or "")
    assert shell.commands.get("fine-before") is None  # discarded with the bad call
    types = infos["WrongTypes"]
    assert types.state == "failed"
    assert "name must be a non-empty string, got 123" in (types.reason or "")
    assert "okay-backend" not in shell.backend_names  # discarded too
    assert infos["BadConfigModel"].state == "failed"
    assert "pydantic model" in (infos["BadConfigModel"].reason or "")
    assert await shell.execute("/help") == 0  # the built-ins are all there
