"""``/branches``, ``/resume`` and ``/history``: read-mostly views of the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentshell.commands import Arg, Command, CommandContext, Option, completion_context
from agentshell.errors import CommandError

from .branches import STAGES, check_spec_id, eligible_branches
from .service import STATE_KEY, ResumeService

if TYPE_CHECKING:
    from agentshell import Shell

    from .models import BranchRow
    from .store import Store


def _service(ctx: CommandContext) -> ResumeService:
    service = ctx.shell.state.get(STATE_KEY)
    if not isinstance(service, ResumeService):
        raise CommandError("the resume store is disabled ([plugins.resume] enabled = false)")
    return service


def _spec(value: str) -> str:
    try:
        return check_spec_id(value)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _specs_dir(shell: Shell) -> str:
    """The consensus plugin's specs dir (its published config section; "docs" without it)."""
    try:
        section = shell.plugin_config("consensus")
    except Exception:  # no such section: the plugin is off
        return "docs"
    value = section.get("specs_dir") if isinstance(section, dict) else None
    value = value or getattr(section, "specs_dir", None)
    return value if isinstance(value, str) and value else "docs"


def _known_spec(ctx: CommandContext, store: Store, spec_id: str, command: str) -> None:
    """An unknown spec (no folder, no runs) is an error, as /spec-status gives: "no runs
    yet" would hide a typo. A spec with runs stays readable after its folder is gone."""
    if store.current_branch(spec_id) is not None or store.runs(spec_id):
        return
    folder = Path(ctx.shell.cwd) / _specs_dir(ctx.shell) / spec_id
    if not (folder / "spec.md").is_file():
        raise CommandError(
            f"/{command}: no spec {spec_id!r}: no runs and no "
            f"{_specs_dir(ctx.shell)}/{spec_id}/spec.md"
        )


def _has_command(shell: Shell, name: str) -> bool:
    """Whether /name can run now (a disabled plugin's command is not suggested)."""
    return shell.commands.get(name) is not None


RUN_ID_LEN = 8  # the run-id prefix shown everywhere (as /spec-auto's progress line)
BRANCHES_SYNOPSIS = "/branches <SPEC-ID> [prune --keep N] [--json]"
BRANCHES_USAGE = f"usage: {BRANCHES_SYNOPSIS}"


@dataclass
class _BranchesCommand(Command):
    """/branches with its real grammar in every usage line, the host parser's included
    (the generic ``<spec_id> [<action>]`` would not tell that the action is ``prune``)."""

    @property
    def usage(self) -> str:
        return BRANCHES_SYNOPSIS


RESUME_SYNOPSIS = "/resume <SPEC-ID> [<BRANCH-ID>] [--json]"


@dataclass
class _ResumeCommand(Command):
    """/resume with the grammar of docs/resume.md in every usage line."""

    @property
    def usage(self) -> str:
        return RESUME_SYNOPSIS


def _when(ts: float | None) -> str:
    """UTC to the second, as /spec-status shows times."""
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n:,} {word}"
    return f"{n:,} {word}" + ("es" if word.endswith(("s", "sh", "ch", "x")) else "s")


def _complete_action(shell: Shell, text: str) -> Iterable[str]:
    return [w for w in ("prune",) if w.startswith(text)]


def _complete_specs(shell: Shell, text: str) -> Iterable[str]:
    service = shell.state.get(STATE_KEY)
    if not isinstance(service, ResumeService) or not service.path.exists():
        return []
    return service.store.spec_ids(text)


def _complete_branches(shell: Shell, text: str) -> Iterable[str]:
    """The branch ids of the spec typed before, newest first. Called outside the REPL
    (no line to read the spec from): every branch id starting with ``text``."""
    service = shell.state.get(STATE_KEY)
    if not isinstance(service, ResumeService):
        return []
    typed = completion_context()
    if typed is not None:
        spec = typed.positional[:1]
        return service.complete_branches(spec[0], text) if spec else []
    if not service.path.exists():
        return []
    return service.store.branch_ids(text)


# -- /branches -----------------------------------------------------------------------


