"""The expression functions model builders use: exact decimals, round, int, ceil_div and
torchvision's make_divisible, each checked against Python's own definition at drawn rationals."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from symcost import expr, yamlio
from symcost.errors import ExprError

H = sympy.Symbol("H", integer=True, positive=True)


def _make_divisible(v, divisor, min_value=None):
    """torchvision/models/_utils.py (torchvision 0.x), copied as the reference. One change: the
    literal 0.9 is Fraction(9, 10), so that the reference runs in the same exact arithmetic as
    symcost (with 0.9 as a float, 0.9 * v would round)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    # Make sure that round down does not go down by more than 10%.
    if new_v < Fraction(9, 10) * v:
        new_v += divisor
    return new_v


def _torchvision_float(v, divisor, min_value=None):
    """The same function verbatim, in floats, as torchvision runs it."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _rational(f: Fraction) -> sympy.Rational:
    return sympy.Rational(f.numerator, f.denominator)


rationals = st.fractions(min_value=-1000, max_value=1000, max_denominator=64)
positive = st.fractions(min_value=Fraction(1, 64), max_value=4000, max_denominator=64)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.1", Fraction(11, 10)),
        ("0.25", Fraction(1, 4)),
        (".5", Fraction(1, 2)),
        ("2.", 2),
        ("1_000.5", Fraction(2001, 2)),
    ],
)
def test_decimal_literals_are_exact_rationals(text, expected):
    assert expr.parse(text, {}) == _rational(Fraction(expected))


def test_decimal_is_read_from_its_text_not_a_float():
    # 0.1 + 0.2 is 0.30000000000000004 in floats; the literals' text gives exactly 3/10
    assert expr.parse("0.1 + 0.2", {}) == sympy.Rational(3, 10)
    assert expr.parse("16 * 1.1", {}) == sympy.Rational(88, 5)
    # the same from YAML: a float scalar keeps its text
    doc = yamlio.load_text("width: 1.1\n")
    assert expr.parse(doc["width"], {}) == sympy.Rational(11, 10)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("1e3", "not in exponent notation"),
        ("1.5e-3", "not in exponent notation"),
        ("0." + "1" * 41, "at most 40 digits"),
        ("1" * 45 + ".5", "too large"),
    ],
)
def test_decimal_literals_refused(text, needle):
    with pytest.raises(ExprError, match=needle):
        expr.parse(text, {})


@given(rationals)
def test_round_is_pythons_round(x):
    assert expr.parse("round(x)", {"x": _rational(x)}) == round(x)


@given(rationals)
def test_int_truncates_toward_zero(x):
    assert expr.parse("int(x)", {"x": _rational(x)}) == int(x) == math.trunc(x)


@given(rationals, positive)
def test_ceil_div_is_ceil_of_the_quotient(a, b):
    assert expr.parse("ceil_div(a, b)", {"a": _rational(a), "b": _rational(b)}) == math.ceil(a / b)


@given(positive, st.integers(1, 64), st.one_of(st.none(), st.integers(0, 256)))
def test_make_divisible_is_torchvisions(v, divisor, min_value):
    names = {"v": _rational(v), "d": sympy.Integer(divisor)}
    if min_value is None:
        got = expr.parse("make_divisible(v, d)", names)
    else:
        got = expr.parse("make_divisible(v, d, m)", {**names, "m": sympy.Integer(min_value)})
    assert got == _make_divisible(v, Fraction(divisor), None if min_value is None else Fraction(min_value))


@pytest.mark.parametrize("width", ["1.0", "1.1", "1.2", "1.4", "1.6", "1.8", "2.0", "0.75", "0.5", "0.35"])
@pytest.mark.parametrize("channels", [16, 24, 32, 40, 80, 96, 112, 192, 320, 1280])
def test_make_divisible_matches_torchvision_floats_at_model_widths(width, channels):
    # EfficientNet's and MobileNet's width multipliers, as torchvision computes them in floats
    got = expr.parse(f"make_divisible({channels} * {width}, 8)", {})
    assert got == _torchvision_float(channels * float(width), 8)


def test_functions_stay_symbolic_until_numbers():
    e = expr.parse("make_divisible(H * 1.1, 8) + round(H / 3) + int(H / 2) + ceil_div(H, 4)", {"H": H})
    assert e.free_symbols == {H}
    assert str(e) == "ceil_div(H, 4) + int(H/2) + make_divisible(11*H/10, 8) + round(H/3)"
    # at H = 30: make_divisible(33, 8) = 32; round(10) = 10; int(15) = 15; ceil(30/4) = 8
    assert e.xreplace({H: 30}) == 32 + 10 + 15 + 8
    assert expr.parse("round(H) + int(H)", {"H": H}) == 2 * H  # already whole numbers
    assert expr.parse("make_divisible(H, 8)", {"H": H}).is_integer


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("round(1, 2)", "round() takes 1 argument(s), got 2"),
        ("make_divisible(1)", "make_divisible() takes 2+ argument(s), got 1"),
        ("make_divisible(1, 2, 3, 4)", "make_divisible() takes 2+ argument(s), got 4"),
        ("make_divisible(1, divisor=8)", "keyword arguments are not allowed"),
    ],
)
def test_function_arity(text, needle):
    with pytest.raises(ExprError) as info:
        expr.parse(text, {})
    assert needle in str(info.value)
