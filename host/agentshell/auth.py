"""Credentials for agents: the lookup backends use, auth providers, and the token store.

An agent's ``auth`` setting names where its credentials come from:

* ``env:NAME`` — an environment variable (``/set-env NAME=...`` sets one for the session);
* ``keyring:SERVICE/NAME`` — an entry in the OS keyring;
* ``<provider>`` or ``<provider>:<account>`` — an auth provider registered by a plugin
  (for example the device-login plugin).

Missing credentials raise :class:`AuthRequired` carrying the exact command that fixes it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from .errors import AuthRequired
from .redact import register_secret

if TYPE_CHECKING:
    from .agents import AgentSpec

KEYRING_SERVICE = "agentshell"


class Credentials(BaseModel):
    """What a backend needs to authenticate one request. Never logged or shown."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    token: str = Field(repr=False)
    kind: Literal["bearer", "api_key"] = "bearer"
    expires_at: float | None = None  # epoch seconds
    scope: str | None = None
    source: str = ""  # "env:OPENAI_API_KEY", "device_login:github", ... (no secret)

    def model_post_init(self, __context: Any) -> None:
        register_secret(self.token)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def expires_in(self, now: float | None = None) -> float | None:
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    def __str__(self) -> str:
        return f"Credentials(kind={self.kind!r}, source={self.source!r})"

    __repr__ = __str__


@runtime_checkable
class AuthProvider(Protocol):
    """What ``register_auth_providers`` factories return."""

    async def get_credentials(self, account: str | None = None) -> Credentials | None:
        """Valid credentials (refreshed if needed), or ``None`` when not logged in."""
        ...

    async def on_unauthorized(self, account: str | None = None) -> Credentials | None:
        """The server said 401 with the current credentials: refresh once and return the
        new ones, or ``None`` if that is not possible."""
        ...

    def login_command(self, account: str | None = None) -> str:
        """The command that logs in, shown in ``AuthRequired`` errors."""
        ...


def keyring_get(ref: str) -> str | None:
    """Read ``SERVICE/NAME`` from the OS keyring; ``None`` when missing or unavailable."""
    service, _, name = ref.partition("/")
    if not name:
        return None
    try:
        import keyring

        value: str | None = keyring.get_password(service, name)
    except Exception:
        return None
    register_secret(value)
    return value


