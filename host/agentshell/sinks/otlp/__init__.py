"""The ``otlp`` telemetry sink: OpenTelemetry traces and metrics over OTLP/HTTP.

- :mod:`.settings` — ``[telemetry.otlp]``;
- :mod:`.sink` — the sink: its private pipelines, event dispatch, counters, bounded close;
- :mod:`.genai` — agent calls as GenAI ``chat`` spans and histograms;
- :mod:`.tree` — the spans other events open and close through ``Event.span_ops()``;
- :mod:`.export` — counting exporters and the routing of the SDK's log records.

OpenTelemetry is imported only inside the factory: the shell never pays for it unless
this sink is selected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentshell.plugins import hookimpl

from .settings import OtlpSettings

if TYPE_CHECKING:
    from agentshell.hookspecs import Register

    from .sink import OtlpSink


def _factory(shell: Any, settings: OtlpSettings) -> OtlpSink:
    from .sink import OtlpSink

    def provider_of(agent: str) -> str | None:
        # gen_ai.provider.name: [telemetry.otlp.providers], then the agent's
        # options.provider, else (in genai) the backend name. Looked up per event:
        # agents are (re)built after the sinks start and on /config reload.
        if agent in settings.providers:
            return settings.providers[agent]
        spec = (getattr(shell, "agents", None) or {}).get(agent)
        provider = (getattr(spec, "options", None) or {}).get("provider")
        return provider if isinstance(provider, str) and provider else None

    def report(message: str) -> None:
        shell.output.warn(
            f"telemetry sink otlp: {message} (reported once; /telemetry shows the counts)"
        )

    telemetry = getattr(getattr(shell, "config", None), "telemetry", None)
    flush_timeout = getattr(telemetry, "flush_timeout_s", 2.0)
    return OtlpSink(settings, provider_of, report, flush_timeout)


@hookimpl
def register_telemetry_sinks(register: Register) -> None:
    register("otlp", _factory, OtlpSettings)


__all__ = ["OtlpSettings", "register_telemetry_sinks"]
