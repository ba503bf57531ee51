"""A CLI agent that ignores SIGTERM and never answers, and whose grandchild ignores
SIGTERM too: only SIGKILL to the whole process group ends them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _pids import record

signal.signal(signal.SIGTERM, signal.SIG_IGN)
record("agent")
code = (
    "import signal,sys,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    f"sys.path.insert(0, {sys.path[0]!r}); from _pids import record; record('child'); "
    "time.sleep(600)"
)
subprocess.Popen([sys.executable, "-c", code])
while True:
    time.sleep(1)
