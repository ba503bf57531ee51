"""``/telemetry``: the active sinks and their counters; swap sinks in a running session.

- ``/telemetry`` (or ``status``): each sink's delivered/dropped/failed/queued counts and
  last error, and the total emitted this session.
- ``/telemetry use <sink>... [--set setting=value ...]``: make these the active sinks. Every
  requested sink is created first; if any fails nothing changes. The old sinks are
  drained and closed after the swap, so no event is lost.
- ``/telemetry off``: only the ``null`` sink.
- ``/telemetry flush``: wait until every sink has written what was emitted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from agentshell.commands import Arg, Command, CommandContext, Option, split_line
from agentshell.errors import CommandError, ConfigError
from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell.hookspecs import Register
    from agentshell.shell import Shell
    from agentshell.telemetry import SinkStats

ACTIONS = ("status", "use", "off", "flush")

# plain text: /help prints it as is (the module docstring above is reST)
DESCRIPTION = """\
/telemetry (or /telemetry status): each sink's counters - events delivered
to it, exported and failed to export (sinks that send on, such as otlp),
failed, dropped and queued - the last error in full, and the total emitted.

/telemetry use <sink>... [--set setting=value ...]: make these the active
sinks. Every requested sink is created first; if any fails nothing changes.
The old sinks are drained and closed after the swap: no event is lost.

/telemetry off: only the null sink.

