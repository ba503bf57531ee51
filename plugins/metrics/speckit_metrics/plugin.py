"""The metrics plugin: charges every agent call, watches the budget, and shows it all.

* ``after_agent_call`` charges each call from its own usage and model (cached replays
  cost 0 and count as replays; recorded answers keep ``cost_usd = None`` and are counted
  as recorded, since a recording was never priced) and sets ``response.cost_usd``, so
  the runner's ``agent.call.finished`` event carries the cost.
* ``before_agent_call`` (run last, so a cache answering the call wins) refuses the
  call with ``FatalAgentError`` once the budget is spent, when ``halt_on_budget``.
* ``metrics.tokens`` is emitted once per stage, when the stage ends: the plugin that
  ran it says so through the generic ``work_completed`` hook with the labels its calls
  carried (the consensus plugin does, right after its verdict). A caller that never
  says so still gets one: when the first call of the next unit (another spec, stage
  or ``trace_parent``) arrives, and for the last one when the shell stops.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING, Any

from agentshell.agents import AgentCall, AgentResponse
from agentshell.commands import Arg, Command, CommandContext, Option
from agentshell.errors import CommandError, FatalAgentError
from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell import Register, Shell

    from .state import MetricsState, StageId

# ledger, pricing and report load with the first session, not at plugin import
SECTION = "metrics"

#: the running session's state; hooks that only get ``call`` reach it here
_STATE: MetricsState | None = None


@hookimpl
def register_config(register: Register) -> None:
    from .settings import MetricsSettings

    register(SECTION, MetricsSettings)


@hookimpl
def shell_started(shell: Shell) -> None:
    global _STATE
    from .state import SESSION_KEY, MetricsState, SessionApi

    _STATE = MetricsState.build(shell)
    shell.state[SECTION] = _STATE
    shell.state[SESSION_KEY] = SessionApi(_STATE)


@hookimpl
def shell_stopping(shell: Shell) -> None:
    global _STATE
    from .state import state_of

    st = state_of(shell)
    if st is not None and st.current_stage is not None:
        _emit_tokens(st, st.current_stage)
        st.current_stage = None
    if _STATE is st:
        _STATE = None
        shell.state.pop("metrics.session", None)


@hookimpl(trylast=True)
def before_agent_call(call: AgentCall) -> None:
    st = _STATE
    if st is None:
        return
    if call.attempt == 1:
        st.prices.warm_up()
    ledger = st.ledger
    if st.refresh().halt_on_budget and ledger.over_budget:
        from .ledger import usd

        raise FatalAgentError(
            f"budget exceeded: {usd(ledger.spent_usd)} spent of {usd(ledger.budget_usd, 2)} "
            "(raise [plugins.metrics] budget_usd or set halt_on_budget = false)",
            agent=call.agent.name,
        )


def _provider(call: AgentCall) -> str | None:
    provider = call.agent.options.get("provider")
    return provider if isinstance(provider, str) and provider else None


def _replay_key(call: AgentCall) -> str:
    """What makes two replays "the same call": the agent and its prompt (the caller's
    ``prompt_hash``, else a hash of the request), for the loop warning."""
    given = call.context.get("prompt_hash")
    if isinstance(given, str) and given:
        return f"{call.agent.name}:{given}"
    request = call.request
    payload = json.dumps(
        [request.system, request.prompt, request.messages], sort_keys=True, default=str
    )
    return f"{call.agent.name}:{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


@hookimpl
def after_agent_call(call: AgentCall, response: AgentResponse) -> None:
    st = _STATE
    if st is None:
        return
    spec_id, stage = call.context.get("spec_id"), call.context.get("stage")
    _stage_boundary(st, call)
    model = response.model or call.agent.model
    st.refresh()
    cost: float | None
    if response.recorded:
        # a recording was never priced, also when the resume cache serves it again:
        # unknown, shown as "recorded" (never a misleading $0)
        cost = None
    elif response.cached:
        cost = 0.0  # a cache hit: this session paid nothing for it
    else:
        cost, priced_as = st.prices.cost(
            response.usage, [response.model, call.agent.model], _provider(call)
        )
        model = priced_as or model
    response.cost_usd = cost
    crossed = st.ledger.charge(
        call_id=call.call_id,
        agent=call.agent.name,
        usage=response.usage,
        cost=cost,
        model=model,
        spec_id=spec_id if isinstance(spec_id, str) else None,
        stage=stage if isinstance(stage, str) else None,
        cached=response.cached,
        recorded=response.recorded and not response.cached,
        replay_key=_replay_key(call) if response.cached else None,
    )
    # one call can cross several thresholds: one warning line (the highest), but every
    # crossed threshold is still its own BudgetAlert event
    for threshold in sorted(crossed):
        _alert(st, threshold, warn=threshold == max(crossed))


@hookimpl
def agent_call_failed(call: AgentCall, error: BaseException) -> None:
    st = _STATE
    if st is None:
        return
    _stage_boundary(st, call)
    spec_id, stage = call.context.get("spec_id"), call.context.get("stage")
    st.ledger.fail(
        call.agent.name,
        spec_id if isinstance(spec_id, str) else None,
        stage if isinstance(stage, str) else None,
        cancelled=isinstance(error, asyncio.CancelledError),
    )


# optional: on a host without the hook the plugin still loads and closes each stage
# at the next stage's first call instead
@hookimpl(optionalhook=True)
def work_completed(shell: Shell, context: dict[str, Any]) -> None:
    """A stage ended (whoever ran it says so with its calls' labels): its TokenMetrics
    now, not when the next stage's first call happens to arrive."""
    st = _STATE if _STATE is not None and _STATE.shell is shell else None
    stage = context.get("stage")
    if st is None or not isinstance(stage, str) or not stage:
        return
    spec_id = context.get("spec_id")
    trace_parent = context.get("trace_parent")
    key: StageId = (
        spec_id if isinstance(spec_id, str) else None,
        stage,
        trace_parent if isinstance(trace_parent, str) else None,
    )
    if st.current_stage is not None and st.current_stage != key:
        _emit_tokens(st, st.current_stage)  # an unannounced unit before this one
    _emit_tokens(st, key)
    st.current_stage = None  # closed: the next call opens the next stage


def _stage_boundary(st: MetricsState, call: AgentCall) -> None:
    stage = call.context.get("stage")
    if not isinstance(stage, str) or not stage:
        return
    key: StageId = (call.context.get("spec_id"), stage, call.context.get("trace_parent"))
    if key != st.current_stage:
        if st.current_stage is not None:
            _emit_tokens(st, st.current_stage)
        st.current_stage = key


def _emit_tokens(st: MetricsState, key: StageId) -> None:
    from .events import MetricsTokens

    m = st.ledger.session
    st.shell.telemetry.emit(
        MetricsTokens(
            spec_id=key[0],
            stage=key[1],
            total=m.running_total,
            last_turn=m.last_turn,
            turn_count=m.turn_count,
            estimated_next_prompt_tokens=m.estimated_next_prompt_tokens(),
            cost_usd=st.ledger.total.known_cost,
        )
    )


def _alert(st: MetricsState, threshold: int, *, warn: bool = True) -> None:
    from .events import BudgetAlert
    from .ledger import usd

    ledger = st.ledger
    halt = (
        " — further agent calls are refused"
        if (threshold >= 100 and st.settings.halt_on_budget)
        else ""
    )
    if warn:
        st.shell.output.warn(
            f"budget {threshold}%: {usd(ledger.spent_usd)} spent of "
            f"{usd(ledger.budget_usd, 2)}{halt}"
        )
    event = BudgetAlert(
        threshold_pct=threshold, spent_usd=ledger.spent_usd, budget_usd=ledger.budget_usd
    )
    st.shell.telemetry.emit(event)


@hookimpl
def status_segments(shell: Shell) -> str | None:
    st = _STATE if _STATE is not None and _STATE.shell is shell else None
    if st is None:
        return None
    from .ledger import tokens_of, toolbar_cost
    from .report import human

    ledger = st.ledger
    m = ledger.session
    text = f"tokens {human(tokens_of(m.running_total))} · {toolbar_cost(ledger.total)}"
    # the estimate only once a turn was seen: before that it is a made-up default
    if m.turn_count:
        text += f" · next ~{human(m.estimated_next_prompt_tokens())}"
    return text


def metrics_command(ctx: CommandContext) -> int:
    from .report import as_json, render
    from .state import state_of

    st = state_of(ctx.shell)
    if st is None:
        raise CommandError("the metrics plugin has not started")
    if ctx.args.action == "reset":
        st.ledger.reset()
        st.current_stage = None
        ctx.out.success("metrics reset")
        return 0
    if ctx.args.json:
        ctx.out.json(as_json(st.ledger, st.prices))
    else:
        render(ctx.out, st.ledger, st.prices)
    return 0


def _complete_action(shell: Shell, text: str) -> list[str]:
    """Both words after ``/metrics ``: a single Tab never inserts ``reset`` alone (a
    reset forgets the session's books), it lists ``reset`` and ``--json``."""
    return [w for w in ("reset", "--json") if w.startswith(text)]


@hookimpl
def register_commands(register: Register) -> None:
    register(
        Command(
            "metrics",
            metrics_command,
            help="token usage, cost and budget: session, per agent, per stage",
            args=[
                Arg(
                    "action",
                    "reset: start counting from zero",
                    required=False,
                    choices=["reset"],
                    complete=_complete_action,
                )
            ],
            options=[Option("--json", "print JSON", flag=True)],
            description=(
                "Cost comes from each call's own usage and model (genai-prices, or the "
                "[plugins.metrics.prices] table); cached replays cost 0; recorded "
                "answers (the demo's replay agents) show as recorded, not priced."
            ),
        )
    )
