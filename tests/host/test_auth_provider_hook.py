"""``register_auth_providers(register, shell)``: a plugin may register providers from
its validated configuration, and the collection runs again after ``/config reload``
(what it registered before is dropped first). A plugin that names only ``register``
keeps working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentshell import hookimpl
from tests.conftest import CapturedOutput


class Settings(BaseModel):
    names: list[str] = []


class Provider:
    def __init__(self, name: str) -> None:
        self.name = name

    async def get_credentials(self, account: str | None = None) -> None:
        return None

    async def on_unauthorized(self, account: str | None = None) -> None:
        return None

    def login_command(self, account: str | None = None) -> str:
        return f"/sign-in {self.name}"


class FromConfig:
    __name__ = "from-config"

    @hookimpl
    def register_config(self, register: Any) -> None:
        register("from_config", Settings)

    @hookimpl
    def register_auth_providers(self, register: Any, shell: Any) -> None:
        for name in shell.plugin_config("from_config").names:
            register(name, lambda shell, name=name: Provider(name))


class RegisterOnly:
    __name__ = "register-only"

    @hookimpl
    def register_auth_providers(self, register: Any) -> None:
        register("fixed", lambda shell: Provider("fixed"))


async def test_providers_from_configuration_follow_reload(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(
        plugins=[FromConfig(), RegisterOnly()],
        config='[plugins.from_config]\nnames = ["a", "b"]\n',
        entry_points=False,
        mode="repl",
    )
    assert shell.plugin_config("from_config").names == ["a", "b"], output.errors
    assert shell.auth.provider_names == ["a", "b", "fixed"], output.errors
    changed = '[plugins.from_config]\nnames = ["c"]\n'
    Path("agentshell.toml").write_text(changed, encoding="utf-8")  # noqa: ASYNC240
    await shell.reload_config()  # what /config reload does
    assert shell.auth.provider_names == ["c", "fixed"]
    provider = shell.auth.provider("c")
    assert isinstance(provider, Provider) and provider.name == "c"
