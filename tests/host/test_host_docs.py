"""Every fenced code block of docs/plugins.md and docs/hooks.md is run, the way a
plugin author would use it, so the docs a newcomer copies from stay true.

Each block is found by a generic parser (a block added later is covered without
touching this file) and handled by its kind, chosen by an HTML comment on the line
before the fence:

* ``<!-- file: PROJECT/PATH -->``: the block is the file PATH of an example project.
  Every project is written to a temporary directory; one with a ``pyproject.toml`` is
  built into a wheel and installed into a fresh virtualenv beside agentshell (built from
  this repo: tests.helpers.venvs), and its entry points must load as plugins; a project
  without one is a directory of ``-p`` modules, each of which must load with
  ``agentshell -p``. An ``agentshell.toml`` is validated against the real config models.
* ``<!-- run-in: PROJECT -->`` (console blocks only): run in that project's directory.
* ``<!-- not-run: reason -->``: not run (a signature excerpt); the reason is required.
* No comment: a python block is a plugin module loaded with ``agentshell -p``; a toml
  block is a pyproject (when it has ``[project]``) or an agentshell configuration,
  validated; a console block is run in the directory holding the projects.

Console blocks are ``$ command`` lines, each followed by lines of its expected output:
the command runs in bash with the venv's ``agentshell`` first on PATH and a fresh
AGENTSHELL_HOME; every expected line must appear in its output, in order (``...``
matches anything), and it must exit 0 unless an expected line starts with ``error:``.
``pip install ./PROJECT`` names a project (installed as above; this suite works
offline). Any other kind of block must be marked ``not-run``. Every python block also
passes ``mypy --strict`` against the installed wheel, as it would for a plugin author.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentshell.agents import AgentRequest
from agentshell.config import Config
from agentshell.plugins import hookimpl
from agentshell.telemetry import EVENT_TYPES
from tests.conftest import CapturedOutput, ShellFactory
from tests.helpers.events import ListSinkPlugin
from tests.helpers.paths import DOCS
from tests.helpers.venvs import venv_env, venv_with
from tests.servers.otlp_receiver import OTLPReceiver

DOC_FILES = (DOCS / "plugins.md", DOCS / "hooks.md")
FENCE = re.compile(r"^(\s*)(```|~~~)(.*)$")
MARKER = re.compile(r"^\s*<!--\s*(not-run|file|run-in):\s*(.*?)\s*-->\s*$")
CONSOLE = {"console", "shell", "sh", "bash", "shell-session"}
PROGRAMS = {"agentshell", "pip"}  # what a console block may run


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marker: str  # "not-run", "file", "run-in" or ""
    value: str  # the marker's argument

    @property
    def id(self) -> str:
        return f"{self.doc.name}:{self.line}:{self.lang or 'plain'}"

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def fenced_blocks(doc: Path) -> list[Block]:
    """Every fenced block of ``doc`` with the marker comment on the line before it."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence, lang = opening.groups()
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        assert end < len(lines), f"{doc}:{i + 1}: unclosed {fence} block"
        body = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : end]) + "\n"
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marked = MARKER.match(before)
        kind, value = marked.groups() if marked else ("", "")
        blocks.append(Block(doc, i + 1, lang.strip(), body, kind, value))
        i = end + 1
    return blocks


BLOCKS = [block for doc in DOC_FILES for block in fenced_blocks(doc)]


def project_files(blocks: list[Block]) -> dict[str, dict[str, str]]:
    """Example projects: name -> relative path -> content."""
    projects: dict[str, dict[str, str]] = {}
    for block in blocks:
        if block.marker == "file":
            project, _, path = block.value.partition("/")
            assert project and path, f"{block.where}: file: expects PROJECT/PATH"
            files = projects.setdefault(project, {})
            assert path not in files, f"{block.where}: {block.value} given twice"
            files[path] = block.text
    return projects


