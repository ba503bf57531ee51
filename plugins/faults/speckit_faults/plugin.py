"""The faults plugin: injects disconnects, rate limits and timeouts before the backend.

Off unless ``CODEX_FAULTS_SCOPE=spec_kit`` (or ``speckit``) or ``[plugins.faults]
enabled = true``; while off, ``before_agent_call`` returns at its first line. When on,
each attempt of a targeted call takes at most one fault (disconnect, then 429, then
timeout) and raises the same taxonomy error a real backend raises, so the runner's
own retry policy handles it: that is the path these faults exist to exercise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentshell.agents import AgentCall
from agentshell.commands import Arg, Command, CommandContext
from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell import Register, Shell

    from .runtime import FaultsState

SECTION = "faults"

#: the running session's state while injection is on; None means off, and the hook
#: returns at once
_ACTIVE: FaultsState | None = None


@hookimpl
def register_config(register: Register) -> None:
    from .settings import FaultsSettings

    register(SECTION, FaultsSettings)


@hookimpl
def shell_started(shell: Shell) -> None:
    global _ACTIVE
    from .runtime import load_state

    st = load_state(shell)
    shell.state[SECTION] = st
    if not st.enabled:
        # off stays quiet, except about a fault setting someone wrote and got wrong:
        # a line per problem, so a typo does not go unnoticed until injection is on
        for problem in st.problems:  # one line per bad entry, as when it is on
            shell.output.warn(f"fault injection is off; {problem}")
        return
    for problem in st.problems:
        shell.output.warn(problem)
    _ACTIVE = st
    if st.injector.pending:
        shell.output.info(f"fault injection on ({st.why}): {st.injector.describe()}")


@hookimpl
def shell_stopping(shell: Shell) -> None:
    global _ACTIVE
    if _ACTIVE is not None and _ACTIVE.shell is shell:
        _ACTIVE = None


@hookimpl
def before_agent_call(call: AgentCall) -> None:
    st = _ACTIVE
    if st is None:
        return
    fault = st.injector.take(call.agent.name, call.context.get("stage"))
    if fault is not None:
        from .runtime import make_error

        raise make_error(st, call, fault)


def faults_command(ctx: CommandContext) -> int:
    global _ACTIVE
    from .runtime import faults_command as run

    st = run(ctx)
    if st.enabled and _ACTIVE is not st:  # /faults set switched injection on
        _ACTIVE = st
    return 0


@hookimpl
def register_commands(register: Register) -> None:
    register(
        Command(
            "faults",
            faults_command,
            help="show fault injection; /faults set disconnect:2,429:1 ; /faults clear",
            args=[
                Arg("action", "set or clear", required=False, choices=["set", "clear"]),
                Arg(
                    "spec",
                    "counts for set, e.g. disconnect:2,429:1,timeout:1",
                    required=False,
                    variadic=True,
                ),
            ],
            description=(
                "Faults are on when CODEX_FAULTS_SCOPE=spec_kit or [plugins.faults] "
                "enabled = true. CODEX_FAULTS=disconnect:3,429:1,timeout:2 sets the counts; "
                "CODEX_FAULTS_429_RESET (now+30s, 30s, RFC 3339) is the 429's reset hint; "
                "CODEX_FAULTS_TIMEOUT_MS (default 30000) the simulated timeout."
            ),
        )
    )
