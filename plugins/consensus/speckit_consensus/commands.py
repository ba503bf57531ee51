"""The slash commands: their declarations, completers and grammar, and the ones that
run stages (``/spec-<stage>``, ``/spec-auto``); the ones that read results back
(``/spec-consensus``, ``/spec-status``, ``/show``) are in :mod:`.readback`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentshell.commands import Arg, Command, CommandContext, Option, completion_context
from agentshell.errors import CommandError

from .config import SECTION, ConsensusSettings
from .specid import parse_branch_id
from .stages import (
    STAGE_CHOICES,
    STAGES,
    Stage,
    check_branch_of,
    parse_stage,
    validate_spec_id,
)

# Declaring commands happens at start-up; running them does not. The engine, schemas and
# evidence modules are imported by the handlers that need them, keeping start-up fast.
if TYPE_CHECKING:
    pass


def settings_of(shell: Any) -> ConsensusSettings:
    value = shell.plugin_config(SECTION)
    return (
        value if isinstance(value, ConsensusSettings) else ConsensusSettings.model_validate(value)
    )


def spec_ids(shell: Any) -> list[str]:
    """Folders under the specs directory that hold a spec.md."""
    root = Path(shell.cwd) / settings_of(shell).specs_dir
    try:
        return sorted(p.parent.name for p in root.glob("*/spec.md"))
    except OSError:
        return []


def complete_spec(shell: Any, text: str) -> Iterable[str]:
    return [s for s in spec_ids(shell) if s.startswith(text)]


def complete_stage(shell: Any, text: str) -> Iterable[str]:
    """The six short names; ``spec-plan`` spellings are still accepted, and offered
    only once the user has started typing one."""
    pool = STAGE_CHOICES if text.startswith("spec-") else STAGES
    return [s for s in pool if s.startswith(text)]


#: where the resume plugin publishes its service (docs/resume.md, the contract)
RESUME_KEY = "speckit.resume"


def complete_branch(shell: Any, text: str) -> list[str]:
    """The branch ids of the spec typed before, newest first, from the resume plugin's
    ``complete_branches`` (part of its published contract, so this plugin never imports
    it); nothing without the plugin, a spec id, or a readable store."""
    typed = completion_context()
    complete = getattr(shell.state.get(RESUME_KEY), "complete_branches", None)
    if typed is None or not typed.positional or not callable(complete):
        return []
    spec_id, *rest = typed.positional
    if any(parse_branch_id(w) is not None for w in rest):
        return []  # one branch id per line
    try:
        return [str(b) for b in complete(spec_id, text)]
    except Exception:  # a failing store gives no completions, never an error
        return []


def complete_goal_or_branch(shell: Any, text: str) -> Iterable[str]:
    """/spec-auto takes a branch id only with --resume or --from; the goal is free text."""
    typed = completion_context()
    if typed is None or not {"--resume", "--from"} & {w.partition("=")[0] for w in typed.words}:
        return []
    return complete_branch(shell, text)


@dataclass
class _GrammarCommand(Command):
    """A command whose usage line is its real grammar (docs/resume.md), not the generic
    one the host builds from the declarations (which cannot say that a branch id goes
    with --resume or --from)."""

    synopsis: str = ""

    @property
    def usage(self) -> str:
        return self.synopsis or super().usage


SPEC_ARG = Arg("spec_id", "the spec folder name, e.g. SPEC-KIT-DEMO", complete=complete_spec)


def _near_branch(spec_id: str, word: str) -> bool:
    """``<SPEC-ID>-<digits>-<hex>`` that is not quite a branch id (a digit short, upper-case
    hex): a mistyped branch id, refused as one rather than taken as a goal word."""
    rest = word[len(spec_id) + 1 :] if word.startswith(spec_id + "-") else ""
    return bool(_NEAR_BRANCH.match(rest)) and parse_branch_id(word) is None


_NEAR_BRANCH = re.compile(r"^\d{6,}-[0-9A-Fa-f]{4,}$")


def _branch_word(spec_id: str, words: list[str]) -> tuple[str | None, list[str]]:
    """Split off the branch id: a word shaped ``<SPEC-ID>-<YYYYMMDDHHMMSS>-<8 hex>`` is a
    branch, never part of the goal (the grammar in docs/resume.md); a near miss of one
    of this spec is an error, not a goal word."""
    for word in words:
        if _near_branch(spec_id, word):
            check_branch_of(spec_id, word, "spec-auto")  # raises: not a branch id
    found = [w for w in words if parse_branch_id(w) is not None]
    if len(found) > 1:
        raise CommandError(
            f"/spec-auto: give one branch id, not {len(found)}; usage: {SPEC_AUTO_USAGE}"
        )
    branch = check_branch_of(spec_id, found[0], "spec-auto") if found else None
    return branch, [w for w in words if w not in found]


async def spec_auto(ctx: CommandContext) -> int:
    from . import pipeline

    spec_id = validate_spec_id(ctx.args.spec_id)
    raw_from = ctx.args.get("from")
    resume = bool(ctx.args.get("resume"))
    words = ctx.args.get("goal") or []
    branch, words = _branch_word(spec_id, list(words) if isinstance(words, list) else [words])
    given = ctx.args.get("consensus")
    if given is not None:
        if words:
            raise CommandError(
                f"/spec-auto: give the goal once, as words or with --consensus; "
                f"usage: {SPEC_AUTO_USAGE}"
            )
        if _near_branch(spec_id, given):
            check_branch_of(spec_id, given, "spec-auto")  # raises: not a branch id
        if parse_branch_id(given) is not None:
            raise CommandError(
                f"/spec-auto: --consensus needs a goal; {given} is a branch id "
                f"(usage: {SPEC_AUTO_USAGE})"
            )
        words = [given]
    if branch is not None and not resume and not raw_from:
        raise CommandError(
            f"/spec-auto: a branch id goes with --resume (continue {branch}) or "
            f"--from STAGE (fork a child of it); usage: {SPEC_AUTO_USAGE}"
        )
    if ctx.args.get("force") and not raw_from:
        raise CommandError(
            f"/spec-auto: --force goes with --from STAGE (it starts a late run although an "
            f"earlier stage is not in consensus); usage: {SPEC_AUTO_USAGE}"
        )
    try:
        from_stage = parse_stage(raw_from) if raw_from else None
    except CommandError as exc:  # the one usage line every /spec-auto error ends with
        raise CommandError(f"/spec-auto: {exc}; usage: {SPEC_AUTO_USAGE}") from None
    return await pipeline.run(
        ctx.shell,
        settings_of(ctx.shell),
        spec_id=spec_id,
        goal=" ".join(words).strip() or None,
        from_stage=from_stage,
        resume=resume,
        single=False,
        command="spec-auto",
        branch_id=branch,
        force=bool(ctx.args.get("force")),
    )


SPEC_AUTO_USAGE = (
    "/spec-auto <SPEC-ID> [<GOAL>...] [--consensus <GOAL>] [--from <STAGE> [<BRANCH-ID>] "
    "[--force]] | "
    "/spec-auto <SPEC-ID> --resume [<BRANCH-ID>]"
)


def stage_usage(stage: str) -> str:
    return (
        f"/spec-{stage} <SPEC-ID> [<BRANCH-ID>] [--consensus <GOAL>] | "
        f"/spec-{stage} <SPEC-ID> --resume [<BRANCH-ID>]"
    )


def stage_handler(stage: Stage) -> Any:
    async def handler(ctx: CommandContext) -> int:
        from . import pipeline

        spec_id = validate_spec_id(ctx.args.spec_id)
        raw = ctx.args.get("branch")
        branch = check_branch_of(spec_id, raw, f"spec-{stage}") if raw else None
        goal = ctx.args.get("consensus")
        if goal is not None and _near_branch(spec_id, goal):
            check_branch_of(spec_id, goal, f"spec-{stage}")  # raises: not a branch id
        if goal is not None and parse_branch_id(goal) is not None:
            # a branch id is never a goal (docs/resume.md): taking it as one would run
            # on the current branch with the id as every prompt's goal
            raise CommandError(
                f"/spec-{stage}: --consensus needs a goal; {goal} is a branch id "
                f"(usage: {stage_usage(stage)})"
            )
        return await pipeline.run(
            ctx.shell,
            settings_of(ctx.shell),
            spec_id=spec_id,
            goal=goal,
            from_stage=stage,
            resume=bool(ctx.args.get("resume")),
            single=True,
            command=f"spec-{stage}",
            branch_id=branch,
        )

    return handler


def all_commands() -> list[Command]:
    from .readback import show, spec_consensus, spec_status

    from_opt = Option(
        "--from",
        "start at this stage (plan, spec-plan, ...)",
        metavar="STAGE",
        complete=complete_stage,
    )
    commands = [
        _GrammarCommand(
            "spec-auto",
            spec_auto,
            help="run every stage from plan (or --from) to unlock; halt when consensus fails",
            args=[
                SPEC_ARG,
                Arg(
                    "goal",
                    "what this run should achieve; a word shaped like a branch id "
                    "(<SPEC-ID>-<YYYYMMDDHHMMSS>-<8 hex>) names the branch instead",
                    required=False,
                    variadic=True,
                    complete=complete_goal_or_branch,
                ),
            ],
            options=[
                from_opt,
                Option(
                    "--resume",
                    "continue a branch (the one named, else the spec's current one) with "
                    "its stored goal",
                    flag=True,
                ),
                Option(
                    "--force",
                    "with --from: start although an earlier stage's latest verdict is not "
                    "in consensus (a warning; the run records it)",
                    flag=True,
                ),
                Option(
                    "--consensus",
                    "the goal, as one argument (instead of the goal words)",
                    metavar="GOAL",
                ),
            ],
            synopsis=SPEC_AUTO_USAGE,
            description="--from STAGE forks a child of <BRANCH-ID> (default: the current "
            "branch) that inherits the stages before STAGE and keeps its goal unless one is given; "
            "it halts first when an earlier stage's latest verdict is in halt_on (or failed), "
            "unless --force; "
            "--resume replays every finished answer of the branch and runs the rest.",
        ),
        Command(
            "spec-consensus",
            spec_consensus,
            help="re-evaluate a stage's latest evidence: status, agreements, conflicts, missing",
            args=[
                SPEC_ARG,
                Arg("stage", "plan, tasks, ... (or spec-plan, ...)", complete=complete_stage),
            ],
            options=[Option("--json", "print JSON", flag=True)],
        ),
        Command(
            "show",
            show,
            help="show a stage's result (docs/<SPEC-ID>/<STAGE>.md) rendered in the terminal",
            args=[
                SPEC_ARG,
                Arg(
                    "stage",
                    "plan, tasks, ... (default: the stage whose result was written last)",
                    required=False,
                    complete=complete_stage,
                ),
            ],
        ),
        Command(
            "spec-status",
            spec_status,
            help="each stage's last status, time and cost",
            args=[Arg("spec_id", "a spec (default: all)", required=False, complete=complete_spec)],
        ),
    ]
    for stage in STAGES:
        commands.append(
            _GrammarCommand(
                f"spec-{stage}",
                stage_handler(stage),
                help=f"run the {stage} stage of a spec with multi-agent consensus",
                args=[
                    SPEC_ARG,
                    Arg(
                        "branch",
                        "a branch id: the parent of the new child branch, or with --resume "
                        "the branch to continue (default: the current branch)",
                        required=False,
                        complete=complete_branch,
                        metavar="BRANCH-ID",
                    ),
                ],
                options=[
                    Option(
                        "--consensus", "the goal agents should reach consensus on", metavar="GOAL"
                    ),
                    Option(
                        "--resume",
                        "continue the branch: replay its finished answers for this stage",
                        flag=True,
                    ),
                ],
                synopsis=stage_usage(stage),
            )
        )
    return commands