def _tree_order(branches: list[BranchRow]) -> list[tuple[BranchRow, int]]:
    """Branches depth-first from the roots, oldest first, with their depth."""
    ids = {b.branch_id for b in branches}
    children: dict[str | None, list[BranchRow]] = {}
    for b in branches:
        parent = b.parent_branch_id if b.parent_branch_id in ids else None
        children.setdefault(parent, []).append(b)
    out: list[tuple[BranchRow, int]] = []

    def walk(parent: str | None, depth: int) -> None:
        for b in children.get(parent, []):
            out.append((b, depth))
            walk(b.branch_id, depth + 1)

    walk(None, 0)
    return out


def branch_overview(store: Store, spec_id: str) -> dict[str, Any]:
    """What ``/branches`` shows, as data: each branch with its status per stage."""
    current = store.current_branch(spec_id)
    statuses: dict[str, dict[str, str]] = {}
    counts: dict[str, dict[str, int]] = {}
    rows: list[dict[str, Any]] = []
    ordered = _tree_order(store.branches(spec_id))
    for b, _ in ordered:
        statuses[b.branch_id] = store.stage_statuses(b.branch_id)
        counts[b.branch_id] = store.output_counts(b.branch_id)
    for b, depth in ordered:
        stages: dict[str, str] = {}
        for stage in STAGES:
            own = statuses[b.branch_id].get(stage)
            n = counts[b.branch_id].get(stage, 0)
            if own is not None:
                stages[stage] = own
            elif n:
                stages[stage] = f"partial ({n})"
            else:
                chain = eligible_branches(b.branch_id, stage, store.lineage)
                source = next(
                    (a for a in chain[1:] if a in statuses and stage in statuses[a]), None
                )
                stages[stage] = f"inherited {statuses[source][stage]}" if source else "-"
        runs, last = store.branch_runs(b.branch_id)
        rows.append(
            {
                "branch_id": b.branch_id,
                "parent_branch_id": b.parent_branch_id,
                "fork_stage": b.fork_stage,
                "depth": depth,
                "current": b.branch_id == current,
                "created_at": b.created_at,
                "runs": runs,
                "last_status": last,
                "stages": stages,
            }
        )
    return {"spec_id": spec_id, "current": current, "branches": rows}


async def branches_cmd(ctx: CommandContext) -> int:
    first, second = ctx.args.spec_id, ctx.args.action
    keep = ctx.args.keep
    if first == "prune" and second:
        first, second = second, "prune"
    if second not in (None, "prune"):
        raise CommandError(f"/branches: unknown action {second!r}; {BRANCHES_USAGE}")
    spec_id = _spec(first)
    store = _service(ctx).store
    _known_spec(ctx, store, spec_id, "branches")
    if second == "prune":
        if keep is None:
            raise CommandError(f"/branches prune: --keep N is required; {BRANCHES_USAGE}")
        try:
            n = int(keep)
        except ValueError:
            raise CommandError(
                f"/branches prune: --keep takes a number, not {keep!r}; {BRANCHES_USAGE}"
            ) from None
        try:
            deleted, outputs = store.prune(spec_id, n)
        except ValueError as exc:
            raise CommandError(f"/branches prune: {exc}; {BRANCHES_USAGE}") from None
        if ctx.args.json:
            ctx.out.json({"deleted": deleted, "outputs": outputs})
        else:
            ctx.out.success(
                f"pruned {_plural(len(deleted), 'branch')} of {spec_id} "
                f"({_plural(outputs, 'output')})"
            )
        return 0
    if keep is not None:
        raise CommandError(f"/branches: --keep only goes with prune; {BRANCHES_USAGE}")
    data = branch_overview(store, spec_id)
    if ctx.args.json:
        ctx.out.json(data)
        return 0
    if not data["branches"]:
        ctx.out.info(f"no branches for {spec_id} yet")
        return 0
    # a tree of plain lines: branch ids are long and a wide table would wrap them
    for row in data["branches"]:
        indent = "    " * row["depth"]
        mark = "* " if row["current"] else "  "
        fork = f"from {row['fork_stage']}, " if row["fork_stage"] else "root, "
        runs = _plural(row["runs"], "run") + (f", last {row['last_status']}" if row["runs"] else "")
        head = "└ " if row["depth"] else ""
        ctx.out.print(f"{mark}{indent}{head}{row['branch_id']}  ({fork}{runs})")
        stages = " · ".join(f"{s} {row['stages'][s]}" for s in STAGES)
        ctx.out.print(f"  {indent}    {stages}")
    ctx.out.info("* current branch (what --resume without a branch id continues)")
    return 0


