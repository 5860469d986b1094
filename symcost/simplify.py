"""Readable closed forms: nested floors simplified under stated assumptions, and leading terms.

A ResNet's output sizes are floors of floors (``floor(floor(H/2 - 1/2)/2) + 1``), exact for every
H and unreadable. Stating ``H % 32 == 0`` lets each floor resolve: with H = 32·k every stride-2
stage halves exactly, and the FLOPs become a polynomial in H·W.

>>> import sympy
>>> H = sympy.Symbol("H", integer=True, positive=True)
>>> f = 64 * (sympy.floor(H / 2 - sympy.Rational(1, 2)) + 1) ** 2
>>> assume(f, parse_assumptions(["H % 32 == 0"], {"H": H}))
16*H**2
>>> leading(3 * H**2 + 5 * H + 7, H)
[(2, 3*H**2), (1, 5*H), (0, 7)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy

from . import expr
from .errors import Location, UsageError


@dataclass(frozen=True)
class Assumption:
    """``H % 32 == 0`` (a residue) or ``W == H`` (an equality), as the user wrote it."""

    text: str
    symbol: sympy.Symbol
    modulus: int = 0  # > 0: a residue assumption
    residue: int = 0
    equals: sympy.Expr | None = None  # an equality assumption


def parse_assumptions(texts: Sequence[str], names: Mapping[str, sympy.Symbol]) -> list[Assumption]:
    """``["H % 32 == 0", "W == H"]`` → assumptions over the given variable symbols."""
    out = []
    for text in texts:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            out.append(_assumption(part, names))
    return out


def _assumption(text: str, names: Mapping[str, sympy.Symbol]) -> Assumption:
    shape = "expected 'NAME % M == R' or 'NAME == EXPR'"
    condition = expr.parse(text, names, loc=Location("--assume", 1, 1), allow_compare=True)
    if not isinstance(condition, sympy.Eq):
        raise UsageError(f"--assume {text!r}: {shape}")
    lhs, rhs = condition.lhs, condition.rhs
    for left, right in ((lhs, rhs), (rhs, lhs)):
        if isinstance(left, sympy.Mod) and isinstance(left.args[0], sympy.Symbol) and left.args[1].is_Integer:
            modulus = int(left.args[1])
            if not right.is_Integer or modulus < 1:
                raise UsageError(f"--assume {text!r}: {shape} with whole numbers M >= 1 and R")
            return Assumption(text, left.args[0], modulus=modulus, residue=int(right) % modulus)
    for left, right in ((lhs, rhs), (rhs, lhs)):
        if isinstance(left, sympy.Symbol) and left not in right.free_symbols:
            return Assumption(text, left, equals=right)
    raise UsageError(f"--assume {text!r}: {shape}")


def assume(e: sympy.Expr, assumptions: Sequence[Assumption]) -> sympy.Expr:
    """``e`` rewritten under the assumptions: floors resolved where they can be, then expanded.

    A residue ``H % m == r`` substitutes H = m·k + r with k a whole number, lets sympy take the
    whole part out of each floor, and substitutes back k = (H - r)/m.
    """
    for a in assumptions:
        if a.equals is not None:
            e = e.xreplace({a.symbol: a.equals})
    for a in assumptions:
        if a.modulus:
            k = sympy.Symbol(f"_{a.symbol.name}_k", integer=True, nonnegative=True)
            e = _resolve_floors(e.xreplace({a.symbol: a.modulus * k + a.residue}))
            e = e.xreplace({k: (a.symbol - a.residue) / a.modulus})
    return sympy.expand(e)


def _resolve_floors(e: sympy.Expr) -> sympy.Expr:
    """Rebuild ``e`` bottom-up so that every floor and ceiling sees its simplified argument."""
    if not e.args:
        return e
    args = [_resolve_floors(a) for a in e.args]
    if isinstance(e, (sympy.floor, sympy.ceiling)):
        return type(e)(sympy.expand(args[0]))
    return e.func(*args)


def leading(e: sympy.Expr, symbol: sympy.Symbol) -> list[tuple[int, sympy.Expr]]:
    """``e``'s terms by power of ``symbol``, highest first: [(degree, term), ...].

    Needs ``e`` to be a polynomial in ``symbol`` (floors of it resolved with :func:`assume`).
    """
    expanded = sympy.expand(e)
    if any(symbol in f.free_symbols for f in expanded.atoms(sympy.Function)):
        raise UsageError(
            f"--leading {symbol}: the closed form has {symbol} inside floors or other functions; "
            f"state an assumption that resolves them, e.g. --assume '{symbol} % 32 == 0'"
        )
    try:
        poly = sympy.Poly(expanded, symbol)
    except sympy.PolynomialError:
        raise UsageError(f"--leading {symbol}: the closed form is not a polynomial in {symbol}") from None
    terms = []
    for (degree,), coefficient in sorted(poly.terms(), reverse=True):
        terms.append((degree, sympy.factor_terms(coefficient) * symbol**degree))
    return terms
