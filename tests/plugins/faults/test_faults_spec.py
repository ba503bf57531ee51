"""Parsing the fault environment: table tests for each format and property tests
(valid specs parse, invalid ones produce a problem naming the entry, nothing crashes)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from speckit_faults.spec import (
    DEFAULT_TIMEOUT_MS,
    parse_faults,
    parse_reset,
    parse_timeout_ms,
    scope_enabled,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("disconnect:3,429:1,timeout:2", {"disconnect": 3, "rate_limit": 1, "timeout": 2}),
        (" disconnect : 3 ,  429:1 , timeout:2 ", {"disconnect": 3, "rate_limit": 1, "timeout": 2}),
        ("rate_limit:4", {"disconnect": 0, "rate_limit": 4, "timeout": 0}),
        ("RATE_LIMIT:1,Disconnect:1", {"disconnect": 1, "rate_limit": 1, "timeout": 0}),
        ("disconnect:1,disconnect:2", {"disconnect": 3, "rate_limit": 0, "timeout": 0}),
        ("timeout:0,", {"disconnect": 0, "rate_limit": 0, "timeout": 0}),
        ("timeout:1000000", {"disconnect": 0, "rate_limit": 0, "timeout": 1_000_000}),
        ("429:0001000000", {"disconnect": 0, "rate_limit": 1_000_000, "timeout": 0}),
        ("", {"disconnect": 0, "rate_limit": 0, "timeout": 0}),
    ],
)
def test_valid_fault_specs(text: str, expected: dict[str, int]) -> None:
    parsed = parse_faults(text)
    assert parsed.counts == expected
    assert parsed.problems == []


@pytest.mark.parametrize(
    ("text", "entry", "why"),
    [
        ("disconect:3", "'disconect:3'", "unknown kind 'disconect'"),
        ("disconnect", "'disconnect'", "expected kind:count"),
        ("disconnect:-1", "'disconnect:-1'", "expected kind:count"),
        ("timeout:two", "'timeout:two'", "expected kind:count"),
        ("500:1", "'500:1'", "unknown kind '500'"),
        ("429:1.5", "'429:1.5'", "expected kind:count"),
        ("disconnect:1000001", "'disconnect:1000001'", "count too large"),
        ("disconnect:99999999999999999999", "'disconnect:99999999999999999999'", "0 to 1,000,000"),
        ("429:" + "9" * 5000, "429:9999", "count too large"),
    ],
)
def test_malformed_entries_are_named(text: str, entry: str, why: str) -> None:
    parsed = parse_faults(f"disconnect:1,{text},timeout:1")
    assert parsed.counts["disconnect"] == 1 and parsed.counts["timeout"] == 1
    assert len(parsed.problems) == 1
    assert entry in parsed.problems[0] and why in parsed.problems[0]
    assert parsed.problems[0].startswith("CODEX_FAULTS:")


NOW = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("now+30s", 30),
        ("30s", 30),
        ("30", 30),
        ("now+2m", 120),
        ("now + 1h", 3600),
        ("now+500ms", 0.5),
        ("now+1.5s", 1.5),
        ("2030-01-01T12:00:10Z", 10),
        ("2030-01-01T13:00:05+01:00", 5),
        ("2030-01-01 12:01:00+00:00", 60),
    ],
)
def test_reset_hints(text: str, seconds: float) -> None:
    hint, problem = parse_reset(text)
    assert problem is None and hint is not None
    assert (hint.reset_at(NOW) - NOW).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "now+", "now-5s", "30x", "2030-01-01", "-5"])
def test_bad_reset_hints_are_problems(text: str) -> None:
    hint, problem = parse_reset(text)
    assert hint is None
    assert problem is not None and repr(text) in problem and "CODEX_FAULTS_429_RESET" in problem


def test_empty_reset_is_no_hint() -> None:
    assert parse_reset("  ") == (None, None)


@pytest.mark.parametrize(
    ("text", "value", "bad"),
    [
        (None, DEFAULT_TIMEOUT_MS, False),
        ("", DEFAULT_TIMEOUT_MS, False),
        ("1500", 1500, False),
        (" 250 ", 250, False),
        ("0", DEFAULT_TIMEOUT_MS, True),
        ("1.5s", DEFAULT_TIMEOUT_MS, True),
        ("-3", DEFAULT_TIMEOUT_MS, True),
    ],
)
def test_timeout_ms(text: str | None, value: int, bad: bool) -> None:
    parsed, problem = parse_timeout_ms(text)
    assert parsed == value
    assert (problem is not None) == bad
    if problem:
        assert "CODEX_FAULTS_TIMEOUT_MS" in problem and "30000" in problem


@pytest.mark.parametrize(
    ("value", "on"),
    [
        ("spec_kit", True),
        ("speckit", True),
        (" SPEC_KIT ", True),
        ("", False),
        (None, False),
        ("all", False),
    ],
)
def test_scope(value: str | None, on: bool) -> None:
    assert scope_enabled(value) is on


kinds = st.sampled_from(["disconnect", "429", "rate_limit", "timeout", "Timeout"])
spaces = st.text(" \t", max_size=2)


@given(st.lists(st.tuples(kinds, st.integers(0, 10**6), spaces, spaces), max_size=8))
def test_valid_specs_always_parse(entries: list[tuple[str, int, str, str]]) -> None:
    text = ",".join(f"{a}{kind}{b}:{b}{n}{a}" for kind, n, a, b in entries)
    parsed = parse_faults(text)
    assert parsed.problems == []
    assert sum(parsed.counts.values()) == sum(n for _, n, _, _ in entries)


@given(st.text(max_size=60))
def test_arbitrary_text_never_crashes_and_every_bad_entry_is_reported(text: str) -> None:
    parsed = parse_faults(text)
    assert all(n >= 0 for n in parsed.counts.values())
    entries = [e.strip() for e in text.split(",") if e.strip()]
    good = parse_faults(",".join(e for e in entries if not parse_faults(e).problems))
    assert len(parsed.problems) == len(entries) - sum(
        1 for e in entries if not parse_faults(e).problems
    )
    assert good.counts == parsed.counts
    for problem in parsed.problems:
        assert problem.startswith("CODEX_FAULTS: ignored entry ")


@given(st.text(max_size=40))
def test_env_values_never_crash(text: str) -> None:
    hint, problem = parse_reset(text)
    assert (hint is None) or (problem is None)
    value, _ = parse_timeout_ms(text)
    assert value > 0
