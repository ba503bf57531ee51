"""The faults plugin's session state, the errors it raises and ``/faults``; loaded
when a session starts, so importing the plugin stays cheap."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentshell.agents import AgentCall
from agentshell.commands import CommandContext
from agentshell.errors import AgentDisconnected, AgentError, AgentTimeout, CommandError, RateLimited

from .injector import Fault, FaultInjector
from .settings import FaultsSettings
from .spec import (
    ENV_FAULTS,
    ENV_RESET,
    ENV_SCOPE,
    ENV_TIMEOUT,
    LABELS,
    ResetHint,
    parse_faults,
    parse_reset,
    parse_timeout_ms,
    scope_enabled,
)

if TYPE_CHECKING:
    from agentshell import Shell

SECTION = "faults"
#: how to switch injection on, shown whole by /faults while it is off
OFF_HINT = f"off: set {ENV_SCOPE}=spec_kit or [plugins.faults] enabled = true"
SET_WHY = "/faults set"  # why injection is on when only a /faults set turned it on
CLEAR_PLAN = "/faults clear"


@dataclass
class FaultsState:
    shell: Shell
    injector: FaultInjector
    enabled: bool
    why: str
    source: str  # the CODEX_FAULTS text, as the environment gave it
    reset: ResetHint | None
    timeout_ms: int
    problems: list[str] = field(default_factory=list)  # the environment's, named by variable
    #: where the active counts came from: CODEX_FAULTS, or the /faults set/clear that
    #: replaced them (the environment's problems are never attributed to a set)
    plan: str = ENV_FAULTS


def load_state(shell: Shell) -> FaultsState:
    """Read the environment and ``[plugins.faults]`` into a state (no side effects)."""
    settings: FaultsSettings = shell.plugin_config(SECTION)
    env = shell.environ
    scope = env.get(ENV_SCOPE)
    if scope_enabled(scope):
        enabled, why = True, f"{ENV_SCOPE}={scope.strip() if scope else ''}"
    elif settings.enabled:
        enabled, why = True, "[plugins.faults] enabled = true"
    else:
        enabled, why = False, OFF_HINT
    source = env.get(ENV_FAULTS, "")
    parsed = parse_faults(source)
    reset, reset_problem = parse_reset(env.get(ENV_RESET, ""))
    timeout_ms, timeout_problem = parse_timeout_ms(env.get(ENV_TIMEOUT))
    problems = parsed.problems + [p for p in (reset_problem, timeout_problem) if p]
    return FaultsState(
        shell=shell,
        injector=FaultInjector(parsed.counts, agents=settings.agents, stages=settings.stages),
        enabled=enabled,
        why=why,
        source=source.strip(),
        reset=reset,
        timeout_ms=timeout_ms,
        problems=problems,
    )


def make_error(st: FaultsState, call: AgentCall, fault: Fault) -> AgentError:
    from .events import FaultInjected

    agent = call.agent.name
    label = LABELS[fault.kind]
    reset_at: dt.datetime | None = None
    error: AgentError
    if fault.kind == "disconnect":
        error = AgentDisconnected(f"injected fault: connection dropped ({ENV_FAULTS})", agent=agent)
    elif fault.kind == "rate_limit":
        if st.reset is not None:
            reset_at = st.reset.reset_at(dt.datetime.now(dt.UTC))
        hint = f"; retry after {reset_at.isoformat(timespec='milliseconds')}" if reset_at else ""
        error = RateLimited(
            f"injected fault: rate limited, HTTP 429 ({ENV_FAULTS}){hint}",
            reset_at=reset_at,
            agent=agent,
        )
    else:
        error = AgentTimeout(
            f"injected fault: no answer within {st.timeout_ms} ms ({ENV_TIMEOUT}={st.timeout_ms})",
            timeout_s=st.timeout_ms / 1000,
            agent=agent,
        )
    stage, spec_id = call.context.get("stage"), call.context.get("spec_id")
    parent = call.context.get("trace_parent")
    st.shell.telemetry.emit(
        FaultInjected(
            fault=fault.kind,
            agent=agent,
            stage=stage if isinstance(stage, str) else None,
            spec_id=spec_id if isinstance(spec_id, str) else None,
            attempt=call.attempt,
            remaining=fault.remaining,
            reset_at=reset_at.isoformat() if reset_at else None,
            timeout_ms=st.timeout_ms if fault.kind == "timeout" else None,
            trace_parent=parent if isinstance(parent, str) else None,
        )
    )
    st.shell.output.info(
        f"fault injected: {label} -> {agent} "
        f"(attempt {call.attempt}; {label} left: {fault.remaining})"
    )
    return error


def state_of(shell: Shell) -> FaultsState:
    st = shell.state.get(SECTION)
    if not isinstance(st, FaultsState):
        raise CommandError("the faults plugin has not started")
    return st


def faults_command(ctx: CommandContext) -> FaultsState:
    """Run /faults; return the state (the plugin switches injection on after a set)."""
    st = state_of(ctx.shell)
    action = ctx.args.action
    spec = ",".join(ctx.args.spec or [])  # "disconnect:2, 429:1" arrives as two words
    if action == "clear":
        if spec:
            raise CommandError("/faults clear takes no argument")
        st.injector.clear()
        st.plan = CLEAR_PLAN
        ctx.out.success("fault counters cleared")
        return st
    if action == "set":
        if not spec:
            raise CommandError("/faults set needs counts, e.g. /faults set disconnect:2,429:1")
        parsed = parse_faults(spec, source="/faults set")
        if parsed.bad:
            # rejected whole: half a plan is not what was asked for
            bad = "; ".join(f"entry {entry!r}: {why}" for entry, why in parsed.bad)
            raise CommandError(
                f"/faults set rejected, nothing changed (remaining stays "
                f"{st.injector.describe()}, from {st.plan}): {bad}"
            )
        st.injector.set_counts(parsed.counts)
        st.plan = "/faults set " + ",".join(e.strip() for e in spec.split(",") if e.strip())
        if not st.enabled:  # an explicit command is consent enough for this session
            st.enabled, st.why = True, SET_WHY
        ctx.out.success(f"faults set: {st.injector.describe()}")
        return st
    if spec:
        raise CommandError(
            f"/faults: unexpected argument {spec!r}; usage: /faults [set <counts>|clear]"
        )
    _show(ctx, st)
    return st


def _show(ctx: CommandContext, st: FaultsState) -> None:
    injector = st.injector
    remaining, injected = injector.remaining, injector.injected
    # the state goes on its own line: in a table cell the hint wraps mid-phrase
    # after a clear the line says so: "on (/faults set)" beside "active plan /faults
    # clear" read as if the set's counts were still armed
    cleared = "; counters cleared by /faults clear, nothing to inject"
    why = st.why + (cleared if st.plan == CLEAR_PLAN else "")
    ctx.out.info(f"fault injection on ({why})" if st.enabled else f"fault injection is {st.why}")
    ignored = sum(1 for p in st.problems if p.startswith(f"{ENV_FAULTS}:"))
    notes = [f"replaced by {' '.join(st.plan.split()[:2])}"] if st.plan != ENV_FAULTS else []
    if ignored:
        notes.append(f"{ignored} {'entry' if ignored == 1 else 'entries'} ignored, see below")
    env_text = (st.source or "(unset)") + (f" ({'; '.join(notes)})" if notes else "")
    rows = [
        ("active plan", st.plan),  # where the remaining counts came from
        (ENV_FAULTS, env_text),
        ("remaining", ", ".join(f"{LABELS[k]}:{n}" for k, n in remaining.items())),
        ("injected", ", ".join(f"{LABELS[k]}:{n}" for k, n in injected.items())),
        (ENV_RESET, st.reset.describe() if st.reset else "(none: backoff)"),
        (ENV_TIMEOUT, str(st.timeout_ms)),
        ("agents", ", ".join(sorted(injector.agents)) or "(all)"),
        ("stages", ", ".join(sorted(injector.stages)) or "(all)"),
    ]
    ctx.out.table(["setting", "value"], rows, title="Fault injection")
    for problem in st.problems:  # whole lines: a table would wrap them
        ctx.out.print(f"problem: {problem}")