@dataclass
class Examples:
    root: Path  # holds one directory per project
    venv: Path
    homes: Iterator[int]

    def env(self, **extra: str) -> dict[str, str]:
        home = self.root.parent / "homes" / str(next(self.homes))
        env = venv_env(self.venv, home, **extra)
        env.pop("AGENTSHELL_TELEMETRY_SINKS")  # the examples' own [telemetry] applies
        return env

    def agentshell(self, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "agentshell"), *args],
            cwd=cwd,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def loaded(self, module: str, cwd: Path) -> dict[str, Any]:
        """``module`` loaded with ``-p`` from ``cwd``: its /plugins entry."""
        done = self.agentshell("-p", module, "plugins", "--json", cwd=cwd, PYTHONPATH=".")
        assert done.returncode == 0, done.stderr
        plugins = {item["name"]: item for item in json.loads(done.stdout)}
        return plugins[module]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Examples:
    """Every example project written out; those with a pyproject built and installed
    into one fresh venv with agentshell."""
    root = tmp_path_factory.mktemp("docs")
    projects_dir = root / "examples"
    packaged: list[Path] = []
    for project, files in project_files(BLOCKS).items():
        for path, text in files.items():
            target = projects_dir / project / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        if "pyproject.toml" in files:
            packaged.append(projects_dir / project)
    projects_dir.mkdir(exist_ok=True)
    venv = venv_with(root, packaged)
    return Examples(projects_dir, venv, iter(range(10_000)))


# -- the handlers, one per kind of block --------------------------------------------------


def check_pyproject(block: Block, data: dict[str, Any], examples: Examples | None) -> None:
    """A plugin's pyproject: builds with a declared backend and names its entry points;
    installed (when ``examples``), every entry point loads as a plugin of its
    distribution."""
    build = data.get("build-system", {})
    assert build.get("requires") and build.get("build-backend"), (
        f"{block.where}: a pyproject needs [build-system] requires and build-backend"
    )
    project = data["project"]
    entry_points = project.get("entry-points", {}).get("agentshell", {})
    assert entry_points, f"{block.where}: no [project.entry-points.agentshell]"
    if examples is None:
        return
    done = examples.agentshell("plugins", "--json", cwd=examples.root)
    assert done.returncode == 0, done.stderr
    plugins = {item["name"]: item for item in json.loads(done.stdout)}
    for name, module in entry_points.items():
        info = plugins[name]
        assert info["state"] == "loaded", f"{block.where}: {name}: {info}"
        assert (info["module"], info["distribution"]) == (module, project["name"])


def check_config(block: Block, data: dict[str, Any]) -> None:
    """An agentshell configuration: valid for the real models (plugin tables are checked
    by their plugins when a console block runs with it)."""
    Config.model_validate(data)


def run_python(block: Block, examples: Examples) -> None:
    compile(block.text, block.where, "exec")  # a syntax error names the doc's line
    if block.marker == "file":
        project, _, path = block.value.partition("/")
        directory = examples.root / project
        if (directory / "pyproject.toml").exists():
            return  # checked with its pyproject: its entry points load
        module = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    else:
        directory = examples.root / f"_block_{block.doc.stem}_{block.line}"
        directory.mkdir(exist_ok=True)
        module = f"doc_{block.doc.stem}_{block.line}"
        (directory / f"{module}.py").write_text(block.text, encoding="utf-8")
    info = examples.loaded(module, directory)
    assert info["state"] == "loaded", f"{block.where}: {info}"


def run_toml(block: Block, examples: Examples) -> None:
    data = tomllib.loads(block.text)
    name = block.value.rpartition("/")[2] if block.marker == "file" else ""
    if "project" in data or name == "pyproject.toml":
        check_pyproject(block, data, examples if block.marker == "file" else None)
    else:
        check_config(block, data)


def expected_line(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(map(re.escape, text.split("..."))))


def run_console(block: Block, examples: Examples) -> None:
    cwd = examples.root / block.value if block.marker == "run-in" else examples.root
    assert cwd.is_dir(), f"{block.where}: run-in: no example project {block.value!r}"
    sessions: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            sessions.append((line[2:], []))
        elif line.strip():
            assert sessions, f"{block.where}: output before the first '$ ' command"
            sessions[-1][1].append(line.rstrip())
    assert sessions, f"{block.where}: a console block without a '$ ' command"
    for command, expected in sessions:
        words = command.split()
        program = next(w for w in words if "=" not in w)  # after VAR=value prefixes
        assert program in PROGRAMS, f"{block.where}: {command!r}: runs {program!r}"
        if program == "pip":
            assert words[:2] == ["pip", "install"] and len(words) == 3, command
            project = cwd / words[2]
            assert (project / "pyproject.toml").is_file(), f"{block.where}: {command!r}"
            continue  # built and installed by the fixture (offline)
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=examples.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        got = [line.rstrip() for line in done.stdout.splitlines()]
        position = 0
        for want in expected:
            pattern = expected_line(want)
            while position < len(got) and not pattern.fullmatch(got[position]):
                position += 1
            assert position < len(got), (
                f"{block.where}: {command!r} did not print {want!r} (in order); it printed:\n"
                + done.stdout
            )
            position += 1
        fails = any(line.startswith("error:") for line in expected)
        assert (done.returncode != 0) == fails, (
            f"{block.where}: {command!r} exited {done.returncode}:\n{done.stdout}"
        )


