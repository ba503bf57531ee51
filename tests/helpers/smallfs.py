"""A real small filesystem for disk-full tests: a tmpfs mount of a given size.

Mounting needs root (CI runs as root). Where it is impossible the test is skipped,
except under CI (env ``CI`` set), where a skip would hide that the test never ran.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_fs(where: Path, size: str) -> Iterator[Path]:
    """``where`` (created) as a tmpfs of ``size`` (``"512k"``) until the block ends."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        why = f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(fs: Path) -> Path:
    """Fill ``fs`` to the last byte with one file; return it (delete it to free space)."""
    filler = fs / "filler"
    chunk = b"\0" * 4096
    with open(filler, "wb", buffering=0) as fh:
        while True:
            try:
                fh.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    with open(filler, "ab", buffering=0) as fh:  # the last partial block too
        for _ in range(4096):
            try:
                fh.write(b"\0")
            except OSError:
                break
    return filler
