"""Reset hints of rate-limited answers: headers, error bodies and messages."""

from __future__ import annotations

import datetime as dt

import pytest

from agentshell.ratelimit import (
    parse_duration,
    parse_retry_after,
    parse_timestamp,
    reset_from_body,
    reset_from_headers,
    reset_from_message,
    reset_hint,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def seconds(when: dt.datetime | None) -> float | None:
    return None if when is None else round((when - NOW).total_seconds(), 6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("250ms", 0.25),
        ("1h2m3.5s", 3723.5),
        ("17.252s", 17.252),
        ("2", 2.0),
        ("0.5", 0.5),
        ("", None),
        ("soon", None),
        ("5 parsecs", None),
    ],
)
def test_parse_duration(text: str, expected: float | None) -> None:
    value = parse_duration(text)
    if expected is None:
        assert value is None
    else:
        assert value == pytest.approx(expected)


def test_retry_after_seconds_and_http_date() -> None:
    assert seconds(parse_retry_after("7", NOW)) == 7.0
    assert seconds(parse_retry_after("Sun, 01 Mar 2026 12:00:42 GMT", NOW)) == 42.0
    # a date in the past means "now", never a negative wait
    assert seconds(parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", NOW)) == 0.0
    assert parse_retry_after("tomorrow-ish", NOW) is None
    assert parse_retry_after("-3", NOW) is None


def test_headers_prefer_retry_after_then_exhausted_limit() -> None:
    assert (
        seconds(reset_from_headers({"Retry-After": "3", "x-ratelimit-reset-requests": "9s"}, NOW))
        == 3.0
    )
    assert seconds(reset_from_headers({"retry-after-ms": "1500"}, NOW)) == 1.5
    both = {"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"}
    # neither says which limit ran out: wait for both
    assert seconds(reset_from_headers(both, NOW)) == 360.0
    tokens_left = {
        **both,
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-remaining-tokens": "900",
    }
    assert seconds(reset_from_headers(tokens_left, NOW)) == 1.0
    assert seconds(reset_from_headers({"X-RateLimit-Reset-Tokens": "250ms"}, NOW)) == 0.25
    epoch = str(int(NOW.timestamp()) + 30)
    assert seconds(reset_from_headers({"x-ratelimit-reset": epoch}, NOW)) == 30.0
    assert reset_from_headers({"content-type": "application/json"}, NOW) is None
    # a garbled Retry-After falls through to the next hint instead of failing
    assert (
        seconds(
            reset_from_headers({"Retry-After": "soon", "x-ratelimit-reset-requests": "2s"}, NOW)
        )
        == 2.0
    )


def test_body_fields() -> None:
    assert seconds(reset_from_body({"error": {"reset_seconds": 12}}, NOW)) == 12.0
    assert seconds(reset_from_body({"resets_in_seconds": 4.5}, NOW)) == 4.5
    assert seconds(reset_from_body({"error": {"reset_at": "2026-03-01T12:01:00Z"}}, NOW)) == 60.0
    assert seconds(reset_from_body({"reset_at": "2026-03-01T13:00:00+01:00"}, NOW)) == 0.0
    assert (
        seconds(reset_from_body({"error": {"message": "Please try again in 17.252s."}}, NOW))
        == 17.252
    )
    assert reset_from_body({"error": {"message": "slow down"}}, NOW) is None
    assert reset_from_body("not a dict", NOW) is None
    assert reset_from_body({"reset_seconds": True}, NOW) is None


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Rate limit reached for gpt-4o. Please try again in 17.252s. Visit ...", 17.252),
        ("Please try again in 20ms.", 0.02),
        ("try again in 1m30s", 90.0),
        ("Try again in 3 seconds", 3.0),
        ("retry after 2 minutes", 120.0),
        ("try again in 500 milliseconds", 0.5),
        ("try again later", None),
    ],
)
def test_messages(message: str, expected: float | None) -> None:
    assert seconds(reset_from_message(message, NOW)) == expected


def test_reset_hint_order_and_timestamps() -> None:
    headers = {"retry-after": "2"}
    body = {"error": {"reset_seconds": 9, "message": "try again in 30s"}}
    assert seconds(reset_hint(headers, body, "try again in 40s", NOW)) == 2.0
    assert seconds(reset_hint({}, body, "try again in 40s", NOW)) == 9.0
    assert seconds(reset_hint(None, None, "try again in 40s", NOW)) == 40.0
    assert reset_hint(None, None, None, NOW) is None
    # absurd hints (a week and more) are ignored rather than obeyed
    assert reset_hint({"retry-after": str(30 * 24 * 3600)}, None, None, NOW) is None
    assert parse_timestamp(NOW.timestamp() * 1000) == NOW
    assert parse_timestamp("garbage") is None
