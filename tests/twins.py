"""Build a formula's torch twin from its ``torch:`` section, on the ``meta`` device, and count it.

Used only by the tests. The names in ``torch.module``/``torch.function``/``torch.builder`` come
from our own formula files; they are still resolved against a fixed namespace (``torch.nn``,
``torch``/``torch.nn.functional``, or the builders below), never through ``eval``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sympy
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from symcost.errors import FormulaError
from symcost.formula import Formula, Variadic

META = torch.device("meta")


def draw_values(formula: Formula, data: st.DataObject) -> dict[str, int | bool]:
    """Draw every symbol from its declared test range (bools as True/False)."""
    values: dict[str, int | bool] = {}
    for name, sym in formula.shape_symbols.items():
        values[name] = data.draw(st.integers(*sym.test), label=name)
    for attr in formula.attributes.values():
        for name in attr.symbol_names:
            if attr.kind == "bool":
                values[name] = data.draw(st.booleans(), label=name)
            else:
                values[name] = data.draw(st.integers(*attr.test), label=name)
    return values


def _value(expression: Any, subs: Mapping[sympy.Symbol, int], bool_symbols: set[sympy.Symbol]) -> Any:
    if isinstance(expression, tuple):
        return tuple(_value(e, subs, bool_symbols) for e in expression)
    if expression is None or isinstance(expression, bool):
        return expression
    if expression in bool_symbols:
        return bool(subs[expression])
    result = expression.xreplace(subs)
    assert result.is_Integer, f"twin argument {expression} did not evaluate to an integer: {result}"
    return int(result)


def _shape(formula: Formula, dims: tuple, subs: Mapping[sympy.Symbol, int]) -> tuple[int, ...]:
    out = []
    for dim in dims:
        if isinstance(dim, Variadic):
            out.append(int(subs[dim.symbol]))
        else:
            out.append(int(formula.expand(dim).xreplace(subs)))
    return tuple(out)


BUILDERS: dict[str, Callable[[dict[str, Any]], tuple[Callable[..., Any], list[torch.Tensor]]]] = {}


def builder(function: Callable) -> Callable:
    BUILDERS[function.__name__] = function
    return function


def build_twin(
    formula: Formula, values: Mapping[str, Any]
) -> tuple[Callable[..., Any], list[torch.Tensor], torch.nn.Module | None]:
    """(callable, input tensors, module or None) for the formula at ``values``."""
    twin = formula.torch
    assert twin is not None
    subs = {formula.symbols[n]: sympy.Integer(int(v)) for n, v in values.items()}
    bool_symbols = {s for a in formula.attributes.values() if a.kind == "bool" for s in a.symbols}
    args = {k: _value(v, subs, bool_symbols) for k, v in twin.args.items()}
    if twin.builder:
        fn, inputs = BUILDERS[twin.builder](dict(values) | {"_args": args})
        return fn, inputs, fn if isinstance(fn, torch.nn.Module) else None
    shapes = twin.inputs or formula.inputs
    inputs = [torch.empty(_shape(formula, dims, subs), device=META) for dims in shapes.values()]
    if twin.module:
        module = getattr(torch.nn, twin.module)(**args, device=META)
        return module, inputs, module
    namespace = F if hasattr(F, twin.function) else torch
    function = getattr(namespace, twin.function)
    return (lambda *xs: function(*xs, **args)), inputs, None


def flatten(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in flatten(item)]
    return []


def count(fn: Callable[..., Any], inputs: list[torch.Tensor]) -> tuple[int, list[torch.Tensor]]:
    """FlopCounterMode's total for one call, and the output tensors in order."""
    with FlopCounterMode(display=False) as counter:
        out = fn(*inputs)
    return counter.get_total_flops(), flatten(out)


def evaluate_or_none(formula: Formula, values: Mapping[str, Any]):
    """The formula's evaluation, or None where the values break its constraints."""
    try:
        return formula.evaluate(**values)
    except FormulaError:
        return None


def _load_builders() -> None:
    """Import every ``tests/builders_*.py``: each family of formulas keeps its builders there."""
    import importlib
    from pathlib import Path

    for path in sorted(Path(__file__).parent.glob("builders_*.py")):
        importlib.import_module(f"{__package__}.{path.stem}")


_load_builders()
