"""Redaction of free text: secret assignments and tokens are masked, prose is not."""

from __future__ import annotations

import pytest

from agentshell.redact import (
    MASK,
    contains_registered_secret,
    is_secret_key,
    redact,
    redact_tree,
    register_secret,
    settled,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OPENAI_API_KEY=sk-abc", f"OPENAI_API_KEY={MASK}"),
        ("password=hunter2", f"password={MASK}"),
        ("Authorization: Bearer abc.def", f"Authorization: Bearer {MASK}"),
        ("X-Api-Key: zz9f0c77aa", f"X-Api-Key: {MASK}"),
        ("client_secret: abc-defgh", f"client_secret: {MASK}"),
        ("api_key: 'short'", f"api_key: {MASK}"),
        ('{"refresh_token": "r-123"}', f'{{"refresh_token": {MASK}}}'),
        # references and prose stay readable
        ('api_key = { env = "X" }', 'api_key = { env = "X" }'),
        ('auth = "env:FOO"', 'auth = "env:FOO"'),
        ("waiting for authorization: 9:30 left", "waiting for authorization: 9:30 left"),
        ("error: invalid_grant: token expired", "error: invalid_grant: token expired"),
        # after "name:" a plain word is prose, not a value (pydantic's "Value error")
        (
            "client_secret: Value error, a literal client_secret is not allowed",
            "client_secret: Value error, a literal client_secret is not allowed",
        ),
        ("X-Api-Key: missing", "X-Api-Key: missing"),
        ("access_token: abc123", "access_token: abc123"),  # shorter than 8: not token-like
    ],
)
def test_patterns(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_registered_secret_is_masked_anywhere() -> None:
    register_secret("opaque-value-1234")
    assert "opaque-value-1234" not in redact("the server said opaque-value-1234 was bad")


def test_output_json_stays_valid_json_when_values_look_secret() -> None:
    import io
    import json

    from agentshell.output import Output

    buffer = io.StringIO()
    Output(buffer, io.StringIO()).json(
        {"note": "OPENAI_API_KEY: set", "header": "Authorization: Bearer abcdef", "n": 1}
    )
    data = json.loads(buffer.getvalue())
    assert data["n"] == 1
    assert "abcdef" not in buffer.getvalue()


@pytest.mark.parametrize(
    "text",
    ['"input_tokens": 123', "max_tokens=512", "total_tokens: 9", "keyboard=us", "tokenizer=x"],
)
def test_counts_and_lookalikes_are_not_secrets(text: str) -> None:
    assert redact(text) == text


def test_redact_tree_masks_every_string_keys_included() -> None:
    register_secret("tree-secret-4f2a9c")
    value = {
        "plain": "kept",
        "tree-secret-4f2a9c": ["a", ("token=tree-secret-4f2a9c", 3)],
        "n": None,
    }
    assert redact_tree(value) == {
        "plain": "kept",
        MASK: ["a", [f"token={MASK}", 3]],
        "n": None,
    }


def test_contains_registered_secret_screens_without_masking() -> None:
    assert not contains_registered_secret("nothing here-7d1e0b")
    register_secret("screen-secret-7d1e0b")
    assert contains_registered_secret("a screen-secret-7d1e0b in text")
    assert not contains_registered_secret("OPENAI_API_KEY=sk-not-registered")  # patterns: no


@pytest.mark.parametrize(
    "key", ["device_authorization_endpoint", "token_endpoint", "jwks_uri", "token_url", "issuer"]
)
def test_addresses_are_not_secret_keys(key: str) -> None:
    from agentshell.config import redacted

    assert not is_secret_key(key)
    url = "https://login.example.com/oauth/x"
    assert redacted({key: url}) == {key: url}


@pytest.mark.parametrize("key", ["api_key", "access_token", "client_secret", "authorization"])
def test_secret_keys_stay_secret(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("hello wor", "hello "),  # the word being written waits
        ("two lines\nand a ha", "two lines\nand a "),
        ("Bearer abc", "Bearer "),
        ('api_key = "two wo', ""),  # a quoted secret may hold spaces: wait for its quote
        ('ok\npassword: "a b', "ok\n"),
        ('api_key = "two words" and mo', 'api_key = "two words" and '),
        ("", ""),
    ],
)
def test_settled_holds_back_what_could_still_become_a_secret(text: str, shown: str) -> None:
    assert text[: settled(text)] == shown
