"""The bundled models as a table: parameters, FLOPs at the default size, and FLOPs as a closed form
in the input size, under the divisibility its strides need.

A CNN's output sizes are floors, ``floor((H + 2p - k)/s) + 1``, so its FLOPs are a polynomial in H
only piecewise. Where H = d·h + r for the model's total stride d and the remainder r of its default
size, every floor resolves and the FLOPs are an exact polynomial in h and w: the column no
measuring tool can print. ResNet-50 at 224 = 32·7:

>>> row = size_form("resnet50")
>>> row.size, row.flops
('224x224', 8178368512)
>>> row.divisor, row.form                          # FLOPs for H = 32h, W = 32w (N = 1)
(32, '166821888*h*w + 4096000')

(at h = w = 7: 166,821,888·49 + 4,096,000 = 8,174,272,512 + 4,096,000 = 8,178,368,512.)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import sympy

from . import arch as arch_module
from . import registry
from .compile import evaluate, keep_free, symbolic_totals
from .errors import SymcostError
from .shapes import build

#: Total strides tried for the closed form, smallest first: a model's form holds for H = d*h + r.
DIVISORS = (1, 2, 4, 7, 8, 14, 16, 28, 32, 64, 112, 224)  # 14: ViT-H patches; 224 = 32 x 7: Swin windows


@dataclass(frozen=True)
class ZooRow:
    name: str
    family: str
    summary: str
    size: str  # the default input size, "224x224", or the default sequence length
    params: int
    flops: int
    divisor: int | None = None  # d: the form holds for H = d*h + r_h (and W likewise)
    remainders: tuple[int, ...] = ()
    form: str = ""  # FLOPs as a polynomial in h, w (or the token count), "" where none was found
    variables: tuple[str, ...] = ()
    expression: sympy.Expr | None = None  # the form as an expression in the symbols named by `variables`


@functools.cache
def table() -> tuple[ZooRow, ...]:
    """Every bundled model's row, derived once per process; the models are independent, so they are
    derived on every core (about a minute of CPU for the whole zoo)."""
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return tuple(pool.map(size_form, names()))


def names() -> list[str]:
    """Every bundled architecture, sorted."""
    return sorted(p.stem for p in registry.data_dir("archs").glob("*.yaml"))


def size_form(name: str) -> ZooRow:
    """One bundled model's row: its counts at the defaults, and its FLOPs closed form in H and W
    (or in its sequence length S for a language model), checked against the exact evaluation at
    the default size and one step of the divisor beyond it."""
    path = registry.data_dir("archs") / f"{name}.yaml"
    loaded = arch_module.load_path(path, f"archs/{name}.yaml")
    at_default = evaluate(build(loaded, numeric=True))
    variables = loaded.variables
    free = [v for v in ("H", "W") if v in variables] or [v for v in ("S", "T") if v in variables][:1]
    defaults = {v: at_default.values[v] for v in free}
    size = "x".join(str(defaults[v]) for v in free) if free else ""
    row = ZooRow(
        name,
        loaded.family or name,
        loaded.summary,
        size,
        at_default.totals["params"],
        at_default.totals["flops"],
    )
    if not free:
        return row
    try:
        graph = build(loaded)
        closed = symbolic_totals(graph, keep_free(graph, {}, free))["flops"]
    except Exception:  # noqa: BLE001 - a model whose closed form cannot be built gets no form
        return row
    for divisor, remainders, form in _polynomials(closed, free, defaults):
        if _holds(loaded, form, free, defaults, divisor, remainders):
            small = ("h", "w") if len(free) == 2 else ("n",)
            return ZooRow(
                row.name, row.family, row.summary, row.size, row.params, row.flops,
                divisor, remainders, str(form), small, form,
            )  # fmt: skip
    return row


def _polynomials(
    closed: sympy.Expr, free: list[str], defaults: dict[str, int]
) -> Iterator[tuple[int, tuple[int, ...], sympy.Expr]]:
    """For each divisor d: the FLOPs with every free size written d*h + (its default mod d), where
    that leaves a polynomial (no floor, ceiling, min or max left)."""
    symbols = {s.name: s for s in closed.free_symbols}
    small = [sympy.Symbol(n, integer=True, positive=True) for n in (("h", "w") if len(free) == 2 else ("n",))]
    for divisor in DIVISORS if free[0] in ("H", "W") else (1,):
        remainders = tuple(defaults[v] % divisor for v in free)
        subs = {symbols[v]: divisor * s + r for v, s, r in zip(free, small, remainders) if v in symbols}
        form = sympy.expand(closed.xreplace(subs))
        if not form.atoms(sympy.Function):
            yield divisor, remainders, form


def _holds(
    loaded: arch_module.Arch,
    form: sympy.Expr,
    free: list[str],
    defaults: dict[str, int],
    divisor: int,
    remainders: tuple[int, ...],
) -> bool:
    """The form equals the exact evaluation at the default size and one step of d beyond it."""
    small = sorted(form.free_symbols, key=lambda s: s.name)
    for step in (0, 1):
        values = {v: defaults[v] + step * divisor for v in free}
        try:
            exact = evaluate(build(loaded, values, numeric=True), values).totals["flops"]
        except SymcostError:  # a fixed size (Whisper's 3000 mel frames, CLIP's 77 positions): no form
            return False
        at = {s: (values[v] - r) // divisor for s, v, r in zip(small, free, remainders)}
        if form.xreplace(at) != exact:
            return False
    return True
