"""Bounds on the exact numbers symcost makes from floats and decimal texts (``--efficiency 0.7``, a
device's ``peak: 19.5``, ``--target-latency 100ms``): finite, and within 10**-30 .. 10**30.

``1e99999999`` as an exact integer is 40 MB and minutes of arithmetic; a denormal like ``5e-324`` carries
a 1074-bit denominator into every latency; NaN and infinity have no exact value at all.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from .errors import Location, SymcostError, UsageError

#: Exact values made from floats and decimal texts (``--efficiency``, a device's peak, a latency
#: budget) are kept within 10**-MAX_DECIMAL_EXPONENT .. 10**MAX_DECIMAL_EXPONENT: ``1e99999999``
#: written as an exact integer would take 40 MB and minutes, and a denormal like 5e-324 carries
#: a 1074-bit denominator into every latency.
MAX_DECIMAL_EXPONENT = 30
_BOUND = Fraction(10) ** MAX_DECIMAL_EXPONENT


def exact_number(value: Any, what: str, loc: Location | None = None, error: type[SymcostError] = UsageError
                 ) -> Fraction:  # fmt: skip
    """An int, a float or a decimal text (``"0.7"``, ``"1e-3"``) as an exact Fraction, refusing NaN,
    infinities and magnitudes outside 10**-30 .. 10**30 (0 stays 0).

    >>> exact_number(0.7, "--efficiency"), exact_number("1e-3", "x")
    (Fraction(7, 10), Fraction(1, 1000))
    >>> exact_number("1e99999999", "--target-latency")
    Traceback (most recent call last):
    ...
    symcost.errors.UsageError: --target-latency: 1e99999999 is out of range (at most 10**30 in size, at least 10**-30)
    """
    if isinstance(value, bool):
        raise error(f"{what} must be a number, got {value!r}", loc)
    if isinstance(value, Fraction):
        exact = value
    elif isinstance(value, int):
        if abs(value) > _BOUND:
            raise error(f"{what}: {value} is out of range (at most 10**{MAX_DECIMAL_EXPONENT})", loc)
        return Fraction(value)
    else:
        text = repr(value) if isinstance(value, float) else str(value).strip()
        match = re.fullmatch(r"[+-]?([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?", text)
        if not match or not (match.group(1) or match.group(2)):
            raise error(f"{what} must be a finite number, got {text[:40]!r}", loc)
        digits = (match.group(1) or "") + (match.group(2) or "")
        exponent = int(match.group(3) or 0) if len(match.group(3) or "") <= 6 else 10**6
        if len(digits) > 60 or abs(exponent) > 2 * MAX_DECIMAL_EXPONENT + 60:
            raise error(f"{what}: {text[:40]} is out of range (at most 10**{MAX_DECIMAL_EXPONENT} in size, "
                        f"at least 10**-{MAX_DECIMAL_EXPONENT})", loc)  # fmt: skip
        exact = Fraction(text)
    if exact and not (1 / _BOUND <= abs(exact) <= _BOUND):
        shown = str(value)[:40]
        raise error(f"{what}: {shown} is out of range (at most 10**{MAX_DECIMAL_EXPONENT} in size, "
                    f"at least 10**-{MAX_DECIMAL_EXPONENT})", loc)  # fmt: skip
    return exact
