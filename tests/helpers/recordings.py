"""The recorded demo answers (plugins/speckit_consensus/recordings), for loopback-server
responders that answer each agent with what a real model said for the stage asked."""

from __future__ import annotations

import json
import re
from typing import Any

DEMO = "SPEC-KIT-DEMO"
# the consensus prompt templates name their stage on a line of its own
STAGE_LINE = re.compile(r"^STAGE: (\w+)$", re.MULTILINE)


def stage_of(request: dict[str, Any]) -> str:
    """The stage a chat-completions request's last message asks for (``"?"`` if none)."""
    match = STAGE_LINE.search(request["messages"][-1]["content"])
    return match.group(1) if match else "?"


def recorded(stage: str, agent: str, spec: str = DEMO, **changes: Any) -> str:
    """``agent``'s recorded answer for ``stage`` as JSON text, with ``changes`` merged in."""
    from speckit_consensus.agents import RECORDINGS_DIR  # the plugin under test, on use

    content = json.loads((RECORDINGS_DIR / spec / stage / f"{agent}.json").read_text())
    return json.dumps({**content["content"], **changes} if changes else content["content"])
