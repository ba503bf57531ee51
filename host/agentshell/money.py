"""One way to show an amount of money, so a cost reads the same in every place it
appears (a stage line, ``/history``, ``/metrics``, the toolbar)."""

from __future__ import annotations


def format_usd(amount: float, decimals: int = 4) -> str:
    """Dollars with ``decimals`` places, and more under $0.10 so that small amounts keep
    4 significant digits (trailing zeros past ``decimals`` dropped): 0.00099 ->
    "$0.00099" (not "$0.0010"), 0.00001234 -> "$0.00001234", 0.001 with decimals=2 ->
    "$0.001" (not "$0.00"), 0.5 -> "$0.5000"."""
    if amount == 0:
        return "$0.00"
    if abs(amount) < 0.10:
        text = f"{amount:.{max(decimals, _places_for_4_digits(amount))}f}"
        whole, _, frac = text.partition(".")
        frac = frac.rstrip("0").ljust(decimals, "0")  # drop zeros past 4 digits only
        return f"${whole}.{frac}"
    return f"${amount:.{decimals}f}"


def _places_for_4_digits(amount: float) -> int:
    places = 0
    while abs(amount) * 10**places < 1000 and places < 12:
        places += 1
    return places


__all__ = ["format_usd"]
