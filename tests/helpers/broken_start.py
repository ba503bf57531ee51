"""A test plugin whose start-up breaks, in the way ``BROKEN_START`` names:

- ``config-model``: its ``[plugins.broken_start]`` model's validator raises a
  ``TypeError`` (pydantic turns only ``ValueError``/``AssertionError`` into a
  validation error, so this escapes validation as plugin code, not a config problem);
- ``exit``: its ``register_config`` hook calls ``sys.exit(3)``;
- ``interrupt``: its ``register_config`` hook raises ``KeyboardInterrupt`` (the one
  exception the host lets through a hook: it stops the process).

Each of these runs before commands are registered. It also registers ``/broken-ok``, so
a test can tell whether the plugin survived. (The setting is not an ``AGENTSHELL_*``
variable: the shell warns about unknown ones.) Load it with ``agentshell -p
tests.helpers.broken_start`` (repo root on PYTHONPATH).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from pydantic import BaseModel, model_validator

from agentshell.commands import Command, CommandContext
from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell.hookspecs import Register

SECTION = "broken_start"


class BrokenSettings(BaseModel):
    level: int = 1

    @model_validator(mode="after")
    def _explode(self) -> BrokenSettings:
        if os.environ.get("BROKEN_START") == "config-model":
            raise TypeError("the validator itself is broken")
        return self


@hookimpl
def register_config(register: Register) -> None:
    how = os.environ.get("BROKEN_START", "")
    if how == "exit":
        sys.exit(3)
    if how == "interrupt":
        raise KeyboardInterrupt
    register(SECTION, BrokenSettings)


def _ok(ctx: CommandContext) -> int:
    ctx.out.print("broken-start plugin is working")
    return 0


@hookimpl
def register_commands(register: Register) -> None:
    register(Command("broken-ok", _ok, help="answers when the plugin survived start-up"))
