"""Hook implementations: the config section, one auth provider per configured name,
and the /login, /logout and /auth commands."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agentshell.commands import Arg, Command, CommandContext
from agentshell.errors import CommandError
from agentshell.plugins import hookimpl

from .config import DeviceLoginConfig

# httpx and the flow modules load when a command or a credential lookup needs them,
# not at start-up
if TYPE_CHECKING:
    from .provider import DeviceLoginProvider

SECTION = "device_login"


def _settings(shell: Any) -> DeviceLoginConfig:
    cfg = shell.plugin_config(SECTION)
    return cfg if isinstance(cfg, DeviceLoginConfig) else DeviceLoginConfig()


def _names(shell: Any) -> list[str]:
    return sorted(_settings(shell).providers)


def _complete(shell: Any, text: str) -> Iterable[str]:
    return [name for name in _names(shell) if name.startswith(text)]


#: the fix for "no providers", shared by every error that needs it
_NONE_CONFIGURED = (
    "no device-login providers are configured — add "
    "[plugins.device_login.providers.<name>] (see docs/auth.md)"
)


def _provider(shell: Any, name: str | None) -> DeviceLoginProvider:
    from .provider import DeviceLoginProvider

    names = _names(shell)
    if name is None:
        if len(names) == 1:
            name = names[0]
        elif names:
            raise CommandError(f"which provider? name one of: {', '.join(names)}")
        else:
            raise CommandError(_NONE_CONFIGURED)
    provider = shell.auth.provider(name) if name in names else None
    if not isinstance(provider, DeviceLoginProvider):
        if provider is not None:
            raise CommandError(f"provider {name!r} belongs to another plugin, not device_login")
        if not names:
            raise CommandError(f"unknown provider {name!r}: {_NONE_CONFIGURED}")
        raise CommandError(
            f"unknown provider {name!r}: the device-login providers are {', '.join(names)}"
        )
    return provider


async def _login(ctx: CommandContext) -> int:
    from .ui import clock_text

    provider = _provider(ctx.shell, ctx.args.get("provider"))
    where = await provider.login()
    record = provider.load()
    detail = []
    if record is not None and record.scope:
        detail.append(f"scope: {record.scope}")
    if record is not None and record.expires_at is not None:
        detail.append(f"expires in {clock_text(record.expires_in(provider.clock.time()) or 0)}")
    suffix = f" ({'; '.join(detail)})" if detail else ""
    ctx.out.success(f"logged in to {provider.name}{suffix}; tokens stored in {where}")
    return 0


async def _logout(ctx: CommandContext) -> int:
    provider = _provider(ctx.shell, ctx.args.get("provider"))
    had_login, problems = await provider.logout()
    for problem in problems:
        ctx.out.warn(f"{provider.name}: {problem}")
    if had_login:
        ctx.out.success(f"logged out of {provider.name}")
    else:
        ctx.out.info(f"{provider.name}: not logged in")
    return 0


def _auth(ctx: CommandContext) -> int:
    from .ui import clock_text

    names = _names(ctx.shell)
    if not names:
        ctx.out.info(_NONE_CONFIGURED)
        return 0
    rows = []
    storage: set[str] = set()
    for name in names:
        provider = _provider(ctx.shell, name)
        storage.add(provider.storage())
        status = provider.status()
        left = status["expires_in_s"]
        if not status["logged_in"]:
            expiry = "-"
        elif left is None:
            expiry = "no expiry given"
        elif left <= 0:
            expiry = "expired" + (" (will refresh)" if status["refreshable"] else "")
        else:
            expiry = clock_text(left)
        rows.append(
            [
                name,
                "yes" if status["logged_in"] else "no",
                status["scope"] or "-",
                expiry,
            ]
        )
    ctx.out.table(["provider", "logged in", "scope", "expires in"], rows, title="Device login")
    for where in sorted(storage):  # one store for all providers: say it once, in full
        ctx.out.info(where)
    return 0


@hookimpl
def register_config(register: Any) -> None:
    register(SECTION, DeviceLoginConfig)


@hookimpl
def register_auth_providers(register: Any, shell: Any) -> None:
    """One provider per ``[plugins.device_login.providers.<name>]``; the host calls this
    again after ``/config reload``, so the list follows the configuration."""
    for name in _names(shell):
        register(name, _factory(name))


def _factory(name: str) -> Any:
    def make(shell: Any) -> DeviceLoginProvider:
        from .provider import DeviceLoginProvider

        settings = _settings(shell)
        return DeviceLoginProvider(
            shell, name, settings.providers[name], allow_plaintext=settings.allow_plaintext
        )

    return make


@hookimpl
def register_commands(register: Any) -> None:
    provider_arg = Arg("provider", "a configured provider", required=False, complete=_complete)
    register(
        Command(
            "login",
            _login,
            "log in to a provider with a one-time code (RFC 8628)",
            args=[provider_arg],
        )
    )
    register(
        Command("logout", _logout, "revoke and forget a provider's tokens", args=[provider_arg])
    )
    register(
        Command(
            "auth",
            _auth,
            "show login state of the device-login providers",
            args=[Arg("action", "status", required=False, choices=["status"])],
        )
    )
