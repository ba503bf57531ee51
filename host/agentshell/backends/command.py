"""``command``: a CLI agent run as a subprocess (``claude -p``, ``gemini -p``,
``codex exec``, any script). Its stdout is the answer.

Agent options:

* ``command`` — the program and its arguments: a list, or a string split like a shell
  would (``shlex``); required.
* ``prompt_mode`` — ``"stdin"`` (default: the prompt is written to stdin), ``"arg"``
  (appended as the last argument) or ``"template"`` (replaces ``{prompt}`` in the args).
* ``env`` — extra environment variables; ``cwd`` — working directory (relative to the
  shell's); ``kill_grace_s`` — how long SIGTERM gets before SIGKILL (default 2);
  ``max_output_bytes`` — cap on stdout (default 8 MiB).

When the caller listens for deltas (``AgentCall.on_delta``), stdout is handed over
line by line as the CLI prints it (``call.emit``); the answer is still the whole of
stdout.

Every call runs in its own process group (a new session), so on timeout or
cancellation the whole group — the CLI and anything it spawned — gets SIGTERM, then
SIGKILL after the grace period: no orphans. Token usage is not reported by CLIs in a
common format, so responses carry empty usage.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentshell.agents import AgentCall, AgentRequest, AgentResponse, AgentSpec
from agentshell.errors import AgentDisconnected, BadAgentOutput, FatalAgentError
from agentshell.plugins import hookimpl
from agentshell.redact import redact

if TYPE_CHECKING:
    from agentshell.hookspecs import Register

DEFAULT_KILL_GRACE_S = 2.0
DEFAULT_MAX_OUTPUT_BYTES = 8 * 1024 * 1024
_STDERR_KEEP = 16 * 1024  # only the tail of stderr is kept, for the error message
_POLL_S = 0.02


def prompt_text(request: AgentRequest) -> str:
    """The text a CLI gets: the system text (if any), then the prompt or the messages."""
    if request.messages is not None:
        lines = []
        for message in request.messages:
            content = message.get("content")
            if isinstance(content, str) and content:
                lines.append(content)
        return "\n\n".join(lines)
    if request.system:
        return f"{request.system}\n\n{request.prompt}"
    return request.prompt


def build_argv(agent: AgentSpec, prompt: str) -> tuple[list[str], bool]:
    """The argv to run and whether the prompt goes to stdin."""
    raw = agent.options.get("command")
    if isinstance(raw, str):
        try:
            argv = shlex.split(raw)
        except ValueError as exc:
            raise FatalAgentError(f"{agent.name}: cannot parse command {raw!r}: {exc}") from None
    elif isinstance(raw, list | tuple) and all(isinstance(a, str) for a in raw):
        argv = list(raw)
    else:
        raise FatalAgentError(
            f'{agent.name}: the command backend needs `command = ["program", "arg", ...]`'
        )
    if not argv:
        raise FatalAgentError(f"{agent.name}: `command` is empty")
    mode = agent.options.get("prompt_mode", "stdin")
    if mode == "stdin":
        return argv, True
    if mode == "arg":
        return [*argv, prompt], False
    if mode == "template":
        if not any("{prompt}" in arg for arg in argv):
            raise FatalAgentError(
                f'{agent.name}: prompt_mode = "template" needs {{prompt}} in `command`'
            )
        return [arg.replace("{prompt}", prompt) for arg in argv], False
    raise FatalAgentError(
        f'{agent.name}: prompt_mode must be "stdin", "arg" or "template" (got {mode!r})'
    )


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs. Zombies do not count: an orphaned
    grandchild stays a zombie until init reaps it, and waiting for that is pointless."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields after the command name: state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class CommandBackend:
    """The backend object. Tracks its live process groups so ``aclose`` can end them."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._groups: set[int] = set()
        self._reapers: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        for pgid in list(self._groups):
            self._start_kill(pgid, None, 0.0)
        if self._reapers:
            await asyncio.gather(*self._reapers, return_exceptions=True)

    async def complete(self, call: AgentCall) -> AgentResponse:
        agent = call.agent
        options = agent.options
        argv, use_stdin = build_argv(agent, prompt_text(call.request))
        grace = float(options.get("kill_grace_s", DEFAULT_KILL_GRACE_S))
        cap = int(options.get("max_output_bytes", DEFAULT_MAX_OUTPUT_BYTES))
        env = dict(os.environ)
        extra = options.get("env")
        if isinstance(extra, Mapping):
            env.update({str(k): str(v) for k, v in extra.items()})
        base = Path(getattr(self.shell, "cwd", None) or Path.cwd())
        cwd = base / str(options["cwd"]) if options.get("cwd") else base
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if use_stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=cwd,
                env=env,
                start_new_session=True,  # own process group: kill it and all it spawned
            )
        except FileNotFoundError:
            raise FatalAgentError(f"{agent.name}: command not found: {argv[0]}") from None
        except PermissionError:
            raise FatalAgentError(f"{agent.name}: not executable: {argv[0]}") from None
        except NotADirectoryError:
            raise FatalAgentError(f"{agent.name}: cwd is not a directory: {cwd}") from None
        pgid = proc.pid  # the session leader's pid is its group id
        self._groups.add(pgid)
        try:
            stdout, stderr = await self._exchange(
                proc,
                prompt_text(call.request) if use_stdin else None,
                cap,
                _Lines(call.emit) if call.streaming else None,
            )
            returncode = await proc.wait()
        except BaseException:
            # timeout, cancellation, output cap: end the whole group, and wait for it
            # even if we are cancelled again meanwhile (shielded; the task finishes).
            await self._kill(pgid, proc, grace)
            raise
        if _group_alive(pgid):  # the CLI exited but left children behind
            await self._kill(pgid, None, grace)
        else:
            self._groups.discard(pgid)
        if returncode < 0:
            name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
            raise AgentDisconnected(
                f"{agent.name}: {argv[0]} was killed by signal {name or -returncode}"
            )
        if returncode != 0:
            lines = stderr.decode("utf-8", errors="replace").strip().splitlines()
            last = redact(lines[-1].strip())[:300] if lines else "no error output"
            raise FatalAgentError(f"{agent.name}: {argv[0]} exited with code {returncode}: {last}")
        content = stdout.decode("utf-8", errors="replace")
        if not content.strip():
            raise BadAgentOutput(f"{agent.name}: {argv[0]} printed nothing")
        return AgentResponse(agent=agent.name, content=content, model=agent.model)

    async def _exchange(
        self,
        proc: asyncio.subprocess.Process,
        stdin_text: str | None,
        cap: int,
        lines: _Lines | None = None,
    ) -> tuple[bytes, bytes]:
        """Write stdin and read stdout (capped; each line to ``lines`` as it comes)
        and the tail of stderr, concurrently."""
        assert proc.stdout is not None and proc.stderr is not None

        async def write() -> None:
            if proc.stdin is None:
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if stdin_text:
                    proc.stdin.write(stdin_text.encode())
                    await proc.stdin.drain()
                proc.stdin.close()

        async def read_out(stream: asyncio.StreamReader) -> bytes:
            buffer = bytearray()
            while chunk := await stream.read(65536):
                buffer += chunk
                if len(buffer) > cap:
                    raise BadAgentOutput(f"output too large (over {cap} bytes)")
                if lines is not None:
                    lines.feed(chunk)
            if lines is not None:
                lines.end()
            return bytes(buffer)

        async def read_err(stream: asyncio.StreamReader) -> bytes:
            buffer = bytearray()
            while chunk := await stream.read(65536):
                buffer += chunk
                del buffer[:-_STDERR_KEEP]
            return bytes(buffer)

        out = asyncio.ensure_future(read_out(proc.stdout))
        err = asyncio.ensure_future(read_err(proc.stderr))
        feed = asyncio.ensure_future(write())
        try:
            await asyncio.gather(out, err, feed)
        finally:  # one failed (output cap) or we were cancelled: stop the others
            for task in (out, err, feed):
                task.cancel()
        return out.result(), err.result()

    def _start_kill(
        self, pgid: int, proc: asyncio.subprocess.Process | None, grace: float
    ) -> asyncio.Task[None]:
        _signal_group(pgid, signal.SIGTERM)
        task = asyncio.get_running_loop().create_task(self._reap(pgid, proc, grace))
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)
        return task

    async def _kill(self, pgid: int, proc: asyncio.subprocess.Process | None, grace: float) -> None:
        task = self._start_kill(pgid, proc, grace)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)

    async def _reap(self, pgid: int, proc: asyncio.subprocess.Process | None, grace: float) -> None:
        """After SIGTERM: wait up to ``grace`` for the group to go, then SIGKILL it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        try:
            if proc is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), timeout=grace)
            # Other members of the group are not our children: nothing to wait on but
            # polling (a pidfd per grandchild would need their pids).
            while _group_alive(pgid) and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(_POLL_S)
            if _group_alive(pgid):
                _signal_group(pgid, signal.SIGKILL)
                # SIGKILL is delivered asynchronously; make "returned" mean "gone"
                until = loop.time() + 1.0
                while _group_alive(pgid) and loop.time() < until:  # noqa: ASYNC110
                    await asyncio.sleep(_POLL_S)
            if proc is not None:
                await proc.wait()
        finally:
            self._groups.discard(pgid)


class _Lines:
    """Stdout bytes in, whole lines of text out (UTF-8 decoded across chunk edges);
    what follows the last newline goes out at the end."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        import codecs

        self.emit = emit
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""

    def feed(self, chunk: bytes) -> None:
        text = self.pending + self.decoder.decode(chunk)
        cut = text.rfind("\n") + 1
        self.pending = text[cut:]
        if cut:
            self.emit(text[:cut])

    def end(self) -> None:
        rest = self.pending + self.decoder.decode(b"", final=True)
        self.pending = ""
        if rest:
            self.emit(rest)


def make_backend(shell: Any) -> CommandBackend:
    return CommandBackend(shell)


def check_agent(agent: AgentSpec) -> None:
    """When the configuration is checked: ``command`` and ``prompt_mode`` are usable."""
    build_argv(agent, "")


@hookimpl
def register_agent_backends(register: Register) -> None:
    register("command", make_backend, check=check_agent)


__all__ = ["CommandBackend", "build_argv", "check_agent", "make_backend", "prompt_text"]