# -- /resume -------------------------------------------------------------------------


#: stage -> (worker names, aggregator name) as the consensus plugin resolves them now;
#: None when it cannot tell (then the stored calls stand in for the roster)
Roster = Callable[[str], "tuple[list[str], str | None] | None"]
ROSTER_KEY = "speckit.consensus.roster"


def resume_plan(
    store: Store, spec_id: str, branch_id: str, roster: Roster | None = None
) -> list[dict[str, Any]]:
    """Per stage, what ``/spec-auto <SPEC> --resume`` does for each agent, by the same
    rule as the lookup: an agent's prompt is the one of its newest call on the branch (or
    the nearest ancestor sharing the stage: prompts are deterministic), and that call is
    answered from the store when an ok, not-invalid output with that prompt hash exists.
    A worker with no stored call at all (a stage cut short) runs. The aggregator's prompt
    holds the workers' outputs, so it runs unless every worker is reused AND its own
    output is stored. ``reuse`` lists the reused outputs (one per agent), ``rerun`` the
    agents that call their backend (workers, then the aggregator); ``upstream`` is true
    when an earlier stage runs agents, which can change this stage's input."""
    plan: list[dict[str, Any]] = []
    upstream = False
    by_stage = {
        stage: [
            (source, row)
            for source in eligible_branches(branch_id, stage, store.lineage)
            for row in store.stage_outputs(source, stage)
        ]
        for stage in STAGES
    }
    # without a roster: the agent stored as aggregator in any stage aggregates them all
    any_aggregator = next(
        (r["agent"] for rows in by_stage.values() for _, r in rows if r["role"] == "aggregator"),
        None,
    )
    for stage in STAGES:
        rows = by_stage[stage]
        newest: dict[str, str] = {}  # agent -> prompt hash of its newest call
        roles: dict[str, str | None] = {}
        for _, row in rows:
            newest.setdefault(row["agent"], row["prompt_hash"])
            roles.setdefault(row["agent"], row["role"])
        reuse: dict[str, dict[str, Any]] = {}
        for source, row in rows:
            agent = row["agent"]
            if agent in reuse or row["prompt_hash"] != newest[agent]:
                continue
            if row["status"] == "ok" and row["valid"] != 0:
                reuse[agent] = {
                    "agent": agent,
                    "prompt_hash": row["prompt_hash"],
                    "prompt_version": row["prompt_version"],
                    "from_branch": source,
                }
        resolved = roster(stage) if roster is not None else None
        if resolved is not None:
            workers, aggregator = list(resolved[0]), resolved[1]
        else:  # no roster: the agents that were called, their stored roles
            aggregator = next((a for a in newest if roles[a] == "aggregator"), None)
            aggregator = aggregator or (any_aggregator if newest else None)
            workers = sorted(a for a in newest if a != aggregator)
        rerun = [w for w in workers if w not in reuse]
        if aggregator is not None and (rerun or aggregator not in reuse):
            reuse.pop(aggregator, None)  # its input changes, so its stored answer is stale
            rerun.append(aggregator)
        kept = [reuse[a] for a in sorted(reuse) if a in workers or a == aggregator]
        plan.append(
            {
                "stage": stage,
                "reuse": kept,
                "rerun": rerun,
                "aggregator": aggregator,
                "upstream": upstream,
            }
        )
        upstream = upstream or bool(rerun) or not kept
    return plan


def _runs_text(item: dict[str, Any]) -> str:
    """The agents that call their backend, the aggregator marked; never "no calls"
    when a call will be made."""
    names = [a + (" (aggregator)" if a == item["aggregator"] else "") for a in item["rerun"]]
    if not names:
        return "no calls" if item["reuse"] else "run all agents"
    text = ", ".join(names)
    if item["upstream"] and item["reuse"]:
        text += " (more if an earlier stage's result changes)"
    return text