def test_the_parser_sees_every_fence() -> None:
    for doc in DOC_FILES:
        fences = [
            line for line in doc.read_text(encoding="utf-8").splitlines() if FENCE.match(line)
        ]
        assert len(fences) == 2 * len([b for b in BLOCKS if b.doc == doc]), doc
    assert len(BLOCKS) >= 8


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: block.id)
def test_doc_block_runs(block: Block, examples: Examples) -> None:
    if block.marker == "not-run":
        assert block.value, f"{block.where}: not-run needs a reason"
        return
    if block.marker == "run-in":
        assert block.lang in CONSOLE, f"{block.where}: run-in is for console blocks"
    if block.lang == "python":
        run_python(block, examples)
    elif block.lang == "toml":
        run_toml(block, examples)
    elif block.lang in CONSOLE:
        run_console(block, examples)
    else:
        pytest.fail(
            f"{block.where}: a {block.lang or 'plain'} block cannot be run: make it python, "
            "toml or console, or mark it <!-- not-run: reason -->"
        )


# -- what a console run cannot show: the toolbar, and the sink's events ------------------------


def module_from(block: Block) -> types.ModuleType:
    name = block.value.replace("/", "_") or f"doc_{block.doc.stem}_{block.line}"
    module = types.ModuleType(name)
    # importable by name, as a plugin module is: pydantic resolves the postponed
    # annotations of an event class through sys.modules
    sys.modules[name] = module
    exec(compile(block.text, block.where, "exec"), module.__dict__)
    return module


def file_block(value: str) -> Block:
    return next(b for b in BLOCKS if b.marker == "file" and b.value == value)


async def test_the_twenty_line_example_works(
    make_shell: ShellFactory, output: CapturedOutput
) -> None:
    block = file_block("agentshell-wordcount/agentshell_wordcount/__init__.py")
    heading = re.search(r"^## A complete plugin in (\d+) lines$", DOC_FILES[0].read_text(), re.M)
    assert heading is not None
    assert len(block.text.strip().splitlines()) <= int(heading.group(1))
    plugin = module_from(block)
    shell = await make_shell(plugins=[plugin])
    name = plugin.__name__
    assert shell.plugins.infos[name].state == "loaded"
    assert await shell.execute("/wordcount one two --echo") == 0
    assert "2 words: one two" in output.text
    assert await shell.execute("/wordcount") == 1
    assert "wc 2" in shell.status_text()


async def test_the_telemetry_sink_example_writes_every_event(make_shell: ShellFactory) -> None:
    plugin = module_from(file_block("tap-demo/tap_sink.py"))
    shell = await make_shell(
        plugins=[plugin],
        config='[telemetry]\nsinks = ["tap"]\n\n[telemetry.tap]\npath = "t.jsonl"\n',
    )
    assert await shell.execute("/help") == 0
    await shell.stop()
    lines = (shell.data_dir / "t.jsonl").read_text(encoding="utf-8").splitlines()
    types_seen = [json.loads(line)["type"] for line in lines]
    assert types_seen[0] == "session.started"
    assert types_seen[-1] == "session.stopped"


async def test_the_backend_examples_completer_offers_the_agents(make_shell: ShellFactory) -> None:
    plugin = module_from(file_block("echo-demo/agentshell_echo.py"))
    config = file_block("echo-demo/agentshell.toml").text
    shell = await make_shell(plugins=[plugin], config=config)
    [agent] = shell.commands.get("ask").args[:1]
    # every agent that can be called (the spec-kit plugins' demo agents too)
    assert sorted(agent.complete(shell, "")) == sorted(shell.agents)
    assert {"mute", "parrot"} <= set(shell.agents)
    assert list(agent.complete(shell, "pa")) == ["parrot"]


async def test_the_completer_example_completes_on_tab(make_shell: ShellFactory) -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from agentshell.repl import CommandCompleter

    shell = await make_shell(plugins=[module_from(file_block("paint-demo/paint.py"))])
    completer = CommandCompleter(shell)

    def tab(line: str) -> list[str]:
        document = Document(line, len(line))
        return [c.text for c in completer.get_completions(document, CompleteEvent())]

    assert tab("/paint ") == ["warm", "cold"]
    assert tab("/paint warm ") == ["red", "orange"]
    assert tab("/paint cold t") == ["teal"]


