"""A CLI agent that prints its answer in two parts: ``lines_agent.py GATE FIRST REST``
prints FIRST (a line), flushes, waits until the file GATE exists, then prints REST
(as given: no newline added). Lets a test see the first line before the agent ends."""

from __future__ import annotations

import sys
import time
from pathlib import Path

gate, first, rest = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.stdin.read()
sys.stdout.write(first + "\n")
sys.stdout.flush()
while not gate.exists():  # another process creates it: polling is the only way
    time.sleep(0.01)
sys.stdout.write(rest)
sys.stdout.flush()
