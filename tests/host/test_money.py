"""One money format everywhere: ``format_usd`` keeps sub-cent amounts readable and
rounds the float noise of sums."""

from __future__ import annotations

import pytest

from agentshell import format_usd


@pytest.mark.parametrize(
    ("amount", "decimals", "text"),
    [
        (0.00099, 4, "$0.00099"),
        (0.00098999999, 4, "$0.00099"),  # float noise of a sum rounds to 4 digits
        (0.001, 2, "$0.001"),
        (0.0123, 4, "$0.0123"),
        (0.5, 4, "$0.5000"),
        (2.0, 2, "$2.00"),
        (0.0, 4, "$0.00"),
    ],
)
def test_format_usd(amount: float, decimals: int, text: str) -> None:
    assert format_usd(amount, decimals) == text
