"""The host knows no plugin: no plugin module, event type, event class or span attribute
of a spec-kit plugin is named anywhere in the host package. Plugins define their events
(and what those mean for a trace) in their own packages."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

from agentshell.telemetry import EVENT_TYPES, Event
from tests.helpers.paths import REPO

HOST = REPO / "host" / "agentshell"
PLUGIN_PACKAGES = sorted(p for p in (REPO / "plugins").glob("*/speckit_*") if p.is_dir())
HOST_EVENTS = {
    "session.started",
    "session.stopped",
    "agent.call.started",
    "agent.call.retry",
    "agent.call.finished",
    "agent.call.failed",
    "plugin.error",
}


def plugin_event_names() -> dict[str, str]:
    """Every event class name and ``type`` string a plugin defines -> its module."""
    names: dict[str, str] = {}
    for package in PLUGIN_PACKAGES:
        if not (package / "events.py").is_file():
            continue
        module_name = f"{package.name}.events"
        module = importlib.import_module(module_name)
        classes = [
            value
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, Event)
            if value.__module__ == module_name
        ]
        for cls in classes:
            names[cls.__name__] = module_name
            names.update({t: module_name for t, c in EVENT_TYPES.items() if c is cls})
    return names


def test_each_plugin_defines_the_events_it_emits() -> None:
    names = plugin_event_names()
    expected = {
        "speckit_consensus.events": {
            "consensus.synthesized",
            "pipeline.halted",
            "pipeline.stage_completed",
            "pipeline.run_started",
            "pipeline.stage_started",
            "pipeline.run_finished",
        },
        "speckit_faults.events": {"fault.injected"},
        "speckit_metrics.events": {"metrics.tokens", "metrics.budget_alert"},
        "speckit_device_login.events": {"auth.login", "auth.refresh", "auth.logout"},
    }
    for module, types in expected.items():
        assert {n for n, m in names.items() if m == module and "." in n} == types


def test_the_host_alone_registers_only_its_own_events() -> None:
    code = (
        "import json, agentshell.telemetry as t, agentshell.shell, agentshell.sinks.otlp,"
        " agentshell.sinks.console, agentshell.sinks.jsonl;"
        "print(json.dumps(sorted(t.EVENT_TYPES)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(json.loads(out.stdout)) == HOST_EVENTS


def offences(names: dict[str, str], root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in {".py", ".pyi", ".toml", ".md", ".json"}:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [
                f"{path.relative_to(root)}:{number}: {name} ({where})"
                for name, where in names.items()
                if name in line
            ]
    return found


def test_the_host_source_names_no_plugin_module_event_or_attribute() -> None:
    names = plugin_event_names()
    assert len(names) >= 20  # class names and type strings of four plugins
    names["speckit_"] = "a plugin package"
    names["spec_kit"] = "the consensus plugin's span attributes"
    assert offences(names, HOST) == []


def test_the_scan_finds_a_plugin_name_where_there_is_one(tmp_path: Path) -> None:
    """The scan is not vacuous: a host file naming a plugin event is caught."""
    fake = tmp_path / "agentshell"
    fake.mkdir()
    (fake / "otlp.py").write_text("if event.type == 'consensus.synthesized':\n    pass\n")
    found = offences({"consensus.synthesized": "speckit_consensus.events"}, fake)
    assert found == ["otlp.py:1: consensus.synthesized (speckit_consensus.events)"]
