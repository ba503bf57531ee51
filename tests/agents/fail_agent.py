"""A CLI agent that fails: prints a progress line to stdout, some stderr lines, and
exits with ``argv[1]`` (default 1). ``--signal`` kills itself with SIGKILL instead.
The last stderr line carries a fake key to check that errors are redacted."""

from __future__ import annotations

import os
import signal
import sys

print("working...", flush=True)
print("warming up", file=sys.stderr)
if "--signal" in sys.argv:
    os.kill(os.getpid(), signal.SIGKILL)
print("fatal: model refused (OPENAI_API_KEY=sk-test-1234567890abcdef)", file=sys.stderr)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1)
