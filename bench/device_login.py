"""What device-login credentials cost an agent call.

Every call through an agent with ``auth = "<provider>"`` asks the provider for
credentials: a read of the token store and an expiry check (no network while the
token is fresh). This measures that per-call cost for the plain-text file store and,
when one is usable (e.g. under tests/run_with_keyring.sh), the Secret Service keyring,
next to reading an environment variable (``auth = "env:NAME"``) as the baseline, and
the cost of an uncached store read (what the in-memory cache saves on every call).
Prints medians of several rounds (microseconds per call) and the ratios to env. Run:
``python bench/device_login.py [-n 500] [-r 7]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agentshell.agents import AgentSpec
from agentshell.auth import keyring_usable
from agentshell.output import Output
from agentshell.shell import Shell
from speckit_device_login.provider import DeviceLoginProvider
from speckit_device_login.tokens import TokenRecord

CONFIG = """
[plugins.device_login.providers.bench]
device_authorization_endpoint = "https://idp.example.com/device"
token_endpoint = "https://idp.example.com/token"
client_id = "bench"
"""


async def _shell(home: Path) -> Shell:
    (home / "config.toml").write_text(CONFIG, encoding="utf-8")
    env = {**os.environ, "AGENTSHELL_HOME": str(home), "AGENTSHELL_LOAD_PLUGINS": "device_login"}
    shell = Shell(environ=env, cwd=home, mode="run", output=Output(io.StringIO(), io.StringIO()))
    await shell.start()
    return shell


async def _per_call_us(shell: Shell, agent: AgentSpec, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await shell.auth.credentials(agent)
    return (time.perf_counter() - start) / n * 1e6


async def _measure(store: str, n: int, rounds: int) -> dict[str, float]:
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    if store == "file":
        keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            shell = await _shell(Path(tmp))
            provider = shell.auth.provider("bench")
            assert isinstance(provider, DeviceLoginProvider)
            record = TokenRecord(
                access_token="bench-access-token-0123456789",
                refresh_token="bench-refresh-token-0123456789",
                expires_at=time.time() + 3600,
                scope="openid",
            )
            provider.store.set(provider.key, record.model_dump())
            os.environ["BENCH_DEVICE_LOGIN_KEY"] = "bench-env-key-0123456789"
            agents = {
                "env": AgentSpec(name="a", backend="openai", auth="env:BENCH_DEVICE_LOGIN_KEY"),
                store: AgentSpec(name="b", backend="openai", auth="bench"),
            }
            results: dict[str, list[float]] = {k: [] for k in agents}
            for _ in range(rounds):
                for key, agent in agents.items():
                    results[key].append(await _per_call_us(shell, agent, n))
            cold: list[float] = []
            for _ in range(rounds):  # an uncached store read (first call, each refresh)
                start = time.perf_counter()
                for _ in range(max(n // 10, 1)):
                    provider.load(fresh=True)
                cold.append((time.perf_counter() - start) / max(n // 10, 1) * 1e6)
            results["store_read"] = cold
            provider.store.delete(provider.key)
            await shell.stop()
            return {k: statistics.median(v) for k, v in results.items()}
    finally:
        keyring.set_keyring(previous)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=500, help="calls per round")
    parser.add_argument("-r", type=int, default=7, help="rounds (median reported)")
    args = parser.parse_args(argv)
    stores = ["file"] + (["keyring"] if keyring_usable()[0] else [])
    for store in stores:
        medians: dict[str, Any] = asyncio.run(_measure(store, args.n, args.r))
        base = medians["env"]
        print(
            f"{store:8s} provider {medians[store]:8.1f} us/call   env {base:6.1f} us/call   "
            f"ratio {medians[store] / base:6.1f}x   uncached store read "
            f"{medians['store_read']:9.1f} us"
        )
    if "keyring" not in stores:
        print("keyring  (no usable Secret Service here; run under tests/run_with_keyring.sh)")


if __name__ == "__main__":
    main()