async def resume_cmd(ctx: CommandContext) -> int:
    spec_id = _spec(ctx.args.spec_id)
    store = _service(ctx).store
    current = store.current_branch(spec_id)
    branch = ctx.args.branch or current
    if branch is None:
        start = (
            f"; start one with /spec-auto {spec_id}"
            if _has_command(ctx.shell, "spec-auto")
            else " (the consensus plugin, which runs specs, is off: see /plugins)"
        )
        raise CommandError(f"/resume: no runs of {spec_id} yet{start}")
    if store.spec_of(branch) != spec_id:
        raise CommandError(
            f"/resume: {branch} is not a branch of {spec_id} (see /branches {spec_id})"
        )
    roster = ctx.shell.state.get(ROSTER_KEY)
    plan = resume_plan(store, spec_id, branch, roster if callable(roster) else None)
    if ctx.args.json:
        ctx.out.json({"spec_id": spec_id, "branch_id": branch, "current": current, "stages": plan})
        return 0
    rows = []
    for item in plan:
        by_source: dict[str, list[str]] = {}
        for r in item["reuse"]:
            by_source.setdefault(r["from_branch"], []).append(r["agent"])
        reused = "; ".join(
            ", ".join(agents) + ("" if source == branch else f" (inherited from …{source[-8:]})")
            for source, agents in by_source.items()
        )
        rows.append([item["stage"], reused or "-", _runs_text(item)])
    ctx.out.table(["stage", "reused from the store", "runs"], rows, title=f"resume {branch}")
    ctx.out.info(
        "an output is reused when the agent's prompt is unchanged (same prompt hash); "
        "a stage whose input changes runs its agents again"
    )
    # always the explicit branch: "the current branch" may change before the line is run
    if _has_command(ctx.shell, "spec-auto"):
        began = _started_at(store, spec_id, branch)
        again = f" --from {began}" if began else ""  # as the Ctrl-C line says it
        ctx.out.info(f"continue with: /spec-auto {spec_id} --resume {branch}{again}")
    return 0


def _started_at(store: Store, spec_id: str, branch: str) -> str | None:
    """Where the branch's first run began when a resume would not begin there (a root
    branch started with --from): the Ctrl-C line adds ``--from`` for the same reason."""
    rows = [b for b in store.branches(spec_id) if b.branch_id == branch]
    natural = (rows[0].fork_stage if rows else None) or "plan"
    first = next((r for r in store.runs(spec_id) if r.branch_id == branch), None)
    start = first.from_stage if first is not None else None
    return start if start and start != natural else None


# -- /history ------------------------------------------------------------------------


JSON = Option("--json", help="print JSON", flag=True)


def commands() -> list[Command]:
    from .history import history_cmd

    spec_arg = Arg("spec_id", help="the spec id", complete=_complete_specs)
    return [
        _BranchesCommand(
            "branches",
            branches_cmd,
            help="the branch tree of a spec with the status of each stage; prune old branches",
            args=(
                Arg(
                    "spec_id",
                    help="the spec id (or prune, then the spec id)",
                    complete=_complete_specs,
                ),
                Arg("action", help="prune", required=False, complete=_complete_action),
            ),
            options=(Option("--keep", help="branches to keep when pruning", metavar="N"), JSON),
            description="/branches <SPEC-ID> shows the branches; "
            "/branches <SPEC-ID> prune --keep N deletes all but the N newest "
            "(never an ancestor of a kept branch, never the current branch).",
        ),
        _ResumeCommand(
            "resume",
            resume_cmd,
            help="what a resume of a spec would reuse from the store and what it would run",
            args=(
                spec_arg,
                Arg(
                    "branch",
                    metavar="BRANCH-ID",
                    help="a branch id (default: current)",
                    required=False,
                    complete=_complete_branches,
                ),
            ),
            options=(JSON,),
        ),
        Command(
            "history",
            history_cmd,
            help="the runs of a spec with their status, calls, tokens and cost",
            args=(spec_arg,),
            options=(JSON,),
        ),
    ]


__all__ = ["branch_overview", "commands", "resume_plan"]
