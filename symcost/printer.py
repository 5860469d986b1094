"""The expression printer: sympy expressions in symcost's own expression language (anything
``derive`` prints can be pasted back into a formula or an architecture file), in LaTeX, and the
number formats every output shares.

>>> import sympy
>>> H, s = sympy.symbols("H s", integer=True, positive=True)
>>> format_expr(sympy.floor((H - 3) / s) + sympy.Mod(H, 4) + sympy.Max(H, s))
'H % 4 + floor((H - 3)/s) + max(H, s)'
>>> format_count(8178368512)
'8,178,368,512'
>>> si(8178368512, "FLOP"), duration(0.0066)
('8.18 GFLOP', '6.6 ms')
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy.printing.str import StrPrinter

from .expr import Variadic


class _Printer(StrPrinter):
    """sympy's str printer, speaking symcost's expression language (``floor ceil min max %``)."""

    def _print_floor(self, e: sympy.Basic) -> str:
        return f"floor({self._print(e.args[0])})"

    def _print_ceiling(self, e: sympy.Basic) -> str:
        return f"ceil({self._print(e.args[0])})"

    def _print_Min(self, e: sympy.Basic) -> str:
        return "min(" + ", ".join(self._print(a) for a in e.args) + ")"

    def _print_Max(self, e: sympy.Basic) -> str:
        return "max(" + ", ".join(self._print(a) for a in e.args) + ")"

    def _print_Abs(self, e: sympy.Basic) -> str:
        return f"abs({self._print(e.args[0])})"

    def _print_Mod(self, e: sympy.Basic) -> str:
        a, b = e.args
        return f"{self.parenthesize(a, 50)} % {self.parenthesize(b, 50)}"

    def _print_min_(self, e: sympy.Basic) -> str:
        return "min(" + ", ".join(self._print(a) for a in e.args) + ")"

    def _print_max_(self, e: sympy.Basic) -> str:
        return "max(" + ", ".join(self._print(a) for a in e.args) + ")"

    def _print_gcd(self, e: sympy.Basic) -> str:
        return "gcd(" + ", ".join(self._print(a) for a in e.args) + ")"

    def _print_And(self, e: sympy.Basic) -> str:
        return " and ".join(f"({self._print(a)})" for a in e.args)

    def _print_Or(self, e: sympy.Basic) -> str:
        return " or ".join(f"({self._print(a)})" for a in e.args)

    def _print_Not(self, e: sympy.Basic) -> str:
        return f"not ({self._print(e.args[0])})"

    def _print_Relational(self, e: sympy.Basic) -> str:
        return f"{self._print(e.lhs)} {e.rel_op} {self._print(e.rhs)}"


_PRINTER = _Printer()


def format_expr(e: Any) -> str:
    """An expression (or a shape dim) in symcost's expression language."""
    if isinstance(e, Variadic):
        return str(e)
    if isinstance(e, bool):
        return "true" if e else "false"
    if isinstance(e, int):
        return str(e)
    return _PRINTER.doprint(e)


def latex_symbol(name: str) -> str:
    r"""A symbol name in LaTeX: a multi-letter name as one italic word, the part after the first
    underscore as a subscript, so ``numel`` does not read as n·u·m·e·l.

    >>> print(latex_symbol("C_in"), latex_symbol("kernel_h"), latex_symbol("H"))
    C_{\mathrm{in}} \mathit{kernel}_{h} H
    """
    base, _, sub = name.partition("_")
    out = base if len(base) == 1 else rf"\mathit{{{base}}}"
    if sub:
        sub_tex = sub if len(sub) == 1 else r"\mathrm{" + sub.replace("_", r"\_") + "}"
        out += "_{" + sub_tex + "}"
    return out


def latex_expr(e: Any) -> str:
    r"""An expression in LaTeX, with :func:`latex_symbol` names.

    >>> import sympy
    >>> C_in, kernel_h = sympy.symbols("C_in kernel_h")
    >>> print(latex_expr(2 * C_in * kernel_h))
    2 C_{\mathrm{in}} \mathit{kernel}_{h}
    """
    if isinstance(e, Variadic):
        return r"\ast " + latex_symbol(e.symbol.name)
    if not isinstance(e, sympy.Basic):
        return sympy.latex(e)
    names = {s: latex_symbol(s.name) for s in e.free_symbols}
    return sympy.latex(e, symbol_names=names)


def format_count(n: int) -> str:
    """An exact count with thousands separators (never rounded)."""
    return f"{n:,}"


def format_shape(shape: Any) -> str:
    return "[" + ", ".join(format_expr(d) for d in shape) + "]"


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """A short decimal-SI figure for reading (``8.18 G``); exact counts are printed beside it."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}".rstrip()


def duration(seconds: float, digits: int = 3) -> str:
    """Seconds for reading: ``6.61 ms``, ``312 µs``, ``1.2 s``."""
    for factor, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(seconds) >= factor:
            return f"{seconds / factor:.{digits}g} {unit}"
    return f"{seconds / 1e-9:.{digits}g} ns" if seconds else "0 s"
