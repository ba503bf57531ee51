"""``replay``: answers recorded earlier, read from a directory of JSON files. The offline
default: a new user runs the whole pipeline without keys. Every response it gives is
labelled ``recorded=True`` so no one mistakes it for a live model.

Lookup, for an agent ``A`` called with ``call.context`` ``spec_id`` ``S`` and ``stage``
``T`` (first file that exists wins):

1. ``<dir>/S/T/A.json``
2. ``<dir>/T/A.json``
3. ``<dir>/A.json``

``<dir>`` is the agent's ``dir`` option (relative to the shell's working directory) or
``<cwd>/.agentshell/recordings``. Options: ``honour_latency`` (default true: sleep for
the recorded ``latency_ms``), ``latency_scale`` (default 1.0), ``name`` (look up
recordings under another agent name). File format: see docs/agents.md.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentshell.agents import AgentCall, AgentResponse, TokenUsage
from agentshell.errors import BadAgentOutput
from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell.hookspecs import Register

DEFAULT_DIR = Path(".agentshell") / "recordings"


class Recording(BaseModel):
    """One recorded answer (a file of the recordings directory)."""

    model_config = ConfigDict(extra="ignore")

    agent: str = ""
    stage: str | None = None
    spec_id: str | None = None
    model: str = ""
    content: str | dict[str, Any] | list[Any]
    usage: dict[str, Any] = Field(default_factory=dict)
    latency_ms: float | None = Field(default=None, ge=0)

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return json.dumps(self.content, indent=2, ensure_ascii=False)


def _safe(part: Any) -> str | None:
    """A context value usable as one path component, or None (never ``..`` or ``a/b``)."""
    if not isinstance(part, str) or not part or part in (".", ".."):
        return None
    if "/" in part or "\\" in part or "\0" in part:
        return None
    return part


def candidates(root: Path, agent: str, stage: Any, spec_id: Any) -> list[Path]:
    """The files looked at, in order."""
    name, stage_s, spec_s = _safe(agent), _safe(stage), _safe(spec_id)
    if name is None:
        return []
    paths = []
    if spec_s and stage_s:
        paths.append(root / spec_s / stage_s / f"{name}.json")
    if stage_s:
        paths.append(root / stage_s / f"{name}.json")
    paths.append(root / f"{name}.json")
    return paths


class ReplayBackend:
    """The backend object. Parsed recordings are cached by path and modification time."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._cache: dict[Path, tuple[int, Recording]] = {}

    async def aclose(self) -> None:
        self._cache.clear()

    def directory(self, options: dict[str, Any]) -> Path:
        base = Path(getattr(self.shell, "cwd", None) or Path.cwd())
        configured = options.get("dir")
        return base / str(configured) if configured else base / DEFAULT_DIR

    def load(self, path: Path) -> Recording | None:
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        cached = self._cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            recording = Recording.model_validate_json(path.read_bytes())
        except OSError:
            return None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(file)"
            raise BadAgentOutput(f"bad recording {path}: {where}: {first['msg']}") from None
        self._cache[path] = (mtime, recording)
        return recording

    async def complete(self, call: AgentCall) -> AgentResponse:
        agent = call.agent
        options = agent.options
        root = self.directory(options)
        name = str(options.get("name") or agent.name)
        paths = candidates(root, name, call.context.get("stage"), call.context.get("spec_id"))
        for path in paths:
            recording = self.load(path)
            if recording is not None:
                break
        else:
            looked = ", ".join(str(p) for p in paths) or f"(agent name {name!r} is not a file name)"
            raise BadAgentOutput(f"{agent.name}: no recording (looked for {looked})")
        if recording.latency_ms and options.get("honour_latency", True):
            scale = float(options.get("latency_scale", 1.0))
            if scale > 0:
                await asyncio.sleep(recording.latency_ms / 1000 * scale)
        return AgentResponse(
            agent=agent.name,
            content=recording.text(),
            parsed=None if isinstance(recording.content, str) else recording.content,
            usage=TokenUsage.from_openai(recording.usage),
            model=recording.model or agent.model,
            recorded=True,
        )


def make_backend(shell: Any) -> ReplayBackend:
    return ReplayBackend(shell)


@hookimpl
def register_agent_backends(register: Register) -> None:
    register("replay", make_backend)


__all__ = ["DEFAULT_DIR", "Recording", "ReplayBackend", "candidates", "make_backend"]
