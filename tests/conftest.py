"""Shared fixtures. Every test runs with its own AGENTSHELL_HOME and working directory,
so nothing touches the developer's real configuration, history or keyring entries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from agentshell.output import Output
from agentshell.shell import Shell

pytest_plugins = ["tests.servers.fixtures"]

# Property tests: no per-example deadline and no "too slow" health check (both measure
# wall-clock time, which a loaded 2-core CI machine stretches), and no example database
# (a failure found by an earlier run on this machine must not change what a run tests).
settings.register_profile(
    "agentshell",
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("agentshell")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    for name in list(__import__("os").environ):
        if name.startswith(("AGENTSHELL_", "CODEX_FAULTS", "SPEC_KIT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AGENTSHELL_HOME", str(home))
    monkeypatch.chdir(work)
    return work


class CapturedOutput(Output):
    """An Output that records what it printed (messages and errors separately)."""

    def __init__(self) -> None:
        import io

        self.out_buffer = io.StringIO()
        self.err_buffer = io.StringIO()
        super().__init__(self.out_buffer, self.err_buffer)

    @property
    def text(self) -> str:
        return self.out_buffer.getvalue()

    @property
    def errors(self) -> str:
        return self.err_buffer.getvalue()


@pytest.fixture
def output() -> CapturedOutput:
    return CapturedOutput()


ShellFactory = Callable[..., Any]


@pytest.fixture
async def make_shell(
    output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ShellFactory]:
    """``shell = await make_shell(plugins=[obj, ...], config="toml text", mode="run")``:
    a started shell with the entry-point plugins plus any in-process plugin objects."""
    shells: list[Shell] = []

    async def factory(
        *,
        plugins: list[Any] | tuple[Any, ...] = (),
        config: str | None = None,
        mode: str = "run",
        entry_points: bool = True,
        env: dict[str, str] | None = None,
    ) -> Shell:
        if config is not None:
            Path("agentshell.toml").write_text(config, encoding="utf-8")  # noqa: ASYNC240
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)  # undone after the test: no leak into the next
        shell = Shell(mode=mode, output=output, load_entry_points=entry_points)  # type: ignore[arg-type]
        for i, plugin in enumerate(plugins):
            shell.plugins.register(plugin, getattr(plugin, "__name__", f"test-plugin-{i}"))
        await shell.start()
        shells.append(shell)
        return shell

    yield factory
    for shell in shells:
        await shell.stop()
