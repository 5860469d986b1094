"""Closed forms compiled once into straight-line numpy steps, then evaluated over many points.

``symcost sweep`` evaluates ResNet-50's FLOPs at a million (N, H, W) points; re-substituting into
sympy would take minutes. :class:`Program` walks each expression once (shared sub-expressions
become one step: ``floor(H/2 - 1/2)`` is computed once for every conv that uses it) and keeps a
list of numpy operations. No text is generated or executed: the steps are tuples that
:meth:`Program.run` interprets.

Exact by default. Rational coefficients are carried as a numerator and a denominator
(``floor(H/2 - 1/2)`` is ``(H - 1) // 2``), so every step is an integer operation. Before running,
interval arithmetic bounds every step over the swept ranges: if each bound fits in int64 the steps
run on int64 arrays (fast, and provably without wrap-around); otherwise they run on object arrays
of Python ints (exact, slower). ``exact=False`` runs in float64 instead, and says so.

>>> import sympy
>>> H, W = sympy.symbols("H W", integer=True, positive=True)
>>> program = Program({"macs": 64 * (sympy.floor(H / 2 - sympy.Rational(1, 2)) + 1) * W}, [H, W])
>>> import numpy as np
>>> out = program.run({"H": np.array([224, 225]), "W": np.array([224, 224])})
>>> out.values["macs"].tolist(), out.mode
([1605632, 1619968], 'int64')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy

from .errors import UsageError
from .expr import gcd, max_, min_

#: Steps whose bounds stay below this run on int64 (2**63 - 1 is the largest int64; the margin
#: leaves room for the sign and for numpy's own intermediate in floor division).
INT64_LIMIT = 2**62

Step = tuple  # ("const", value) | ("var", name) | (op, *argument step indexes)


#: ``Run.failed`` at a point where a divisor is 0 (``8 // (k - 1)`` at k = 1), not one of the conditions.
DIVISION_BY_ZERO = -2


class NotCompilable(UsageError):
    """An expression uses something the vector path cannot evaluate exactly."""


@dataclass
class Run:
    """One evaluation: each output as an array, and how it was computed."""

    values: dict[str, Any]  # name -> numpy array (int64, object or float64)
    valid: Any  # boolean array: every condition held (None when there were none)
    failed: Any  # int array: index of the first failing condition, -1 where valid (None: none)
    mode: str  # "int64", "object" (Python ints) or "float64" (approximate)


class Program:
    """Expressions over ``variables`` (sympy Symbols), compiled once; conditions optional.

    ``conditions`` are sympy relationals (``H_out >= 1``) that must hold at a point for its values
    to mean anything; :meth:`run` reports where they fail.
    """

    def __init__(
        self,
        outputs: Mapping[str, sympy.Expr],
        variables: Sequence[sympy.Symbol],
        conditions: Sequence[sympy.Basic] = (),
    ):
        self.variables = tuple(variables)
        self._names = {v: v.name for v in self.variables}
        self.steps: list[Step] = []
        self._memo: dict[Any, int] = {}
        self._rational: dict[sympy.Basic, tuple[int, int | Fraction]] = {}
        self.outputs: dict[str, tuple[int, int]] = {}  # name -> (numerator step, denominator step)
        for name, expression in outputs.items():
            self.outputs[name] = self._fraction(
                sympy.Integer(expression) if isinstance(expression, int) else expression
            )
        self.conditions = [self._condition(c) for c in conditions]

    # ---- building ---------------------------------------------------------------------------
    def _step(self, step: Step) -> int:
        index = self._memo.get(step)
        if index is None:
            index = len(self.steps)
            self.steps.append(step)
            self._memo[step] = index
        return index

    def _const(self, value: int) -> int:
        return self._step(("const", int(value)))

    def _mul(self, a: int, b: int) -> int:
        one = self._const(1)
        if a == one:
            return b
        if b == one:
            return a
        return self._step(("mul", *sorted((a, b))))

    def _add(self, a: int, b: int) -> int:
        zero = self._const(0)
        if a == zero:
            return b
        if b == zero:
            return a
        return self._step(("add", *sorted((a, b))))

    def _fraction(self, e: sympy.Basic) -> tuple[int, int]:
        """``e`` as (numerator, denominator) steps of integer values, denominator > 0."""
        cached = self._rational.get(e)
        if cached is not None:
            return cached  # type: ignore[return-value]
        result = self._build(e)
        self._rational[e] = result  # type: ignore[assignment]
        return result

    def _whole(self, e: sympy.Basic, within: sympy.Basic) -> int:
        """A step for an argument that must be a whole number (of ``%`` or ``gcd``)."""
        num, den = self._fraction(e)
        if den != self._const(1):
            raise NotCompilable(f"cannot evaluate {within} on arrays: {e} may be a fraction")
        return num

    def _build(self, e: sympy.Basic) -> tuple[int, int]:
        one = self._const(1)
        if isinstance(e, sympy.Integer):
            return self._const(int(e)), one
        if isinstance(e, sympy.Rational):
            return self._const(int(e.p)), self._const(int(e.q))
        if isinstance(e, sympy.Symbol):
            if e not in self._names:
                raise NotCompilable(f"'{e}' has no value: give it with --set, or sweep it with --over")
            return self._step(("var", e.name)), one
        if isinstance(e, sympy.Add):
            parts = [self._fraction(a) for a in e.args]
            return self._sum(parts)
        if isinstance(e, sympy.Mul):
            num, den = one, one
            for a in e.args:
                n, d = self._fraction(a)
                num, den = self._mul(num, n), self._mul(den, d)
            return num, den
        if isinstance(e, sympy.Pow):
            base, exponent = e.args
            if not exponent.is_Integer:
                raise NotCompilable(f"cannot evaluate the power {e} on arrays")
            n, d = self._fraction(base)
            k = int(exponent)
            if k < 0:
                n, d, k = d, n, -k  # the denominator's sign is fixed in _sum/run by sign steps
                n, d = self._signed(n, d)
            num, den = one, one
            for _ in range(k):
                num, den = self._mul(num, n), self._mul(den, d)
            return num, den
        if isinstance(e, sympy.floor):
            n, d = self._fraction(e.args[0])
            return (n if d == one else self._step(("floordiv", n, d))), one
        if isinstance(e, sympy.ceiling):
            n, d = self._fraction(e.args[0])
            if d == one:
                return n, one
            return self._step(("neg", self._step(("floordiv", self._step(("neg", n)), d)))), one
        if isinstance(e, sympy.Mod):
            a, m = (self._whole(x, e) for x in e.args)
            return self._step(("mod", a, m)), one
        if isinstance(e, gcd):
            a, b = (self._whole(x, e) for x in e.args)
            return self._step(("gcd", *sorted((a, b)))), one
        if isinstance(e, sympy.Abs):
            n, d = self._fraction(e.args[0])
            return self._step(("abs", n)), d
        if isinstance(e, (max_, min_, sympy.Max, sympy.Min)):
            op = "max" if isinstance(e, (max_, sympy.Max)) else "min"
            parts = [self._fraction(a) for a in e.args]
            den = self._common_denominator([d for _, d in parts])
            scaled = [self._rescale(n, d, den) for n, d in parts]
            step = scaled[0]
            for other in scaled[1:]:
                step = self._step((op, *sorted((step, other))))
            return step, den
        raise NotCompilable(f"cannot evaluate {type(e).__name__} ({e}) on arrays")

    def _signed(self, num: int, den: int) -> tuple[int, int]:
        """Move a possibly negative denominator's sign to the numerator."""
        if self.steps[den][0] == "const":
            value = self.steps[den][1]
            if value < 0:
                return self._step(("neg", num)), self._const(-value)
            return num, den
        sign = self._step(("sign", den))
        return self._mul(num, sign), self._mul(den, sign)

    def _common_denominator(self, dens: Sequence[int]) -> int:
        constants = [self.steps[d][1] for d in dens if self.steps[d][0] == "const"]
        den = self._const(math.lcm(*constants) if constants else 1)
        for d in dict.fromkeys(d for d in dens if self.steps[d][0] != "const"):
            den = self._mul(den, d)
        return den

    def _rescale(self, num: int, den: int, target: int) -> int:
        """``num/den`` written over ``target`` (a multiple of ``den``): the new numerator."""
        if den == target:
            return num
        if self.steps[den][0] == "const" and self.steps[target][0] == "const":
            return self._mul(num, self._const(self.steps[target][1] // self.steps[den][1]))
        return self._step(("floordiv", self._mul(num, target), den))  # exact: target is a multiple

    def _sum(self, parts: Sequence[tuple[int, int]]) -> tuple[int, int]:
        den = self._common_denominator([d for _, d in parts])
        num = self._const(0)
        for n, d in parts:
            num = self._add(num, self._rescale(n, d, den))
        return num, den

    def _condition(self, c: sympy.Basic) -> int:
        if c is sympy.true or c is True:
            return self._step(("true",))
        if c is sympy.false or c is False:
            return self._step(("false",))
        if isinstance(c, (sympy.And, sympy.Or)):
            op = "and" if isinstance(c, sympy.And) else "or"
            parts = [self._condition(a) for a in c.args]
            step = parts[0]
            for other in parts[1:]:
                step = self._step((op, step, other))
            return step
        if isinstance(c, sympy.Not):
            return self._step(("not", self._condition(c.args[0])))
        if isinstance(c, sympy.core.relational.Relational):
            n, _ = self._fraction(c.lhs - c.rhs)  # denominators are positive: the sign is the numerator's
            ops = {"==": "eq0", "!=": "ne0", ">=": "ge0", ">": "gt0", "<=": "le0", "<": "lt0"}
            return self._step((ops[c.rel_op], n))
        raise NotCompilable(f"cannot evaluate the condition {c} on arrays")

    # ---- bounds -----------------------------------------------------------------------------
    def bounds(self, ranges: Mapping[str, tuple[int, int]]) -> list[tuple[int, int] | None]:
        """The smallest and largest value of every numeric step over the box ``ranges``."""
        out: list[tuple[int, int] | None] = []
        for step in self.steps:
            op, args = step[0], step[1:]
            b = [out[a] for a in args] if op not in ("const", "var") else []
            if op == "const":
                out.append((args[0], args[0]))
            elif op == "var":
                out.append(ranges[args[0]])
            elif op == "add":
                out.append((b[0][0] + b[1][0], b[0][1] + b[1][1]))
            elif op == "mul":
                corners = [x * y for x in b[0] for y in b[1]]
                out.append((min(corners), max(corners)))
            elif op == "neg":
                out.append((-b[0][1], -b[0][0]))
            elif op == "floordiv":
                (nlo, nhi), (dlo, dhi) = b
                if dlo <= 0 <= dhi:
                    out.append((-abs(nlo) - abs(nhi), abs(nlo) + abs(nhi)))
                else:
                    corners = [x // y for x in (nlo, nhi) for y in (dlo, dhi)]
                    out.append((min(corners), max(corners)))
            elif op == "mod":
                high = max(abs(b[1][0]), abs(b[1][1]))
                out.append((-high, high))
            elif op in ("gcd", "abs"):
                high = max(abs(x) for pair in b for x in pair)
                out.append((0, high))
            elif op == "sign":
                out.append((-1, 1))
            elif op in ("max", "min"):
                pick = max if op == "max" else min
                out.append((pick(b[0][0], b[1][0]), pick(b[0][1], b[1][1])))
            else:  # conditions
                out.append(None)
        return out

    def fits_int64(self, ranges: Mapping[str, tuple[int, int]]) -> bool:
        """Every step, and every variable's value (used or not), stays within int64."""
        bounds = [*self.bounds(ranges), *ranges.values()]
        return all(b is None or (-INT64_LIMIT < b[0] and b[1] < INT64_LIMIT) for b in bounds)

    # ---- running ----------------------------------------------------------------------------
    def run(
        self, columns: Mapping[str, Any], *, exact: bool = True, ranges: Mapping[str, tuple[int, int]] | None = None
    ) -> Run:
        """Evaluate at the points given by ``columns`` (variable name → array; arrays broadcast).

        Outputs are integers (``floor`` of the exact rational, which is the value for integer
        counts) unless ``exact=False``: float64, approximate. ``ranges`` (variable → (lowest,
        highest)) decides int64 or Python ints when ``columns`` are one chunk of a larger grid,
        so every chunk is computed the way the whole grid would be.
        """
        import numpy as np

        arrays = {name: np.asarray(columns[name]) for name in self._names.values()}
        if exact:
            if ranges is None:
                ranges = {n: (int(a.min()), int(a.max())) for n, a in arrays.items()}
            else:
                ranges = {n: ranges[n] for n in arrays}
            mode = "int64" if self.fits_int64(ranges) else "object"
        else:
            mode = "float64"
        dtype = {"int64": np.int64, "object": object, "float64": np.float64}[mode]
        if mode == "object":
            arrays = {
                n: np.array([int(x) for x in a.ravel()], dtype=object).reshape(a.shape) for n, a in arrays.items()
            }
        else:
            arrays = {n: a.astype(dtype) for n, a in arrays.items()}
        values: list[Any] = []
        zero: Any = None  # points where some divisor is 0: invalid, whatever numpy makes of x // 0

        def divisor(d: Any) -> Any:
            nonlocal zero
            hit = np.equal(d, 0)
            if not np.any(hit):
                return d
            zero = hit if zero is None else np.logical_or(zero, hit)
            return np.where(hit, 1, d)

        for step in self.steps:
            op, args = step[0], step[1:]
            v = [values[a] for a in args] if op not in ("const", "var") else []
            if op == "const":
                values.append(dtype(args[0]) if mode != "object" else args[0])
            elif op == "var":
                values.append(arrays[args[0]])
            elif op == "add":
                values.append(v[0] + v[1])
            elif op == "mul":
                values.append(v[0] * v[1])
            elif op == "neg":
                values.append(-v[0])
            elif op == "floordiv":
                d = divisor(v[1])
                values.append(v[0] // d if mode != "float64" else np.floor(v[0] / d))
            elif op == "mod":
                values.append(v[0] % divisor(v[1]))
            elif op == "gcd":
                values.append(
                    np.gcd(v[0], v[1]) if mode != "float64" else np.gcd(v[0].astype(np.int64), v[1].astype(np.int64))
                )
            elif op == "abs":
                values.append(abs(v[0]))
            elif op == "sign":
                values.append(np.sign(v[0]))
            elif op == "max":
                values.append(np.maximum(v[0], v[1]))
            elif op == "min":
                values.append(np.minimum(v[0], v[1]))
            elif op == "true":
                values.append(np.bool_(True))
            elif op == "false":
                values.append(np.bool_(False))
            elif op in ("and", "or"):
                values.append(np.logical_and(v[0], v[1]) if op == "and" else np.logical_or(v[0], v[1]))
            elif op == "not":
                values.append(np.logical_not(v[0]))
            else:
                compare = {"eq0": np.equal, "ne0": np.not_equal, "ge0": np.greater_equal, "gt0": np.greater,
                           "le0": np.less_equal, "lt0": np.less}[op]  # fmt: skip
                values.append(compare(v[0], 0))
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values())) if arrays else ()
        outputs = {}
        for name, (num, den) in self.outputs.items():
            n, d = values[num], divisor(values[den])
            if mode == "float64":
                result = n / d
            elif self.steps[den] == ("const", 1):
                result = n
            else:
                result = n // d
            outputs[name] = np.broadcast_to(result, shape)
        valid = failed = None
        if self.conditions or zero is not None:
            failed = np.full(shape, -1, dtype=np.int64)
            for index in reversed(range(len(self.conditions))):
                holds = np.broadcast_to(values[self.conditions[index]], shape)
                failed = np.where(holds, failed, index)
            if zero is not None:
                failed = np.where(np.broadcast_to(zero, shape), DIVISION_BY_ZERO, failed)
            valid = failed == -1
        return Run(outputs, valid, failed, mode)
