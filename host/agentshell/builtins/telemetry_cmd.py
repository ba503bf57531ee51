"""``/telemetry``: the active sinks and their counters; swap sinks in a running session.

- ``/telemetry`` (or ``status``): each sink's delivered/dropped/failed/queued counts and
  last error, and the total emitted this session.
- ``/telemetry use <sink>... [--set setting=value ...] [--reset]``: make these the active
  sinks. Every requested sink is created first; if any fails nothing changes. The old
  sinks are drained and closed after the swap, so no event is lost. ``--set`` values are
  remembered per sink for the session (a later ``use`` of that sink keeps them) until
  changed by another ``--set`` or forgotten with ``--reset``.
- ``/telemetry off``: only the ``null`` sink.
- ``/telemetry flush``: wait until every sink has written what was emitted; name the
  sinks that did not, with counts. Ctrl-C ends the wait (the sinks go on writing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
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

/telemetry use <sink>... [--set setting=value ...] [--reset]: make these the
active sinks. Every requested sink is created first; if any fails nothing
changes. The old sinks are drained and closed after the swap: no event is lost.
--set values are remembered per sink for the rest of the session: a later
/telemetry use of that sink keeps them until another --set changes them or
--reset forgets them (back to the [telemetry.<sink>] settings).

/telemetry off: only the null sink.

/telemetry flush: wait (up to [telemetry] flush_timeout_s) until every sink
has written what was emitted (otlp sends the spans it holds now); a sink that
did not finish is named with what it still holds. Ctrl-C stops the wait at
once; nothing is dropped, the sinks go on writing in the background.
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
EARLIER = ["#", "sink", "target", "active", *COLUMNS[1:]]
# left out first when the terminal is narrow (--json has everything)
OPTIONAL = ["export failed", "exported", "queued"]
SETTINGS_KEY = "telemetry.set"  # shell.state: sink -> the --set values that persist


def _clock(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "?"


def _row(stats: SinkStats, index: int | None = None) -> tuple[str, ...]:
    # short numeric cells; the error goes below the table
    na = "-"  # a sink that writes directly: delivered is written
    head: tuple[str, ...] = (stats.name,)
    if index is not None:  # earlier sinks: which one, where it wrote and when
        active = f"{_clock(stats.started_at)}-{_clock(stats.stopped_at)}"
        head = (str(index), stats.name, stats.target or na, active)
    return (
        *head,
        f"{stats.delivered:,}",
        na if stats.exported is None else f"{stats.exported:,}",
        na if stats.export_failed is None else f"{stats.export_failed:,}",
        f"{stats.failed:,}",
        f"{stats.dropped:,}",
        f"{stats.queued:,}",
    )


def _sink_notes(ctx: CommandContext, stats: list[SinkStats], earlier: bool = False) -> None:
    """One full line per detail (never cut): the export breakdown and the last error."""
    for i, s in enumerate(stats, 1):
        label = f"{s.name} (earlier #{i})" if earlier else s.name
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
                "not_started": [
                    {"name": name, "reason": why, "missed": missed}
                    for name, why, missed in bus.not_started()
                ],
            }
        )
        return 0
    if active:
        ctx.out.table(
            COLUMNS, [_row(s) for s in active], title="Telemetry sinks", optional=OPTIONAL
        )
        for s in active:
            if s.target:
                ctx.out.print(f"  {s.name}: writes to {s.target}")
        _sink_notes(ctx, active)
    else:
        ctx.out.print("No telemetry sinks are active (events are counted, not kept).")
    for name, why, missed in bus.not_started():  # configured, but its start failed
        ctx.out.print(f"  {name}: did not start: {why} ({missed:,} event(s) missed so far)")
    if retired:
        rows = [_row(s, i) for i, s in enumerate(retired, 1)]
        ctx.out.table(EARLIER, rows, title="Earlier in this session", optional=OPTIONAL)
        _sink_notes(ctx, retired, earlier=True)
    remembered = _remembered(ctx.shell)
    for sink, values in remembered.items():
        shown = ", ".join(
            # header values may be credentials: their names only
            f"{k}=<{', '.join(v)}>" if k == "headers" and isinstance(v, dict) else f"{k}={_show(v)}"
            for k, v in values.items()
        )
        ctx.out.print(f"  {sink}: --set for this session: {shown}")
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
    given = parse_overrides(names, _set_values(ctx.line))
    remembered = _remembered(shell)
    # earlier --set values of a sink last for the session (until changed or --reset)
    overrides = {
        name: {**({} if ctx.args.reset else remembered.get(name, {})), **given.get(name, {})}
        for name in names
    }
    overrides = {name: values for name, values in overrides.items() if values}
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
    for name in names:  # only once the swap happened: a failed use remembers nothing
        if name in overrides:
            remembered[name] = overrides[name]
        else:
            remembered.pop(name, None)
    ctx.out.success(f"telemetry sinks: {', '.join(names)} (were: {', '.join(before) or 'none'})")
    return 0


def _remembered(shell: Shell) -> dict[str, dict[str, Any]]:
    value = shell.state.setdefault(SETTINGS_KEY, {})
    assert isinstance(value, dict)
    return value


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


async def _flush(ctx: CommandContext) -> int:
    """Wait for the sinks, polling so that Ctrl-C (task cancellation) ends the wait at
    once: the sinks go on writing in the background, nothing is thrown away."""
    timeout = ctx.shell.config.telemetry.flush_timeout_s
    flush = ctx.shell.telemetry.start_flush()
    deadline = time.monotonic() + timeout
    try:
        # the sinks signal threading.Events (their own threads): poll them cheaply
        while True:
            if flush.done or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
    except asyncio.CancelledError:
        left = flush.unfinished()
        if left:
            ctx.out.warn(
                f"telemetry flush interrupted; still being written in the background "
                f"(what is unsent at exit is reported then): {'; '.join(left)}"
            )
        raise
    left, failed = flush.unfinished(), flush.failed()
    problems = []
    if left:
        problems.append(
            f"not written within {timeout:g} s: {'; '.join(left)} "
            "(still being written in the background)"
        )
    if failed:
        problems.append(f"not delivered: {'; '.join(failed)}")
    if problems:
        raise CommandError(f"telemetry: {'; '.join(problems)}; /telemetry shows the counts")
    ctx.out.success("telemetry flushed")
    return 0


async def telemetry_command(ctx: CommandContext) -> int:
    action = ctx.args.action or "status"
    sinks: list[str] = ctx.args.sinks or []
    if action == "status":
        return _status(ctx)
    if action == "flush":
        return await _flush(ctx)
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
                    repeatable=True,
                ),
                Option(
                    "--reset",
                    "forget earlier --set values of these sinks (use)",
                    flag=True,
                ),
                Option("--json", "print the counters as JSON", flag=True),
            ],
            description=DESCRIPTION,
        )
    )
