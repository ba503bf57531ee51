"""Every hook agentshell defines: the contract between the host and its plugins.

This module is the only place hooks are specified. Implement a hook by decorating a
function of the same name with :data:`agentshell.hookimpl`. Any implementation may be
a plain function or an ``async def``: the host awaits whatever is awaitable.

Collection hooks receive a ``register`` callback instead of returning values, so the
host knows which plugin registered what and can report name clashes between plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .agents import AgentCall, AgentResponse
    from .shell import Shell

hookspec = pluggy.HookspecMarker("agentshell")

Register = Callable[..., None]


# -- collection hooks -------------------------------------------------------------


@hookspec
def register_commands(register: Register) -> None:
    """Register slash commands.

    Called once at start-up, after every plugin is loaded. Call
    ``register(Command(...))`` for each command the plugin provides (see
    :class:`agentshell.Command`; ``name`` without the leading slash). Registering a
    name another plugin already registered is reported as a clash and the first
    registration is kept. Return nothing.
    """


@hookspec
def register_agent_backends(register: Register) -> None:
    """Register agent backends.

    Called once at start-up. Call ``register(name, factory)`` where ``factory(shell)``
    returns an object following :class:`agentshell.AgentBackend` (an async
    ``complete(call) -> AgentResponse`` and an async ``aclose()``). Agents select a
    backend by ``name`` in their ``backend =`` setting. Factories are only called when
    an agent uses the backend, so heavy imports belong inside them. Return nothing.

    ``register(name, factory, check=fn)`` also gives a check run on every agent of
    that backend when the configuration is checked: ``fn(spec)`` raises (``ValueError``
    or an :class:`agentshell.errors.AgentshellError`) with one line saying what is
    wrong, so a missing option is a config error, not a failure on the first call.
    """


@hookspec
def register_telemetry_sinks(register: Register) -> None:
    """Register telemetry sinks.

    Called once at start-up. Call ``register(name, factory, config_model=None)`` where
    ``factory(shell, settings)`` returns an object following
    :class:`agentshell.TelemetrySink` (``handle(event)`` and ``close()``), and
    ``settings`` is the validated ``[telemetry.<name>]`` section (an instance of
    ``config_model`` when given, else a dict). Sinks are created only when
    configuration selects them. Return nothing.
    """


@hookspec
def register_auth_providers(register: Register, shell: Shell) -> None:
    """Register auth providers.

    Called at start-up once configuration is validated, and again after
    ``/config reload`` (the previous registrations are dropped first), so the names may
    come from configuration: ``shell.config`` and ``shell.plugin_config(section)`` are
    ready; telemetry and agents are not yet. Call ``register(name, factory)`` where
    ``factory(shell)`` returns an object following :class:`agentshell.AuthProvider`;
    it runs on first use. An agent whose ``auth`` setting is ``"<name>"`` or
    ``"<name>:<account>"`` gets its credentials from that provider. Implementations that
    do not need ``shell`` may leave it out. Return nothing.
    """


@hookspec
def register_config(register: Register) -> None:
    """Register a plugin's configuration section.

    Called when configuration is validated (start-up, and whenever ``/config reload``
    runs). Call ``register(section, model)`` where ``model`` is a pydantic model
    class; the ``[plugins.<section>]`` table of the merged configuration is validated
    against it and available as ``shell.plugin_config(section)``. A missing table
    gives the model's defaults. Return nothing.
    """


# -- lifecycle --------------------------------------------------------------------


@hookspec
def shell_started(shell: Shell) -> None:
    """The shell is ready: config validated, plugins registered, telemetry running.

    Called once before the first prompt (REPL) or the first command (``agentshell
    run``). ``shell`` is the public :class:`agentshell.Shell`. Use it to open resources
    or print warnings. Return nothing.
    """


@hookspec
def shell_stopping(shell: Shell) -> None:
    """The shell is about to exit (``/quit``, Ctrl-D, end of ``agentshell run``).

    Called once; telemetry is still running, so events emitted here are delivered.
    Close what ``shell_started`` opened. Return nothing.
    """


@hookspec
def work_completed(shell: Shell, context: dict[str, Any]) -> None:
    """A plugin finished a unit of work made of agent calls (a pipeline stage, say).

    Called when a plugin awaits ``shell.work_completed(context)``; ``context`` holds
    the labels that unit's agent calls carried in ``call.context`` (such as
    ``spec_id``, ``stage``, ``trace_parent``). The host gives the labels no meaning.
    Plugins that keep books per unit close them here, when the unit ends, instead of
    guessing the end from the next unit's first call. Return nothing.
    """


# -- agent-call interception ------------------------------------------------------


@hookspec
def before_agent_call(call: AgentCall) -> AgentResponse | None:
    """Called before every attempt of an agent call, before the backend.

    ``call`` is the :class:`agentshell.AgentCall` (agent spec, request, attempt
    number, and ``call.context``: what the caller passed, e.g. a pipeline's ids, and
    ``trace_parent``, the key of the span the call hangs under).
    An implementation may:

    * return ``None`` to let the call go on;
    * return an :class:`agentshell.AgentResponse` to answer the call without the
      backend (a cache or a replay store) — the first response returned wins and
      the remaining implementations are not called;
    * raise an :class:`agentshell.AgentError` (for instance ``AgentDisconnected``) as
      if the backend had raised it; the runner's retry policy handles it.
    """


@hookspec
def after_agent_call(call: AgentCall, response: AgentResponse) -> None:
    """Called once after an agent call succeeded, with the final response.

    ``response.attempts`` says how many attempts it took and ``response.cached`` is
    true when a ``before_agent_call`` implementation answered it. Return nothing.

    Errors are reported as warnings and the call still succeeds, except
    :class:`agentshell.errors.NotStored`: raise it when the response could not be
    durably stored (disk full); every other implementation still runs, then the call
    fails with it, so the command fails with its message instead of reporting success.
    """


@hookspec
def agent_call_failed(call: AgentCall, error: BaseException) -> None:
    """Called once after an agent call failed for good (retries exhausted, a
    non-retryable error, or cancellation), with the final error. Return nothing.
    """


# -- input that is not a command ---------------------------------------------------


@hookspec(firstresult=True)
def handle_text(shell: Shell, text: str) -> int | None:
    """Handle a line that is not a slash command (plain text: a chat message).

    Called by :meth:`agentshell.Shell.execute` for every line that does not start
    with ``/`` — typed at the prompt, a multi-line paste taken as one message, piped
    stdin, ``agentshell run "some text"`` — except the bare words that mean a command
    (``exit``, ``quit``, ``help``: the shell points at ``/quit`` and ``/help``
    instead). ``text`` is stripped and may span several lines.

    Return the exit status (``0`` for success) when the plugin handled the text, or
    ``None`` to leave it to the next implementation; the first status returned wins.
    Raise an :class:`agentshell.AgentshellError` (a ``CommandError``, an
    ``AgentError``) for a one-line error the shell prints. With no implementation
    handling it, the shell says how to get a chat plugin. May be ``async``; Ctrl-C
    cancels it like a command.
    """


# -- presentation -----------------------------------------------------------------


@hookspec
def status_segments(shell: Shell) -> list[str] | str | None:
    """Return text for the REPL's bottom toolbar.

    Called on every toolbar refresh, so keep it cheap (no I/O). Return a string, a
    list of strings, or ``None`` for nothing. Segments are shown in plugin order,
    separated by ``" | "``.
    """


def _hook_names() -> list[str]:
    return [name for name, value in globals().items() if getattr(value, "agentshell_spec", None)]


HOOK_NAMES: tuple[str, ...] = tuple(_hook_names())

__all__ = ["HOOK_NAMES", "Register", "hookspec"]