def keyring_usable() -> tuple[bool, str]:
    """Whether a real, secure keyring backend is available, and its name."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
    except Exception as exc:
        return False, f"unavailable ({type(exc).__name__})"
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if isinstance(backend, fail.Keyring):
        return False, name
    chained = getattr(backend, "backends", None)
    if chained is not None and not chained:
        return False, name
    if "keyrings.alt" in name or "plaintext" in name.lower():
        return False, name  # a plaintext file pretending to be a keyring
    return True, name


def keyring_problem(exc: BaseException) -> str:
    """Why a keyring call failed, in words (never the exception's text: it may quote
    what was being stored, and never its class name: users get a sentence)."""
    from keyring import errors

    if isinstance(exc, errors.KeyringLocked):
        return "the keyring is locked"
    if isinstance(exc, errors.InitError):
        # gnome-keyring without an unlocked login collection: "Prompt dismissed"
        return "the keyring is locked or not set up"
    if isinstance(exc, errors.NoKeyringError):
        return "no keyring backend is available"
    return "the keyring refused to store or read an entry"


PROBE_KEY = "agentshell-probe"


class TokenStore:
    """JSON records by key: in the OS keyring (service ``agentshell``) when a secure
    backend exists; otherwise in ``<data>/credentials.json`` (mode 0600) — but only after
    a warning, and never when ``allow_plaintext`` is false.

    A Secret Service that is running but locked looks secure to :func:`keyring_usable`
    and then refuses every write; :meth:`probe` finds that out before anything is at
    stake, and a keyring write that fails later switches the store to the file too."""

    def __init__(
        self,
        data_dir: Path,
        *,
        allow_plaintext: bool = True,
        warn: Callable[[str], None] | None = None,
        service: str = KEYRING_SERVICE,
    ) -> None:
        self.data_dir = data_dir
        self.allow_plaintext = allow_plaintext
        self.service = service
        self._warn = warn or (lambda message: None)
        self._secure: tuple[bool, str] | None = None
        #: why a keyring that looked secure is not used (set by probe() or a failed write)
        self.unusable_reason: str | None = None
        self._probed = False

    @property
    def plaintext_path(self) -> Path:
        return self.data_dir / "credentials.json"

    def backend(self) -> tuple[bool, str]:
        if self._secure is None:
            self._secure = keyring_usable()
        return self._secure

    def probe(self) -> bool:
        """Whether the keyring really works: write, read back and delete a probe entry
        (once per store). When it does not, the store uses the plain-text file from now
        on (still only if ``allow_plaintext``) and :attr:`unusable_reason` says why."""
        secure, _ = self.backend()
        if not secure or self._probed:
            return secure
        self._probed = True
        import keyring

        value = f"probe-{os.getpid()}-{time.time_ns()}"
        try:
            keyring.set_password(self.service, PROBE_KEY, value)
            ok = keyring.get_password(self.service, PROBE_KEY) == value
            keyring.delete_password(self.service, PROBE_KEY)
        except Exception as exc:
            self._unusable(keyring_problem(exc))
            return False
        if not ok:
            self._unusable("the keyring did not return what was stored")
        return ok

    def _unusable(self, reason: str) -> None:
        _, name = self.backend()
        self.unusable_reason = reason
        self._secure = (False, name)

    @property
    def writable(self) -> bool:
        """Whether :meth:`set` can store anything (as far as is known without writing)."""
        return self.backend()[0] or self.allow_plaintext

    def describe(self) -> str:
        """Where records go, in words, for status displays."""
        secure, name = self.backend()
        if secure:
            return f"keyring ({name})"
        why = f"{self.unusable_reason}; " if self.unusable_reason else ""
        if not self.allow_plaintext:
            return f"nowhere ({why}no secure keyring and allow_plaintext = false)"
        return f"plain-text file {self.plaintext_path}" + (
            f" ({self.unusable_reason})" if self.unusable_reason else ""
        )

    def get(self, key: str) -> dict[str, Any] | None:
        secure, _ = self.backend()
        raw: str | None
        if secure:
            import keyring

            try:
                raw = keyring.get_password(self.service, key)
            except Exception:
                raw = None
        else:
            raw = self._read_file().get(key)
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        if isinstance(value, dict):
            for field in ("access_token", "refresh_token", "token"):
                if isinstance(value.get(field), str):
                    register_secret(value[field])
            return value
        return None

    def set(self, key: str, value: Mapping[str, Any]) -> str:
        """Store ``value``; return where it went (for the user, no secrets)."""
        data = json.dumps(dict(value), sort_keys=True)
        secure, name = self.backend()
        if secure:
            import keyring

            try:
                keyring.set_password(self.service, key, data)
                return f"keyring ({name})"
            except Exception as exc:  # locked meanwhile: fall back as if probed
                self._unusable(keyring_problem(exc))
        why = f" ({self.unusable_reason})" if self.unusable_reason else ""
        if not self.allow_plaintext:
            raise AuthRequired(
                f"no secure keyring is available{why} and plain-text storage is disabled "
                "(allow_plaintext = false)"
            )
        self._warn(
            f"no secure keyring available{why}: credentials are stored in plain text in "
            f"{self.plaintext_path} (mode 0600)"
        )
        records = self._read_file()
        records[key] = data
        self._write_file(records)
        return f"plain-text file {self.plaintext_path}"

    def delete(self, key: str) -> bool:
        secure, _ = self.backend()
        if secure:
            import keyring
            from keyring.errors import PasswordDeleteError

            try:
                keyring.delete_password(self.service, key)
                return True
            except PasswordDeleteError:
                return False
        records = self._read_file()
        if records.pop(key, None) is None:
            return False
        self._write_file(records)
        return True

    def _read_file(self) -> dict[str, str]:
        try:
            value = json.loads(self.plaintext_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    def _write_file(self, records: Mapping[str, str]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.plaintext_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(dict(records), fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.plaintext_path)


ProviderFactory = Callable[[Any], AuthProvider]


class AuthRegistry:
    """Resolves an agent's ``auth`` setting to :class:`Credentials`."""

    def __init__(self, token_store: TokenStore) -> None:
        self.token_store = token_store
        self._factories: dict[str, ProviderFactory] = {}
        self._providers: dict[str, AuthProvider] = {}
        self.shell: Any = None

    def add_provider(self, name: str, factory: ProviderFactory) -> None:
        self._factories[name] = factory

    def remove_provider(self, name: str) -> bool:
        """Forget a provider (its plugin failed); True if it was registered."""
        self._providers.pop(name, None)
        return self._factories.pop(name, None) is not None

    @property
    def provider_names(self) -> list[str]:
        return sorted(self._factories)

    def provider(self, name: str) -> AuthProvider | None:
        if name not in self._providers and name in self._factories:
            self._providers[name] = self._factories[name](self.shell)
        return self._providers.get(name)

    def describe(self, ref: str | None) -> str:
        """Where credentials come from and whether they are there, without the secret."""
        if not ref:
            return "none"
        kind, _, rest = ref.partition(":")
        if kind == "env":
            return f"env {rest}: {'set' if os.environ.get(rest) else 'missing'}"
        if kind == "keyring":
            return f"keyring {rest}"
        return f"provider {ref}" + ("" if kind in self._factories else " (unknown provider)")

    def available(self, ref: str | None) -> bool | None:
        """Cheap check used by ``/agents``: ``None`` when it cannot be known cheaply."""
        if not ref:
            return True
        kind, _, rest = ref.partition(":")
        if kind == "env":
            return bool(os.environ.get(rest))
        return None

    async def credentials(self, agent: AgentSpec, *, refresh: bool = False) -> Credentials | None:
        """Credentials for ``agent`` or ``None`` when it needs none. Raises
        :class:`AuthRequired` with the fixing command when they are missing."""
        ref = agent.auth
        if not ref:
            return None
        kind, _, rest = ref.partition(":")
        if kind == "env":
            value = os.environ.get(rest)
            if not value:
                raise AuthRequired(
                    f"{agent.name}: environment variable {rest} is not set",
                    fix=f"/set-env {rest}=<value>",
                    agent=agent.name,
                )
            return Credentials(token=value, kind="api_key", source=f"env:{rest}")
        if kind == "keyring":
            value = keyring_get(rest)
            if not value:
                service, _, name = rest.partition("/")
                raise AuthRequired(
                    f"{agent.name}: no keyring entry {rest}",
                    fix=f"keyring set {service} {name}",
                    agent=agent.name,
                )
            return Credentials(token=value, kind="api_key", source=f"keyring:{rest}")
        provider = self.provider(kind)
        if provider is None:
            known = ", ".join(self.provider_names) or "none"
            raise AuthRequired(
                f"{agent.name}: unknown auth {ref!r} (use env:NAME, keyring:SERVICE/NAME or a "
                f"provider: {known})",
                agent=agent.name,
            )
        account = rest or None
        creds = (
            await provider.on_unauthorized(account)
            if refresh
            else await provider.get_credentials(account)
        )
        if creds is None:
            raise AuthRequired(
                f"{agent.name}: not logged in to {kind}",
                fix=provider.login_command(account),
                agent=agent.name,
            )
        return creds


__all__ = [
    "KEYRING_SERVICE",
    "AuthProvider",
    "AuthRegistry",
    "Credentials",
    "TokenStore",
    "keyring_get",
    "keyring_problem",
    "keyring_usable",
]
