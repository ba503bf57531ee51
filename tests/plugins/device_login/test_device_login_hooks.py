"""The device-login plugin adds its providers through ``register_auth_providers`` — the
hook a third-party auth plugin would use — one factory per configured provider, and the
list follows ``/config reload``. Real shell, entry-point plugins, real config files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentshell import hookimpl
from speckit_device_login.provider import DeviceLoginProvider
from tests.conftest import CapturedOutput
from tests.plugins.device_login.oauth_support import (  # noqa: F401 - fixtures
    ScriptedOAuthServer,
    oauth_server_fixture,
)


@pytest.fixture(autouse=True)
def _plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,device_login,openai")


class SeesProvidersAtStart:
    """A plugin whose ``shell_started`` runs before every other: by then the auth
    providers must already be registered (they come from the collection hook, not from
    another plugin's ``shell_started``)."""

    __name__ = "sees-providers"

    def __init__(self) -> None:
        self.seen: list[str] | None = None

    @hookimpl(tryfirst=True)
    def shell_started(self, shell: Any) -> None:
        self.seen = list(shell.auth.provider_names)


async def test_providers_are_registered_by_the_collection_hook_one_per_configured_name(
    make_shell: Any, oauth_server: ScriptedOAuthServer
) -> None:
    watcher = SeesProvidersAtStart()
    config = oauth_server.provider_toml("corp") + oauth_server.provider_toml("lab")
    shell = await make_shell(plugins=[watcher], config=config)
    assert watcher.seen == ["corp", "lab"]
    for name in ("corp", "lab"):
        provider = shell.auth.provider(name)
        assert isinstance(provider, DeviceLoginProvider) and provider.name == name


async def test_providers_follow_config_reload(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    shell = await make_shell(config=oauth_server.provider_toml("corp"), mode="repl")
    assert shell.auth.provider_names == ["corp"]
    agent = '[agents.coder]\nbackend = "openai"\nmodel = "m"\nauth = "lab"\n'
    changed = oauth_server.provider_toml("lab") + agent
    Path("agentshell.toml").write_text(changed, encoding="utf-8")  # noqa: ASYNC240
    assert await shell.execute("/config reload") == 0, output.errors
    assert shell.auth.provider_names == ["lab"]  # corp is gone, lab is new
    assert "unknown auth provider" not in output.errors
    provider = shell.auth.provider("lab")
    assert isinstance(provider, DeviceLoginProvider)
    # the agent's credentials now come from the new provider (not logged in yet)
    with pytest.raises(Exception, match=r"not logged in to lab \(run: /login lab\)"):
        await shell.auth.credentials(shell.agents["coder"])
