"""Money in integer units of 10**-24 USD: exact on the hot path, Decimal dollars at the edge."""

from __future__ import annotations

from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal
from typing import Final, NamedTuple

_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)

# Money is counted in integer units of 10**-24 USD on the hot path: a call's cost is a few
# integer multiplications and additions, where Decimal arithmetic cost several times more. A
# rate in USD per million tokens is a whole number of units per token when it has at most 18
# decimal places (published prices have at most a handful); a finer one (a user's rate, or a
# discount such as 1/3) is rounded half-even to a unit per token. Decimal USD is made from
# units, exactly, where money leaves the hot path (totals, budgets, reports).
UNIT_EXPONENT: Final = 24
UNITS_PER_USD: Final = 10**UNIT_EXPONENT
_EXACT: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_EVEN)
PER_TOKEN: Final = Decimal("1e-6")  # USD per token at $1 per million tokens
PICODOLLAR: Final = Decimal("1e-12")
"""The ledger's unit (``cost_pico``), and what an apportioned hourly cost is rounded to."""


def to_units(usd_amount: Decimal, scale: Decimal = _ONE) -> int:
    """``usd_amount`` x ``scale`` in units of 10**-24 USD (exact, or rounded half-even to a unit)."""
    return int(
        _EXACT.multiply(_EXACT.multiply(usd_amount, scale), Decimal(UNITS_PER_USD)).to_integral_value(
            ROUND_HALF_EVEN, _EXACT
        )
    )


def usd(units: int) -> Decimal:
    """``units`` (10**-24 USD) as an exact Decimal in USD, without trailing zeros or exponent."""
    if not units:
        return _ZERO
    value = Decimal(units).scaleb(-UNIT_EXPONENT, _EXACT).normalize(_EXACT)
    return value.quantize(_ONE, context=_EXACT) if value.as_tuple().exponent > 0 else value  # type: ignore[operator]  # an int for a finite value


def as_float(units: int) -> float:
    """``units`` as a float in USD, correctly rounded (what ``float(usd(units))`` gives)."""
    return units / UNITS_PER_USD


_15_DIGITS: Final = 10**15
_POWERS_OF_10: Final[tuple[int, ...]] = tuple(10**n for n in range(64))
_MOST_DIGITS: Final = len(_POWERS_OF_10) - 1


def needs_exact_text(units: int) -> bool:
    """Whether ``as_float(units)`` could lose digits: a double carries any 15 significant digits.

    That is, whether ``units`` has more than 15 digits before its trailing zeros: with ``n``
    digits in all, whether it is not a multiple of 10**(n - 15). Its digit count comes from its
    bit length, without writing it out in decimal (this runs for every priced call).
    """
    if units < _15_DIGITS:
        return units <= -_15_DIGITS and needs_exact_text(-units)
    n = (units.bit_length() * 78913) >> 18  # floor(bits x log10(2)): the digit count or one less
    if n >= _MOST_DIGITS:
        return len(str(units).rstrip("0")) > 15
    if units >= _POWERS_OF_10[n]:
        n += 1
    return units % _POWERS_OF_10[n - 15] != 0


class Parts(NamedTuple):
    """A call's cost split by what it pays for, in units of 10**-24 USD; the sum is its cost."""

    fresh_input: int
    """Input tokens not read from or written to a cache, at the input rate."""
    cache_read: int
    cache_write: int
    output: int
    """Output tokens, reasoning among them."""
    other: int
    """Per-request and per-search fees, and an apportioned hourly cost."""


class UnitRates(NamedTuple):
    """A price's per-token rates in units of 10**-24 USD per token."""

    input: int
    output: int
    cache_read: int
    cache_write: int
    cache_write_1h: int
    reasoning: int
