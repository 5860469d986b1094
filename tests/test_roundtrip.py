"""What symcost prints is its own expression language: every printed closed form parses back
to the same sympy expression (so `derive` output can be pasted into a formula or arch file)."""

from __future__ import annotations

import pytest

from symcost import expr, registry
from symcost.report import format_expr

FORMULAS = registry.names()


@pytest.mark.parametrize("name", FORMULAS)
def test_printed_costs_parse_back(name):
    formula = registry.get(name)
    names = dict(formula.symbols)
    for key, value in [*formula.costs.items(), ("flops", formula.flops), *formula.elementwise.items()]:
        assert expr.parse(format_expr(value), names) == value, f"{name}.{key}"
    for shape in formula.outputs.values():
        for dim in shape:
            if hasattr(dim, "free_symbols"):
                assert expr.parse(format_expr(dim), names) == dim
