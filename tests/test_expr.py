"""The safe expression parser: what it accepts, and a table of hostile strings it must refuse
with a located error, without running anything."""

from __future__ import annotations

import ast
import builtins

import pytest
import sympy

from symcost import expr
from symcost.errors import ExprError, Location

H, W, N, S, E, I, Q = (sympy.Symbol(n, integer=True, positive=True) for n in "HWNSEIQ")  # noqa: E741 - sympy shadows these names; here they are plain symbols
NAMES = {"H": H, "W": W, "N": N, "S": S, "E": E, "I": I, "Q": Q}
LOC = Location("archs/x.yaml", 12, 9)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("H*W", H * W),
        ("(H + 2*1 - 3)//2 + 1", sympy.floor((H - 1) / 2) + 1),
        ("H / 2", H / 2),  # exact rational division
        ("H % 32", sympy.Mod(H, 32)),
        ("-H + +W", W - H),
        ("2**10", 1024),
        ("max(H, W, 3)", expr.max_(H, W, 3)),
        ("min(H, W)", expr.min_(H, W)),
        ("ceil(H/3) + floor(W/3) + abs(H - W)", sympy.ceiling(H / 3) + sympy.floor(W / 3) + sympy.Abs(H - W)),
        # sympy's own names would rebind these through sympify: here they are plain symbols
        ("N*S*E*I*Q", N * S * E * I * Q),
        (7, 7),
    ],
)
def test_accepts(text, expected):
    assert expr.parse(text, NAMES) == expected


def test_min_max_gcd_are_exact_on_numbers():
    values = {H: 12, W: 18}
    assert expr.parse("max(H, W, 3)", NAMES).xreplace(values) == 18
    assert expr.parse("min(H, W)", NAMES).xreplace(values) == 12
    assert expr.parse("gcd(H, W)", NAMES).xreplace(values) == 6
    assert expr.parse("H + W - gcd(H, W)", NAMES).xreplace({H: 10, W: 6}) == 14  # adaptive pool windows


def test_comparisons_only_in_constraints():
    assert expr.parse("H % 2 == 0 and W >= 1", NAMES, allow_compare=True) == sympy.And(
        sympy.Eq(sympy.Mod(H, 2), 0), W >= 1
    )
    assert expr.parse("1 <= H <= 8", NAMES, allow_compare=True) == sympy.And(H >= 1, H <= 8)
    with pytest.raises(ExprError):
        expr.parse("H == W", NAMES)


HOSTILE = [
    "__import__('os').system('touch {marker}')",
    "open('{marker}', 'w').write('x')",
    "exec(\"open('{marker}','w')\")",
    "eval('1')",
    "compile('1', '', 'eval')",
    "getattr(H, '__class__')",
    "globals()",
    "breakpoint()",
    "print(1)",
    "().__class__.__bases__[0].__subclasses__()",
    "H.__class__",
    "H.func",
    "H[0]",
    "H[0:1]",
    "lambda: 1",
    "[x for x in range(3)]",
    "{x for x in range(3)}",
    "{x: 1 for x in range(3)}",
    "(x for x in range(3))",
    "H if W else 1",
    "(x := 1)",
    "f'{H}'",
    "'abc'",
    "b'abc'",
    "1.5e3",  # decimals are exact rationals (test_expr_builders.py); exponents are refused
    "1e10",
    "2j",
    "True",
    "None",
    "...",
    "[1, 2]",
    "(1, 2)",
    "{1: 2}",
    "*H",
    "H @ W",
    "H << 2",
    "H ^ W",
    "~H",
    "H is W",
    "H in W",
    "H and W",
    "not H",
    "H < W",
    "2**10**10",
    "9**99999",
    "H**W",
    "2**-1",
    "1" + "0" * 60,
    "(" * 100_000 + "1" + ")" * 100_000,
    "-" * 1500 + "1",
    "+".join(["H"] * 1001),  # a flat sum is width, not depth: refused only past MAX_LENGTH
    "__builtins__",
    "_H",
    "__H__",
    "sympify('H')",
    "S('H')",
    "Symbol('H')",
    "Integer(1)",
    "unknown_name + 1",
    "Hh",
    "floor",
    "floor(H, W)",
    "floor(x=H)",
    "min(H)",
    "1/0",
    "H // 0",
    "H % 0",
    "",
    "   ",
    "H\x00",
    "H; import os",
    "import os",
    "H\nimport os",
    "H +",
    "await H",
]


def test_hostile_table_is_big_enough():
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_strings_are_refused_and_nothing_runs(template, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    text = template.format(marker=marker) if "{marker}" in template else template

    def forbidden(*args, **kwargs):
        raise AssertionError("code evaluation was reached")

    real_compile = builtins.compile

    def ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):
        # ast.parse compiles to an AST only (PyCF_ONLY_AST): no code object, nothing can run
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("compilation to code was reached")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only_compile)
    monkeypatch.setattr(sympy, "sympify", forbidden)
    monkeypatch.setattr(sympy.parsing.sympy_parser, "parse_expr", forbidden)
    with pytest.raises(ExprError) as caught:
        expr.parse(text, NAMES, loc=LOC)
    assert caught.value.loc is not None and caught.value.loc.file == "archs/x.yaml"
    assert caught.value.loc.line == 12
    assert str(caught.value).startswith("archs/x.yaml:12:")
    assert not marker.exists()


def test_error_points_at_the_column():
    with pytest.raises(ExprError) as caught:
        expr.parse("H + Hx", NAMES, loc=LOC)
    assert caught.value.loc == Location("archs/x.yaml", 12, 9 + 4)
    assert "did you mean 'H'" in caught.value.message


def test_non_text_values_are_refused():
    for value in (True, 1.5, None, [1], {"a": 1}):
        with pytest.raises(ExprError):
            expr.parse(value, NAMES)
