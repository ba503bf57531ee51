"""Real loopback servers for agentshell's tests.

- `tests.servers.openai_server.OpenAIServer`: scriptable OpenAI-compatible chat completions.
- `tests.servers.otlp_receiver.OTLPReceiver`: OTLP/HTTP receiver decoding traces, metrics, logs.
- `tests.servers.oidc_server.OIDCServer`: npm ``oidc-provider`` (device flow) as a subprocess.

Pytest fixtures live in `tests.servers.fixtures` (``pytest_plugins = ["tests.servers.fixtures"]``).
"""