/telemetry flush: wait until every sink has written what was emitted (otlp
sends the spans it holds now).
"""


def _sink_names(shell: Shell, prefix: str) -> Iterable[str]:
    return [n for n in shell.sink_names if n.startswith(prefix)]


def _set_values(line: str) -> list[str]:
    """Every ``--set`` value of the line (the parser keeps only the last one)."""
    words = split_line(line)
    values = []
    for i, word in enumerate(words):
        if word == "--set" and i + 1 < len(words):
            values.append(words[i + 1])
        elif word.startswith("--set="):
            values.append(word.removeprefix("--set="))
    return values


def _value(text: str) -> Any:
    if text[:1] in "[{":  # lists and tables: [telemetry.console] types, otlp headers
        try:
            return json.loads(text)
        except ValueError:
            raise CommandError(f"--set: cannot parse {text!r} as JSON") from None
    return text  # numbers and booleans are converted by the sink's settings model


def parse_overrides(sinks: list[str], assignments: list[str]) -> dict[str, dict[str, Any]]:
    """``setting=value`` (one sink) or ``<sink>.setting=value`` into per-sink settings."""
    overrides: dict[str, dict[str, Any]] = {}
    for item in assignments:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise CommandError(f"--set wants <setting>=<value>, got {item!r}")
        sink, dot, field = key.partition(".")
        if dot and sink in sinks:
            target = sink
        elif len(sinks) == 1:
            target, field = sinks[0], key
        else:
            raise CommandError(
                f"--set {key}: name the sink ({' or '.join(f'{s}.{key}' for s in sinks)})"
            )
        overrides.setdefault(target, {})[field] = _value(value)
    return overrides


COLUMNS = ["sink", "delivered", "exported", "export failed", "failed", "dropped", "queued"]


def _row(stats: SinkStats) -> tuple[str, ...]:
    # short numeric cells only: the table fits 80 columns; the error goes below it
    na = "-"  # a sink that writes directly: delivered is written
    return (
        stats.name,
        f"{stats.delivered:,}",
        na if stats.exported is None else f"{stats.exported:,}",
        na if stats.export_failed is None else f"{stats.export_failed:,}",
        f"{stats.failed:,}",
        f"{stats.dropped:,}",
        f"{stats.queued:,}",
    )


def _sink_notes(ctx: CommandContext, stats: list[SinkStats], earlier: bool = False) -> None:
    """One full line per detail (never cut): the export breakdown and the last error."""
    for s in stats:
        label = f"{s.name} (earlier)" if earlier else s.name
        if s.export_detail:
            ctx.out.print(f"  {label}: {s.export_detail}")
        if s.last_error:
            ctx.out.print(f"  {label}: last error: {s.last_error}")


def _status(ctx: CommandContext) -> int:
    bus = ctx.shell.telemetry
    active, retired = bus.stats(), bus.retired
    if ctx.args.json:
        ctx.out.json(
            {
                "emitted": bus.emitted,
                "dropped": bus.dropped,
                "sinks": [asdict(s) for s in active],
                "earlier": [asdict(s) for s in retired],
                "available": ctx.shell.sink_names,
            }
        )
        return 0
    if active:
        ctx.out.table(COLUMNS, [_row(s) for s in active], title="Telemetry sinks")
        _sink_notes(ctx, active)
    else:
        ctx.out.print("No telemetry sinks are active (events are counted, not kept).")
    if retired:
        ctx.out.table(COLUMNS, [_row(s) for s in retired], title="Earlier in this session")
        _sink_notes(ctx, retired, earlier=True)
    ctx.out.print(
        f"{bus.emitted:,} event(s) emitted, {bus.dropped:,} dropped. "
        f"Available sinks: {', '.join(ctx.shell.sink_names) or 'none'}."
    )
    if any(s.exported is not None for s in active + retired):
        ctx.out.print(
            "exported / export failed: what a sink sent on (otlp: spans, metric exports)."
        )
    return 0


def _use(ctx: CommandContext, names: list[str]) -> int:
    shell = ctx.shell
    names = list(dict.fromkeys(names))
    if not names:
        raise CommandError("/telemetry use: name at least one sink; usage: " + ctx.command.usage)
    unknown = [n for n in names if n not in shell.sink_names]
    if unknown:
        raise CommandError(
            f"unknown telemetry sink {unknown[0]!r} "
            f"(available: {', '.join(shell.sink_names) or 'none'})"
        )
    overrides = parse_overrides(names, _set_values(ctx.line))
    before = shell.telemetry.sink_names
    sinks: list[tuple[str, Any]] = []
    try:
        for name in names:
            try:
                sinks.append((name, shell.make_sink(name, overrides.get(name))))
            except ConfigError as exc:
                if name not in overrides:
                    raise
                # the bad value may come from --set rather than from a file
                raise ConfigError(str(exc).replace("defaults: ", "--set ", 1)) from None
    except BaseException:
        for _, sink in sinks:  # all or nothing: the current sinks stay
            with contextlib.suppress(Exception):
                sink.close()
        raise
    shell.telemetry.replace_sinks(sinks, timeout=shell.config.telemetry.flush_timeout_s)
    ctx.out.success(f"telemetry sinks: {', '.join(names)} (were: {', '.join(before) or 'none'})")
    return 0


def telemetry_command(ctx: CommandContext) -> int:
    action = ctx.args.action or "status"
    sinks: list[str] = ctx.args.sinks or []
    if action == "status":
        return _status(ctx)
    if action == "flush":
        if not ctx.shell.telemetry.flush(ctx.shell.config.telemetry.flush_timeout_s):
            raise CommandError("telemetry: some sinks did not finish writing in time")
        ctx.out.success("telemetry flushed")
        return 0
    if action == "off":
        if sinks:
            raise CommandError("/telemetry off takes no sink names")
        if "null" in ctx.shell.sink_names:
            return _use(ctx, ["null"])
        ctx.shell.telemetry.replace_sinks([])
        ctx.out.success("telemetry off")
        return 0
    return _use(ctx, sinks)


@hookimpl
def register_commands(register: Register) -> None:
    register(
        Command(
            "telemetry",
            telemetry_command,
            help="telemetry sinks and counters; /telemetry use <sink>... | off | flush",
            args=[
                Arg(
                    "action", "status (default), use, off or flush", required=False, choices=ACTIONS
                ),
                Arg(
                    "sinks",
                    "sink names (for use)",
                    required=False,
                    variadic=True,
                    complete=_sink_names,
                ),
            ],
            options=[
                Option(
                    "--set",
                    "a sink setting: setting=value or <sink>.setting=value (repeatable)",
                    metavar="SETTING=VALUE",
                ),
                Option("--json", "print the counters as JSON", flag=True),
            ],
            description=DESCRIPTION,
        )
    )
