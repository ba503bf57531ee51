"""A CLI agent that answers ``echo: <prompt>``: the prompt from stdin, or from the
arguments when there are any. ``ECHO_PREFIX`` overrides the prefix (tests env passing)."""

from __future__ import annotations

import os
import sys

prompt = " ".join(sys.argv[1:]) if len(sys.argv) > 1 else sys.stdin.read()
print(f"{os.environ.get('ECHO_PREFIX', 'echo')}: {prompt}")