@pytest.mark.slow
def test_the_python_blocks_type_check_against_the_installed_package(
    examples: Examples, tmp_path: Path
) -> None:
    """What a plugin author's mypy --strict says about the examples, against the wheel
    built from this repo (its py.typed marker included): nothing."""
    runnable = [b for b in BLOCKS if b.lang == "python" and b.marker != "not-run"]
    for block in runnable:
        name = f"{block.doc.stem}_{block.line}.py"
        (tmp_path / name).write_text(block.text, encoding="utf-8")
    files = sorted(p.name for p in tmp_path.glob("*.py"))
    mypy = [str(examples.venv / "bin" / "python"), "-m", "mypy", "--strict", "--no-incremental"]
    done = subprocess.run(
        [*mypy, *files],
        cwd=tmp_path,
        env=examples.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- the event-types examples, the exit status of a bad configuration --------------------


def test_docs_give_exit_2_for_a_bad_configuration() -> None:
    from agentshell.cli import EXIT_USAGE

    spec_kit = (DOCS / "spec-kit.md").read_text(encoding="utf-8")
    sentence = spec_kit[spec_kit.index("Exit codes") :].split("\n\n")[0]
    assert f"`{EXIT_USAGE}` the configuration is invalid" in sentence
    assert "bad configuration" not in sentence.split(f"`{EXIT_USAGE}`")[0]
    configuration = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert f"stops with exit status {EXIT_USAGE}" in configuration


class ApprovingBackend:
    """Answers every prompt with "approve" after a recorded 12.5 s (no waiting)."""

    async def complete(self, call: Any) -> Any:
        from agentshell.agents import AgentResponse

        return AgentResponse(agent=call.agent.name, content="approve", latency_ms=12_500.0)

    async def aclose(self) -> None:
        pass


class ApprovingBackendPlugin:
    __name__ = "approving_backend"

    @hookimpl
    def register_agent_backends(self, register: Any) -> None:
        register("approving", lambda shell: ApprovingBackend())


@pytest.fixture
def forget_doc_events() -> Iterator[None]:
    """The examples define event types; keep them out of the registry afterwards
    (test_telemetry_bus checks it holds exactly the documented events)."""
    before = set(EVENT_TYPES)
    yield
    for name in set(EVENT_TYPES) - before:
        del EVENT_TYPES[name]


async def test_the_event_types_example_traces_a_review(
    make_shell: Any, otlp_receiver: OTLPReceiver, forget_doc_events: None, output: Any
) -> None:
    [block] = [b for b in BLOCKS if b.lang == "python" and "class ReviewStarted(Event)" in b.text]
    plugin = module_from(block)
    config = (
        '[telemetry]\nsinks = ["otlp"]\nflush_timeout_s = 30\n'
        f'[telemetry.otlp]\nendpoint = "{otlp_receiver.endpoint}"\n'
        '[agents.reviewer]\nbackend = "approving"\nmodel = "m1"\n'
    )
    shell = await make_shell(plugins=[plugin, ApprovingBackendPlugin()], config=config)
    status = await shell.execute("/review README.md")
    assert status == 0, output.text + output.errors
    shell.telemetry.remove_sink("otlp", timeout=30)
    spans = {s["name"]: s for s in otlp_receiver.wait_for_spans(2)}
    review, chat = spans["invoke_agent review"], spans["chat m1"]
    assert review["parent_span_id"] is None and chat["parent_span_id"] == review["span_id"]
    assert chat["trace_id"] == review["trace_id"]
    assert review["attributes"]["review.verdict"] == "approve"
    assert [e["name"] for e in review["events"]] == ["verdict"]
    assert chat["attributes"]["review.path"] == review["attributes"]["review.path"] == "README.md"


async def test_the_hooks_event_example_marks_slow_calls(
    make_shell: Any, forget_doc_events: None
) -> None:
    [block] = [b for b in BLOCKS if b.lang == "python" and "class SlowCall(Event)" in b.text]
    plugin = module_from(block)
    events = ListSinkPlugin()
    config = '[telemetry]\nsinks = ["list"]\n[agents.a]\nbackend = "approving"\n'
    shell = await make_shell(plugins=[plugin, ApprovingBackendPlugin(), events], config=config)
    await shell.runner.run(shell.agents["a"], AgentRequest(prompt="x"), {"trace_parent": "k1"})
    assert shell.telemetry.flush(10)
    [slow] = [e for e in events.events if e.type == "slowcalls.slow"]
    assert [(op.key, op.name) for op in slow.span_ops()] == [("k1", "slow call")]
