"""The live status shown below the output while a REPL command runs.

prompt_toolkit's bottom toolbar exists only while a prompt is drawn, so during a
command a ``rich`` Live region takes its place: the same status segments (tokens,
cost, budget…), the stages being worked on, and one row per running agent call with
a spinner and its elapsed time. Everything the command prints meanwhile goes through
the Live's stdout/stderr proxies and scrolls above the region.

Redraws are driven by a task on the event loop (not rich's refresh thread), so plugin
status hooks and the runner's table of calls in flight are only ever read on the
thread that changes them. Piped or non-terminal output never gets a Live region.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agents import AgentCall
    from .shell import Shell

REFRESH_S = 0.2  # five redraws a second: the spinner and the seconds visibly tick
MAX_ROWS = 6  # agent rows shown; the rest are counted ("… and 58 more running")


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def _call_label(call: AgentCall) -> str:
    stage = call.context.get("stage")
    role = f" ({call.agent.role})" if call.agent.role else ""
    attempt = f" · attempt {call.attempt}" if call.attempt > 1 else ""
    return f"{stage} · " * bool(stage) + f"{call.agent.name}{role}{attempt}"


class LiveStatus:
    """What the Live region shows, built fresh at each redraw."""

    def __init__(self, shell: Shell, command: str) -> None:
        self.shell = shell
        self.command = command
        self.started = time.monotonic()
        self.status = ""  # plugin segments, read on the loop at each redraw
        self.width = 0  # the terminal's columns, read at each redraw

    def calls(self) -> list[AgentCall]:
        runner = self.shell.runner
        in_flight = getattr(runner, "in_flight", None) or {}
        return sorted(in_flight.values(), key=lambda c: c.started_at)

    def renderable(self) -> Any:
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        calls = self.calls()
        rows = Table.grid(padding=(0, 1))
        rows.add_column(no_wrap=True)
        rows.add_column(no_wrap=True, overflow="ellipsis")
        rows.add_column(no_wrap=True, justify="right", style="dim")
        for call in calls[:MAX_ROWS]:
            rows.add_row(
                Spinner("dots", style="cyan"),
                _call_label(call),
                _elapsed(now - call.started_at),
            )
        parts: list[Any] = [rows] if calls else []
        if len(calls) > MAX_ROWS:
            parts.append(Text(f"  … and {len(calls) - MAX_ROWS} more running", style="dim"))
        stages = [str(c.context["stage"]) for c in calls if c.context.get("stage")]
        # most important first: what a narrow terminal cuts is the end of the line
        bar = [self.status]
        if stages:
            bar.append("stage " + ", ".join(dict.fromkeys(stages)))
        if calls:
            bar.append(f"{len(calls)} agent{'s' * (len(calls) != 1)} running")
        bar.append(_elapsed(now - self.started))
        text = " " + " · ".join(b for b in bar if b) + " "
        if self.width and len(text) > self.width:  # one row, whatever the width
            text = text[: self.width - 2] + "… "
        parts.append(Text(text, style="reverse"))
        return Group(*parts)


@contextlib.asynccontextmanager
async def live_status(shell: Shell, command: str) -> AsyncIterator[None]:
    """Show the live status while the body runs (a no-op when stdout is no terminal)."""
    stream = sys.stdout
    if not _isatty(stream) or not shell.config.shell.toolbar:
        yield
        return
    from rich.console import Console

    colored = shell.output.colored(stream)
    console = Console(
        file=stream,
        soft_wrap=True,  # lines are wrapped by Output already; ids overflow, never fold
        highlight=False,
        color_system="auto" if colored else None,
        no_color=not colored,
        force_terminal=True,
    )
    view = LiveStatus(shell, command)
    view.status, view.width = _status(shell), console.width
    region = _Region(console, view)

    async def redraw() -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            view.status, view.width = _status(shell), console.width
            region.update()

    with region, shell.output.beside_live(console, region.paused):
        ticker = asyncio.ensure_future(redraw())
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker


class _Region:
    """The Live region, which can be hidden for a while (an answer streaming: rich's
    stdout proxy would hold its partial lines back). A rich Live keeps the size of its
    last render after it stops, so showing the region again takes a new one."""

    def __init__(self, console: Any, view: LiveStatus) -> None:
        self.console = console
        self.view = view
        self.live: Any = None
        self.hidden = 0
        self.closed = False

    def _show(self) -> None:
        from rich.live import Live

        if self.closed:  # the command ended while the region was hidden
            return
        self.live = Live(
            self.view.renderable(),
            console=self.console,
            auto_refresh=False,  # redrawn by live_status's task, on the loop's thread
            transient=True,
            redirect_stdout=True,
            redirect_stderr=True,
            vertical_overflow="visible",
        )
        self.live.start(refresh=True)

    def _hide(self) -> None:
        live, self.live = self.live, None
        if live is not None:
            live.stop()

    def update(self) -> None:
        if self.live is not None:
            self.live.update(self.view.renderable(), refresh=True)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hide the region (and give stdout back to the terminal) meanwhile."""
        self.hidden += 1
        if self.hidden == 1:
            self._hide()
        try:
            yield
        finally:
            self.hidden -= 1
            if self.hidden == 0:
                self._show()

    def __enter__(self) -> _Region:
        self._show()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closed = True
        self._hide()


def _status(shell: Shell) -> str:
    try:
        return shell.status_text()
    except Exception:  # a plugin's segment failing must not take the display down
        return ""


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (ValueError, AttributeError):
        return False


__all__ = ["LiveStatus", "live_status"]
