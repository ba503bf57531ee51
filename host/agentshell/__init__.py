"""agentshell: a small, fast, pluggable agent shell.

The public API plugins use. Names are imported on first use (PEP 562) so that
``import agentshell`` — and ``agentshell --version`` — stays instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

_EXPORTS: dict[str, str] = {
    # hooks and plugins
    "hookimpl": "plugins",
    "hookspec": "hookspecs",
    "Register": "hookspecs",
    "PluginHost": "plugins",
    "PluginInfo": "plugins",
    # the shell and commands
    "Shell": "shell",
    "Command": "commands",
    "CommandContext": "commands",
    "Arg": "commands",
    "Option": "commands",
    "ParsedArgs": "commands",
    "Output": "output",
    "AnswerStream": "answer",
    # agents
    "AgentBackend": "agents",
    "AgentCall": "agents",
    "AgentRequest": "agents",
    "AgentResponse": "agents",
    "AgentRunner": "agents",
    "AgentSpec": "agents",
    "Delta": "agents",
    "Outcome": "agents",
    "Progress": "agents",
    "TokenUsage": "agents",
    "parse_json_content": "agents",
    # errors
    "AgentshellError": "errors",
    "AgentError": "errors",
    "AgentDisconnected": "errors",
    "AgentTimeout": "errors",
    "RateLimited": "errors",
    "AuthRequired": "errors",
    "BadAgentOutput": "errors",
    "FatalAgentError": "errors",
    "CommandError": "errors",
    "NotStored": "errors",
    "ConfigError": "errors",
    # telemetry
    "Event": "telemetry",
    "TelemetryBus": "telemetry",
    "TelemetrySink": "telemetry",
    "StartSpan": "telemetry",
    "EndSpan": "telemetry",
    "SetAttributes": "telemetry",
    "AddSpanEvent": "telemetry",
    # the host's own events, for sinks and hooks that watch agent calls
    "AgentCallStarted": "telemetry",
    "AgentCallRetry": "telemetry",
    "AgentCallFinished": "telemetry",
    "AgentCallFailed": "telemetry",
    # auth
    "AuthProvider": "auth",
    "Credentials": "auth",
    "TokenStore": "auth",
    "keyring_usable": "auth",
    # the REPL's completer: a plugin's tests drive Tab completion through it
    "CommandCompleter": "repl",
    # config
    "Secret": "config",
    # helpers
    "redact": "redact",
    "register_secret": "redact",
    "atomic_write": "files",
    "format_usd": "money",
    "describe_http_error": "neterrors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentshell' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from .agents import (
        AgentBackend as AgentBackend,
        AgentCall as AgentCall,
        AgentRequest as AgentRequest,
        AgentResponse as AgentResponse,
        AgentRunner as AgentRunner,
        AgentSpec as AgentSpec,
        Delta as Delta,
        Outcome as Outcome,
        Progress as Progress,
        TokenUsage as TokenUsage,
        parse_json_content as parse_json_content,
    )
    from .answer import AnswerStream as AnswerStream
    from .auth import (
        AuthProvider as AuthProvider,
        Credentials as Credentials,
        TokenStore as TokenStore,
        keyring_usable as keyring_usable,
    )
    from .commands import (
        Arg as Arg,
        Command as Command,
        CommandContext as CommandContext,
        Option as Option,
        ParsedArgs as ParsedArgs,
    )
    from .config import Secret as Secret
    from .errors import (
        AgentDisconnected as AgentDisconnected,
        AgentError as AgentError,
        AgentshellError as AgentshellError,
        AgentTimeout as AgentTimeout,
        AuthRequired as AuthRequired,
        BadAgentOutput as BadAgentOutput,
        CommandError as CommandError,
        ConfigError as ConfigError,
        FatalAgentError as FatalAgentError,
        NotStored as NotStored,
        RateLimited as RateLimited,
    )
    from .files import atomic_write as atomic_write
    from .hookspecs import Register as Register, hookspec as hookspec
    from .money import format_usd as format_usd
    from .neterrors import describe_http_error as describe_http_error
    from .output import Output as Output
    from .plugins import PluginHost as PluginHost, PluginInfo as PluginInfo, hookimpl as hookimpl
    from .redact import redact as redact, register_secret as register_secret
    from .repl import CommandCompleter as CommandCompleter
    from .shell import Shell as Shell
    from .telemetry import (
        AddSpanEvent as AddSpanEvent,
        AgentCallFailed as AgentCallFailed,
        AgentCallFinished as AgentCallFinished,
        AgentCallRetry as AgentCallRetry,
        AgentCallStarted as AgentCallStarted,
        EndSpan as EndSpan,
        Event as Event,
        SetAttributes as SetAttributes,
        StartSpan as StartSpan,
        TelemetryBus as TelemetryBus,
        TelemetrySink as TelemetrySink,
    )
