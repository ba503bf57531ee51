"""A child process for the cross-process refresh tests (not a test module).

``python -m tests.plugins.device_login.refresh_child PROVIDER`` starts a real shell
(configuration from AGENTSHELL_HOME and the working directory, as ``agentshell`` does),
asks PROVIDER for credentials the way a backend does before an agent call, and prints
``token <fingerprint>`` — a short hash, never the token — or ``error: <message>`` and
exits 1.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys

from agentshell import AgentshellError, Shell


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


async def main(name: str) -> int:
    shell = Shell(mode="run")
    await shell.start()
    try:
        provider = shell.auth.provider(name)
        if provider is None:
            print(f"error: no provider {name}", flush=True)
            return 1
        try:
            creds = await provider.get_credentials()
        except AgentshellError as exc:
            print(f"error: {exc}", flush=True)
            return 1
        print(f"token {fingerprint(creds.token) if creds else 'none'}", flush=True)
        return 0
    finally:
        await shell.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
