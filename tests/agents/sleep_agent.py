"""A CLI agent that sleeps ``argv[1]`` seconds (default 60) and then answers. With
``--child`` it first spawns a grandchild that sleeps as long (in the same process
group), so tests can check that a cancelled call leaves no process behind."""

from __future__ import annotations

import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _pids import record

seconds = float(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "--child" else 60.0
record("agent")
if "--child" in sys.argv:
    code = (
        f"import sys,time; sys.path.insert(0, {sys.path[0]!r}); from _pids import record; "
        f"record('child'); time.sleep({seconds})"
    )
    subprocess.Popen([sys.executable, "-c", code])
sys.stdin.read()
time.sleep(seconds)
print(f"slept {seconds:g}s")
