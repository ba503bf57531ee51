"""The ``jsonl`` telemetry sink: one whole JSON object per line, append-only.

Safe for concurrent writers (threads and processes): the file is opened with
``O_APPEND`` and each batch is written under an exclusive ``flock`` on a sidecar lock
file, so lines are never torn or interleaved, and size rotation cannot race with
another process's write. A writer whose file was rotated away by someone else notices
(inode changed) and reopens the path before writing.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from agentshell.plugins import hookimpl
from agentshell.telemetry import Event, redact_events

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: in-process locking only
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from agentshell.hookspecs import Register

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


class JsonlSettings(BaseModel):
    """``[telemetry.jsonl]``."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None  # default: <data dir>/telemetry.jsonl
    max_bytes: int = Field(default=50 * 1024 * 1024, ge=0)  # 0: never rotate
    backups: int = Field(default=3, ge=0)


class JsonlSink:
    def __init__(self, path: Path, *, max_bytes: int = 50 * 1024 * 1024, backups: int = 3) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        _make_parent(path)
        self._thread_lock = threading.Lock()  # handle() may be called from any thread
        self._lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._fd = -1
        self._ino = -1
        self._open()

    @property
    def target(self) -> str:
        """Where events go (``/telemetry`` tells sinks used earlier apart by it)."""
        return str(self.path)

    def _open(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        _make_parent(self.path)  # e.g. a cleaned-up temp dir
        self._fd = os.open(self.path, _FLAGS, 0o600)
        self._ino = os.fstat(self._fd).st_ino

    def handle(self, event: Event) -> None:
        self.handle_batch([event])

    def handle_batch(self, events: list[Event]) -> None:
        events = redact_events(events)
        lines = [e.__pydantic_serializer__.to_json(e) for e in events]
        lines.append(b"")
        self.write(b"\n".join(lines))

    def write(self, data: bytes) -> None:
        """Append ``data`` (whole lines) in one locked write. An error names the file
        (``os.write`` on a descriptor does not): "No space left on device" alone would
        not say which disk is full."""
        try:
            self._write(data)
        except OSError as exc:
            if exc.filename is None and exc.errno is not None:
                raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
            raise

    def _write(self, data: bytes) -> None:
        with self._thread_lock:
            if fcntl is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._follow_rotation()
                if self.max_bytes and self._size() and self._size() + len(data) > self.max_bytes:
                    self._rotate()
                view = memoryview(data)
                while view:  # a regular file writes it all at once; loop for the odd short write
                    view = view[os.write(self._fd, view) :]
            finally:
                if fcntl is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _size(self) -> int:
        return os.fstat(self._fd).st_size

    def _follow_rotation(self) -> None:
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = -1
        if current != self._ino:
            self._open()

    def _rotate(self) -> None:
        path = str(self.path)
        if self.backups == 0:
            os.unlink(path)
        else:
            for i in range(self.backups - 1, 0, -1):
                if os.path.exists(f"{path}.{i}"):
                    os.replace(f"{path}.{i}", f"{path}.{i + 1}")
            os.replace(path, f"{path}.1")
        self._open()

    def close(self) -> None:
        with self._thread_lock:
            for fd in (self._fd, self._lock_fd):
                if fd >= 0:
                    os.close(fd)
            self._fd = self._lock_fd = -1


def _make_parent(path: Path) -> None:
    """Create ``path``'s directory. A file in the way is "Not a directory" naming
    ``path`` (as the shell says it), not mkdir's confusing "File exists"."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path)) from None


def default_path(shell: Any) -> Path:
    return Path(shell.data_dir) / "telemetry.jsonl"


def _factory(shell: Any, settings: JsonlSettings) -> JsonlSink:
    if settings.path:
        path = Path(settings.path).expanduser()
        if not path.is_absolute():
            path = Path(shell.cwd) / path
    else:
        path = default_path(shell)
    return JsonlSink(path, max_bytes=settings.max_bytes, backups=settings.backups)


@hookimpl
def register_telemetry_sinks(register: Register) -> None:
    register("jsonl", _factory, JsonlSettings)
