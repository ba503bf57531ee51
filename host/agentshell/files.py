"""Writing files that others read: atomically (temp file in the same directory, fsync,
rename), so a reader never sees half a file and a crash never leaves one.

A process killed mid-write (SIGKILL, power cut) leaves its hidden temp file behind;
:func:`clean_stale_temps` removes those on a later run. The temp name carries the
writer's pid (``.<name>.<pid>.<random>.tmp``) so a live writer's file is left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path

#: a temp file this old is stale even if a process with its pid is running (pid reuse)
STALE_AFTER_S = 15 * 60

_TEMP = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[a-z0-9_]{8}\.tmp$")


def atomic_write(path: Path | str, data: str | bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically; create parent directories as needed.

    An :class:`OSError` names ``path`` (``No space left on device: docs/x/plan.md``),
    never the temp file, which is removed."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)  # its own error names the directory
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
        )
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            # the user knows the target, not our temp name: say which file could not be written
            raise type(exc)(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise
    return path


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return True  # cannot tell: keep the file
    return True


def clean_stale_temps(directory: Path, *, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temp files :func:`atomic_write` left in ``directory`` when its writer
    died: those whose writer pid is no longer running, and any older than
    ``older_than_s`` (a reused pid, or a name without a pid). A concurrent live writer's
    temp file is kept. Never raises; returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
            pid = match.group("pid")
            dead = pid is not None and not _writer_alive(int(pid))
            if dead or age > older_than_s:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


__all__ = ["STALE_AFTER_S", "atomic_write", "clean_stale_temps"]
