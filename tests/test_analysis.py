"""sweep, solve, compare, assume/leading and the compiled Program behind them, each checked against
something the code under test did not produce: sympy's own evaluation, the exact per-point path
(:func:`symcost.compile.evaluate`), published counts, and hand arithmetic in the comments.

Published references used here:
  ResNet-50 at 1x3x224x224: 8,178,368,512 FLOPs, 25,557,032 params (torchvision meta).
  GPT-2 small at B=1, S=1024: 291,648,307,200 FLOPs (FlopCounterMode on HF's model).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest
import sympy
from hypothesis import example, given, settings
from hypothesis import strategies as st

from symcost import compile as compile_module
from symcost import devices, expr, memory, metrics, roofline, shapes
from symcost.arch import load_text
from symcost.compare import compare, split_values
from symcost.errors import ExprError, SymcostError, UsageError
from symcost.expr import gcd, max_, min_
from symcost.program import INT64_LIMIT, NotCompilable, Program
from symcost.simplify import assume, leading, parse_assumptions
from symcost.solve import parse_condition, solve
from symcost.sweep import parse_axis, sweep
from tests.helpers import graph, invoke

RESNET50_FLOPS = 8_178_368_512
RESNET50_PARAMS = 25_557_032
GPT2_FLOPS = 291_648_307_200
FIVE = ("flops", "params", "read", "write", "elementwise")


def exact(name: str, **values):
    """The exact per-point totals: the reference every vectorized number is checked against."""
    return compile_module.evaluate(graph(name), values).totals


def sym(name: str, variable: str) -> sympy.Symbol:
    return graph(name).arch.variables[variable].symbol


# ==== Program: compiled closed forms against sympy =================================================

X, Y, Z = SYMBOLS = sympy.symbols("x y z", integer=True, positive=True)
RATIONALS = st.builds(sympy.Rational, st.integers(-9, 9), st.integers(1, 7))
LEAVES = st.one_of(st.sampled_from(SYMBOLS), st.integers(-6, 6).map(sympy.Integer), RATIONALS)
MODULI = st.one_of(st.sampled_from(SYMBOLS), st.sampled_from([2, 3, 7, -4]).map(sympy.Integer))


def _extend(kids):
    return st.one_of(
        st.builds(lambda a, b: a + b, kids, kids),
        st.builds(lambda a, b: a - b, kids, kids),
        st.builds(lambda a, b: a * b, kids, kids),
        st.builds(lambda r, a: r * a, RATIONALS, kids),
        st.builds(lambda a, s: a / s, kids, st.sampled_from(SYMBOLS)),  # a variable denominator
        st.builds(lambda a, b: a / (2 * sympy.floor(b) + 1), kids, kids),  # odd: never 0, either sign
        st.builds(lambda a, k: a**k, kids, st.integers(2, 3)),
        st.builds(sympy.floor, kids),
        st.builds(sympy.ceiling, kids),
        # Mod and gcd of whole numbers (Program refuses fractions: test_program_mod_of_a_fraction)
        st.builds(lambda a, m: sympy.Mod(sympy.floor(a), m), kids, MODULI),
        st.builds(lambda a, b: gcd(sympy.floor(a), sympy.floor(b)), kids, kids),
        st.builds(min_, kids, kids),
        st.builds(max_, kids, kids),
        st.builds(sympy.Abs, kids),
    )


EXPRESSIONS = st.recursive(LEAVES, _extend, max_leaves=10)
# several expressions per example: derandomized runs repeat small cases, and each example is cheap
EXPRESSION_LISTS = st.lists(EXPRESSIONS, min_size=1, max_size=4)


def _sympy_value(e: sympy.Expr, point: tuple[int, ...]) -> sympy.Rational:
    value = e.xreplace({s: sympy.Integer(v) for s, v in zip(SYMBOLS, point)})
    assert value.is_Rational, (e, point, value)
    return value


def _run(es: list[sympy.Expr], points: list[tuple[int, ...]], *, dtype, exact_mode: bool = True):
    """One Program with an output per expression (they share steps), over the symbols they use (see
    test_unused_huge_variable for why not all three); each output as a list over the points."""
    used = [s for s in SYMBOLS if any(s in e.free_symbols for e in es)]
    program = Program({f"out{i}": e for i, e in enumerate(es)}, used)
    columns = {s.name: np.array([p[SYMBOLS.index(s)] for p in points], dtype=dtype) for s in used}
    run = program.run(columns, exact=exact_mode)
    got = [np.broadcast_to(run.values[f"out{i}"], (len(points),)).tolist() for i in range(len(es))]
    ranges = {s.name: (min(p[SYMBOLS.index(s)] for p in points), max(p[SYMBOLS.index(s)] for p in points))
              for s in used}  # fmt: skip
    return program, run, got, ranges


SMALL_OR_WIDE = st.one_of(st.integers(1, 12), st.integers(1, 2**20))  # small: exact multiples, ties
TRICKY = [
    X * (3 - Y),  # a product of mixed signs: every corner counts
    sympy.floor((3 - X) / (2 * Y - 5)),  # a denominator whose range spans 0 (never 0 itself)
    sympy.ceiling(-X / (2 * sympy.floor(Y / 2) - 3)),
    sympy.Mod(X - 50, Y) + sympy.Mod(X, -4),
    max_(X - 50, 3 - Y) * min_(Z, 7 - X),
    gcd(X - 60, Y) * sympy.Abs(Z - X),
]


@settings(max_examples=60, deadline=None)
@given(EXPRESSION_LISTS, st.lists(st.tuples(*[SMALL_OR_WIDE] * 3), min_size=1, max_size=4))
@example(TRICKY, [(1, 1, 1), (100, 5, 9), (3, 2, 50), (2**20, 2**20, 1)])
def test_program_exact_matches_sympy(es, points):
    program, run, got, ranges = _run(es, points, dtype=np.int64)
    for e, values in zip(es, got):
        # exact mode returns floor of the exact rational (the value itself for whole counts)
        assert values == [int(sympy.floor(_sympy_value(e, p))) for p in points], e
        assert all(type(v) is int for v in values)
    assert run.mode == ("int64" if program.fits_int64(ranges) else "object")


@settings(max_examples=60, deadline=None)
@given(EXPRESSION_LISTS, st.lists(st.tuples(*[st.integers(2**62, 2**66)] * 3), min_size=1, max_size=3))
@example(TRICKY, [(2**62, 2**63 + 5, 2**64), (2**66, 2**62, 2**62 + 1)])
def test_program_object_mode_is_exact_beyond_int64(es, points):
    _, run, got, ranges = _run(es, points, dtype=object)
    for e, values in zip(es, got):
        assert values == [int(sympy.floor(_sympy_value(e, p))) for p in points], e
    if ranges:  # a variable of at least 2**62 cannot be bounded inside int64's margin
        assert run.mode == "object"
        assert all(type(v) is int for values in got for v in values)


@settings(max_examples=60, deadline=None)
@given(EXPRESSION_LISTS, st.lists(st.tuples(*[st.integers(1, 40)] * 3), min_size=1, max_size=4))
def test_program_float_mode_is_close(es, points):
    # float64 is exact for whole numbers below 2**53: keep every intermediate well inside that
    ranges = {s.name: (min(p[i] for p in points), max(p[i] for p in points)) for i, s in enumerate(SYMBOLS)}
    es = [
        e for e in es if all(b is None or max(map(abs, b)) <= 2**45 for b in Program({"o": e}, SYMBOLS).bounds(ranges))
    ]
    if not es:
        return
    _, run, got, _ = _run(es, points, dtype=np.int64, exact_mode=False)
    assert run.mode == "float64"
    for e, values in zip(es, got):
        for value, point in zip(values, points):
            assert math.isclose(value, float(_sympy_value(e, point)), rel_tol=1e-9, abs_tol=1e-9), (e, point)


@settings(max_examples=60, deadline=None)
@given(EXPRESSION_LISTS, st.lists(st.tuples(*[SMALL_OR_WIDE] * 3), min_size=2, max_size=4))
@example(TRICKY, [(1, 1, 1), (100, 5, 9), (3, 2, 50)])
@example(TRICKY, [(7, 4, 2), (10**4, 10**4, 10**4)])
def test_program_bounds_are_sound(es, points):
    """Every sub-expression's value at every point of the box lies inside the interval the bounds give
    its numerator (the value times a constant denominator): what makes the int64 choice safe."""
    ranges = {s.name: (min(p[i] for p in points), max(p[i] for p in points)) for i, s in enumerate(SYMBOLS)}
    corners = list(itertools.product(*(ranges[s.name] for s in SYMBOLS)))
    subs = {sub for e in es for sub in sympy.preorder_traversal(e) if isinstance(sub, sympy.Expr) and sub.free_symbols}
    for sub in subs:
        program = Program({"o": sub}, SYMBOLS)
        num, den = program.outputs["o"]
        if program.steps[den][0] != "const":
            continue  # a variable denominator: the numerator is not the value times a constant
        low, high = program.bounds(ranges)[num]
        for point in [*points, *corners]:
            scaled = _sympy_value(sub, point) * program.steps[den][1]
            assert scaled.is_Integer and low <= scaled <= high, (sub, point, (low, high))


def test_program_floor_and_ceiling_by_hand():
    values = np.arange(1, 10)
    run = Program({"f": sympy.floor(X / 3), "c": sympy.ceiling(X / 3), "n": sympy.ceiling(-X / 3),
                   "m": sympy.Mod(X, 4), "g": gcd(X, 6)}, [X]).run({"x": values})  # fmt: skip
    assert run.values["f"].tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert run.values["c"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert run.values["n"].tolist() == [0, 0, -1, -1, -1, -2, -2, -2, -3]
    assert run.values["m"].tolist() == [1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert run.values["g"].tolist() == [1, 2, 3, 2, 1, 6, 1, 2, 3]


def test_program_bounds_pick_object_when_a_product_overflows():
    program = Program({"p": X**5}, [X])
    # (10**13)**5 = 10**65 > 2**63: the bounds must refuse int64 ...
    assert not program.fits_int64({"x": (10**13, 10**13)})
    # ... even when the caller hands over an int64 column, and the answer is the exact Python int
    run = program.run({"x": np.array([10**13, 3], dtype=np.int64)})
    assert run.mode == "object"
    assert run.values["p"].tolist() == [10**65, 243]
    # an int64 wrap-around would not give that: numpy's own int64 product does wrap
    with np.errstate(over="ignore"):
        assert int(np.int64(10**13) ** 5) != 10**65


def test_program_int64_limit_boundary_and_intermediates():
    square = Program({"s": X**2}, [X])
    below, at = 2**31 - 1, 2**31  # (2**31)**2 == 2**62 == INT64_LIMIT, which is not below the limit
    assert INT64_LIMIT == 2**62
    assert square.run({"x": np.array([below])}).mode == "int64"
    assert square.run({"x": np.array([below])}).values["s"].tolist() == [below * below]
    assert square.run({"x": np.array([at])}).mode == "object"
    assert square.run({"x": np.array([at])}).values["s"].tolist() == [2**62]
    # the result 3*10**18 fits int64, but the intermediate x**2 = 9*10**18 does not fit the margin
    third = Program({"t": sympy.floor(X**2 / 3)}, [X]).run({"x": np.array([3 * 10**9])})
    assert third.mode == "object"
    assert third.values["t"].tolist() == [3 * 10**18]


def test_program_docstring_case_by_hand():
    # H=224: floor(111.5) + 1 = 112 rows; 64*112*224 = 1,605,632.  H=225: floor(112) + 1 = 113; 64*113*224 = 1,619,968
    H, W = sympy.symbols("H W", integer=True, positive=True)
    program = Program({"macs": 64 * (sympy.floor(H / 2 - sympy.Rational(1, 2)) + 1) * W}, [H, W])
    run = program.run({"H": np.array([224, 225]), "W": np.array([224, 224])})
    assert run.values["macs"].tolist() == [1_605_632, 1_619_968]
    assert run.mode == "int64"
    approx = program.run({"H": np.array([224, 225]), "W": np.array([224, 224])}, exact=False)
    assert approx.mode == "float64" and approx.values["macs"].tolist() == [1_605_632.0, 1_619_968.0]


def test_program_conditions_report_the_first_failure():
    program = Program({"v": X}, [X], [sympy.Ge(X, 3), sympy.Eq(sympy.Mod(X, 2), 0), X < 100])
    run = program.run({"x": np.array([1, 2, 3, 4, 101, 102])})
    # x=1: fails x>=3 (0); 2: fails x>=3 (0); 3: odd (1); 4: valid; 101: odd (1); 102: fails x<100 (2)
    assert run.failed.tolist() == [0, 0, 1, -1, 1, 2]
    assert run.valid.tolist() == [False, False, False, True, False, False]


def test_program_refuses_what_it_cannot_compute_exactly():
    with pytest.raises(NotCompilable):
        Program({"r": sympy.sqrt(X)}, [X])
    with pytest.raises(NotCompilable):
        Program({"r": X + Y}, [X])  # y has no value
    assert issubclass(NotCompilable, UsageError)


def test_program_mod_of_a_fraction():
    e = 2 * sympy.Mod(X / 2, 3)
    want = [int(e.xreplace({X: v})) for v in (1, 3, 7)]  # sympy: [1, 3, 1]
    try:
        got = Program({"m": e}, [X]).run({"x": np.array([1, 3, 7])}).values["m"].tolist()
    except NotCompilable:
        return  # refusing is also correct
    assert got == want


def test_unused_huge_variable():
    s = sweep(graph("resnet50"), [parse_axis(f"N=1,{2**64}")], ["params"])
    assert [row[1] for row in s.rows()] == [RESNET50_PARAMS, RESNET50_PARAMS]


# ==== sweep against the exact path ==================================================================


def _check_every_point(s, name: str, fixed: dict, names=FIVE):
    axes = [a.name for a in s.axes]
    count = 0
    for row in s.rows():
        point = dict(zip(axes, row))
        totals = exact(name, **fixed, **point)
        assert row[len(axes) :] == tuple(totals[n] for n in names), point
        assert all(type(v) is int for v in row)
        count += 1
    assert count == s.size


def test_sweep_resnet50_every_point_is_exact():
    s = sweep(graph("resnet50"), [parse_axis("N=1,3"), parse_axis("H=32,97,224"), parse_axis("W=64,225")], FIVE)
    assert s.size == 12 and s.valid is None and s.mode == "int64"
    _check_every_point(s, "resnet50", {})
    assert (
        s.metrics["flops"][list(itertools.product((1, 3), (32, 97, 224), (64, 225))).index((1, 224, 225))]
        == exact("resnet50", H=224, W=225)["flops"]
    )


def test_sweep_resnet50_published_point():
    s = sweep(graph("resnet50"), [parse_axis("H=224")], ["flops", "params"])
    assert list(s.rows()) == [(224, RESNET50_FLOPS, RESNET50_PARAMS)]


def test_sweep_mobilenet_v2_every_point_is_exact():
    s = sweep(graph("mobilenet_v2"), [parse_axis("H=33:225:64"), parse_axis("W=96,224")], FIVE)
    _check_every_point(s, "mobilenet_v2", {})


def test_sweep_gpt2_every_point_is_exact():
    s = sweep(graph("gpt2"), [parse_axis("B=1,3"), parse_axis("S=1,7,1024")], FIVE)
    _check_every_point(s, "gpt2", {})
    assert dict(((b, sq), f) for b, sq, f, *_ in s.rows())[(1, 1024)] == GPT2_FLOPS


def test_sweep_llama_decode_every_point_is_exact():
    # the phase's S yields to the swept S; ctx stays at the phase's 4095
    s = sweep(graph("llama"), [parse_axis("B=1:16:*4"), parse_axis("S=1,5")], (*FIVE, "cache"),
              values={"S": 1, "ctx": 4095})  # fmt: skip
    assert s.fixed["ctx"] == 4095 and "S" not in s.fixed
    _check_every_point(s, "llama", {"ctx": 4095}, (*FIVE, "cache"))


def test_sweep_with_w_bound_to_h():
    h = sym("resnet50", "H")
    s = sweep(graph("resnet50"), [parse_axis("H=64,100,224")], ["flops"], values={"W": h})
    assert [row[1] for row in s.rows()] == [exact("resnet50", H=v, W=v)["flops"] for v in (64, 100, 224)]
    assert s.fixed["W"] == h


def test_sweep_object_mode_beyond_int64():
    n = 2**62 + 1
    s = sweep(graph("resnet50"), [parse_axis(f"N=1,{n}")], ["flops", "params"])
    assert s.mode == "object"
    rows = list(s.rows())
    assert rows[1] == (n, exact("resnet50", N=n)["flops"], RESNET50_PARAMS)
    assert rows[1][1] == n * RESNET50_FLOPS  # every image costs the same: FLOPs are N times one image's


def test_sweep_float_mode_is_marked_approximate():
    s = sweep(graph("resnet50"), [parse_axis("H=64,224")], ["flops", "params"], exact=False)
    assert s.mode == "float64" and s.approximate == ("flops", "params")
    for h, flops, params in s.rows():
        assert isinstance(flops, float)
        assert math.isclose(flops, exact("resnet50", H=h)["flops"], rel_tol=1e-12)
        assert math.isclose(params, RESNET50_PARAMS, rel_tol=1e-12)


def test_sweep_timed_and_memory_metrics_match_the_exact_point():
    dev = devices.find("a100", ())
    setting = metrics.Setting(dtype="bf16", roof=roofline.roof_for(dev, "bf16"), device=dev)
    names = ["latency", "compute_s", "memory_s", "memory", "kv_cache_bytes", "model_bytes", "traffic_bytes"]
    s = sweep(graph("llama"), [parse_axis("B=1,8,64"), parse_axis("S=1,3")], names, values={"S": 1, "ctx": 4095},
              setting=setting)  # fmt: skip
    assert set(s.approximate) == {"latency", "compute_s", "memory_s"}
    for b, sq, *got in s.rows():
        result = compile_module.evaluate(graph("llama"), {"B": b, "S": sq, "ctx": 4095})
        est = roofline.estimate(result, dev, setting.roof, "bf16")
        for value, want in zip(got[:3], (est.latency_s, est.compute_s, est.memory_s)):
            assert math.isclose(value, float(want), rel_tol=1e-9)
        t = result.totals
        # bf16 is 2 bytes an element
        assert got[3] == sum(memory.needed(result, "bf16").values())
        assert got[4:] == [2 * t["cache"], 2 * (t["params"] + t["buffers"]), 2 * (t["read"] + t["write"])]


def test_sweep_row_order_and_columns():
    s = sweep(graph("resnet50"), [parse_axis("N=1,2"), parse_axis("H=64:192:64")], ["flops"])
    assert [row[:2] for row in s.rows()] == [(1, 64), (1, 128), (1, 192), (2, 64), (2, 128), (2, 192)]
    columns = s.columns()
    assert list(columns) == ["N", "H"]
    assert columns["N"].tolist() == [1, 1, 1, 2, 2, 2]
    assert columns["H"].tolist() == [64, 128, 192, 64, 128, 192]
    for n, h, flops in zip(columns["N"], columns["H"], s.metrics["flops"]):
        assert flops == exact("resnet50", N=int(n), H=int(h))["flops"]


def test_sweep_invalid_points_are_none_with_reasons():
    # head_dim = d_model/12: whole at 768 (64) and 780 (65) only, among 760, 764, ..., 780
    s = sweep(graph("gpt2"), [parse_axis("d_model=760:780:4")], ["flops", "params"])
    rows = list(s.rows())
    assert [r[0] for r in rows] == [760, 764, 768, 772, 776, 780]
    assert set(s.reasons) == {0, 1, 3, 4}
    assert all("head_dim" in why for why in s.reasons.values())
    assert s.valid.tolist() == [False, False, True, False, False, True]
    for (d, flops, params), ok in zip(rows, s.valid):
        if ok:
            t = exact("gpt2", d_model=d)
            assert (flops, params) == (t["flops"], t["params"])
        else:
            assert flops is None and params is None
            with pytest.raises(SymcostError):  # the exact path refuses these points too
                exact("gpt2", d_model=d)
    assert rows[2][1] == GPT2_FLOPS


def test_sweep_validity_agrees_with_the_exact_path_at_small_sizes():
    # VGG-16's unpadded max pools make small inputs invalid; the sweep must say so where eval does
    s = sweep(graph("vgg16"), [parse_axis("H=1:40:3")], ["flops", "params"])
    invalid = 0
    for h, flops, params in s.rows():
        try:
            t = exact("vgg16", H=h)
            assert (flops, params) == (t["flops"], t["params"]), h
        except SymcostError:
            invalid += 1
            assert flops is None and params is None, h
    assert 0 < invalid < s.size


FC_HALF = """
name: fc_half
summary: a linear layer whose width is half the input's
variables: {N: 1, D: 100}
inputs: {x: [N, D]}
layers: [{op: linear, out_features: D/2}]
"""


def test_sweep_non_whole_layer_size_is_invalid():
    g = shapes.build(load_text(FC_HALF, "fc_half.yaml"))
    with pytest.raises(SymcostError):
        compile_module.evaluate(g, {"D": 101})
    s = sweep(g, [parse_axis("D=100,101")], ["flops"])
    assert list(s.rows())[0] == (100, compile_module.evaluate(g, {"D": 100}).totals["flops"])
    assert list(s.rows())[1] == (101, None)


def test_sweep_of_a_variable_with_an_expression_default():
    s = sweep(graph("gpt2"), [parse_axis("head_dim=32,64")], ["flops"])
    assert [row[1] for row in s.rows()] == [exact("gpt2", head_dim=32)["flops"], exact("gpt2", head_dim=64)["flops"]]


@pytest.mark.parametrize(
    "axes, needle",
    [(["Q=1,2"], "no variable"), (["H=1,2", "H=3"], "twice"), (["H=0,2"], "at least 1")],
)
def test_sweep_refuses_bad_axes(axes, needle):
    with pytest.raises(UsageError, match=needle):
        sweep(graph("resnet50"), [parse_axis(a) for a in axes], ["flops"])


def test_sweep_refuses_unknown_metrics_and_latency_without_a_device():
    with pytest.raises(UsageError, match="unknown metric"):
        sweep(graph("resnet50"), [parse_axis("H=32")], ["flopz"])
    with pytest.raises(UsageError, match="needs --device"):
        sweep(graph("resnet50"), [parse_axis("H=32")], ["latency"])


# ==== parse_axis ====================================================================================


@pytest.mark.parametrize(
    "text, name, values",
    [
        ("H=64:256:64", "H", (64, 128, 192, 256)),
        ("H=1:10:3", "H", (1, 4, 7, 10)),
        ("H=1:11:3", "H", (1, 4, 7, 10)),  # stop not on the grid: not included
        ("H=5:5", "H", (5,)),
        ("N=1:4", "N", (1, 2, 3, 4)),
        ("N=1,8,64", "N", (1, 8, 64)),
        ("N=64,1,8", "N", (64, 1, 8)),  # a list keeps its order
        ("B=1:64:*2", "B", (1, 2, 4, 8, 16, 32, 64)),
        ("B=3:100:*3", "B", (3, 9, 27, 81)),
        (" d_model = 512:1024:256 ", "d_model", (512, 768, 1024)),
        ("ctx=-2:1", "ctx", (-2, -1, 0, 1)),
    ],
)
def test_parse_axis(text, name, values):
    axis = parse_axis(text)
    assert (axis.name, axis.values) == (name, values)


@pytest.mark.parametrize(
    "text",
    ["H=", "H=5:1", "H=1:10:0", "H=a,b", "H", "=1:3", "1H=1:3", "H=1:10:*1", "H=0:10:*2", "H=1:3:", "H=,"],
)
def test_parse_axis_errors(text):
    with pytest.raises(UsageError):
        parse_axis(text)


# ==== solve =========================================================================================


def test_solve_resnet50_height_for_a_flop_budget():
    s = solve(graph("resnet50"), "flops <= 10**10", "H")
    assert s.direction == "largest" and s.checked and s.method == "closed form"
    assert exact("resnet50", H=s.value)["flops"] <= 10**10 < exact("resnet50", H=s.value + 1)["flops"]
    assert s.fixed["W"] == 224


def test_solve_resnet50_square_input():
    h = sym("resnet50", "H")
    s = solve(graph("resnet50"), "flops <= 10*G", "H", values={"W": h})
    a = s.value
    assert s.checked
    assert exact("resnet50", H=a, W=a)["flops"] <= 10**10 < exact("resnet50", H=a + 1, W=a + 1)["flops"]
    # FLOPs grow about as H*W: 8.18e9 at 224, so the answer is near 224*sqrt(10/8.18) ~ 247.7
    assert 230 < a < 250


def test_solve_smallest():
    s = solve(graph("resnet50"), "flops >= 10**12", "H")
    assert s.direction == "smallest" and s.checked
    assert exact("resnet50", H=s.value - 1)["flops"] < 10**12 <= exact("resnet50", H=s.value)["flops"]
    assert [c["value"] for c in s.checks] == [s.value, s.value - 1]


def test_solve_without_an_answer():
    # params do not depend on H: the condition holds everywhere, so there is no value where it changes
    holds = solve(graph("resnet50"), "params <= 10**12", "H", limit=10**6)
    assert holds.value is None and holds.direction == "largest" and holds.why
    assert not holds.checked and holds.checks == []
    assert exact("resnet50", H=1)["params"] == exact("resnet50", H=10**6)["params"] == RESNET50_PARAMS
    never = solve(graph("resnet50"), "flops <= 1", "H", limit=10**6)
    assert never.value is None and never.direction == "smallest" and never.why
    assert exact("resnet50", H=1)["flops"] > 1  # and FLOPs only grow with H


def test_solve_gpt2_width_in_steps_of_64():
    # n_head=16 keeps head_dim = d_model/16 whole at every multiple of 64
    s = solve(graph("gpt2"), "params <= 10**9", "d_model", step=64, values={"n_head": 16})
    assert s.value % 64 == 0 and s.checked
    below = exact("gpt2", d_model=s.value, n_head=16)["params"]
    above = exact("gpt2", d_model=s.value + 64, n_head=16)["params"]
    assert below <= 10**9 < above


def test_solve_refuses_invalid_probe_points_with_a_hint():
    # n_head = 12: d_model = 64*k gives a whole head_dim only when 3 divides k
    with pytest.raises(UsageError, match="--step") as info:
        solve(graph("gpt2"), "params <= 10**9", "d_model", step=64)
    assert "head_dim" in str(info.value)
    with pytest.raises(SymcostError):
        exact("gpt2", d_model=64)  # the exact path refuses the first probe too: 64/12 heads' width


def test_solve_width_with_heads_tied_to_it():
    d = sym("gpt2", "d_model")
    s = solve(graph("gpt2"), "params <= 10**9", "d_model", step=64, values={"n_head": d / 64})
    a = s.value
    assert a % 64 == 0 and s.checked
    assert (
        exact("gpt2", d_model=a, n_head=a // 64)["params"]
        <= 10**9
        < exact("gpt2", d_model=a + 64, n_head=a // 64 + 1)["params"]
    )


def test_solve_vgg16_height_for_a_flop_budget():
    # VGG-16 is not valid below H = 32 (five 2x2 pools), so the search starts there (--from)
    with pytest.raises(UsageError, match="--from"):
        solve(graph("vgg16"), "flops <= 10**10", "H")
    s = solve(graph("vgg16"), "flops <= 10**10", "H", start_from=32)
    assert s.checked
    assert exact("vgg16", H=s.value)["flops"] <= 10**10 < exact("vgg16", H=s.value + 1)["flops"]


def test_solve_for_a_variable_with_an_expression_default():
    assert exact("gpt2", d_ff=100_000)["params"] > 2 * 10**8  # so the condition does change below the limit
    s = solve(graph("gpt2"), "params <= 2*10**8", "d_ff", limit=100_000)
    assert s.value is not None and s.checked


def test_solve_with_h_bound_to_w():
    w = sym("resnet50", "W")
    s = solve(graph("resnet50"), "flops <= 10**10", "W", values={"H": w})
    square = solve(graph("resnet50"), "flops <= 10**10", "H", values={"W": sym("resnet50", "H")})
    assert s.checked and s.value == square.value  # ResNet-50 is symmetric in H and W


def test_solve_llama_decode_batch_for_device_memory():
    dev = devices.find("a100", ())
    setting = metrics.Setting(dtype="bf16", roof=roofline.roof_for(dev, "bf16"), device=dev)
    s = solve(graph("llama"), "memory <= 80*GB", "B", values={"S": 1, "ctx": 4095}, setting=setting)
    assert s.method == "exact evaluation" and s.checked

    def need(b: int) -> int:
        result = compile_module.evaluate(graph("llama"), {"B": b, "S": 1, "ctx": 4095})
        return sum(memory.needed(result, "bf16").values())

    assert need(s.value) <= 80 * 10**9 < need(s.value + 1)
    # the KV cache alone: 2 (K, V) x 32 layers x 4096 (ctx+S) x 4096 (d) x 2 bytes = 2 GiB per sequence,
    # next to 13.5 GB of weights: about 30 sequences fit in 80 GB
    assert 25 <= s.value <= 35


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"condition_text": "flops <= 1", "variable": "Q"}, UsageError),
        ({"condition_text": "flops <= 1", "variable": "H", "step": 0}, UsageError),
        ({"condition_text": "latency <= 1*ms", "variable": "H"}, UsageError),
        ({"condition_text": "flops", "variable": "H"}, UsageError),
        ({"condition_text": "flopz <= 1", "variable": "H"}, ExprError),
    ],
)
def test_solve_errors(kwargs, error):
    with pytest.raises(error):
        solve(graph("resnet50"), **kwargs)


# ==== parse_condition ===============================================================================


def test_parse_condition_units_and_metrics():
    condition, used = parse_condition("memory <= 80*GB and latency <= 20*ms")
    assert used == ["latency", "memory"]
    m, lat = sympy.Symbol("memory"), sympy.Symbol("latency")
    assert condition.xreplace({m: 80 * 10**9, lat: sympy.Rational(1, 50)}) == sympy.true
    assert condition.xreplace({m: 80 * 10**9 + 1, lat: 0}) == sympy.false
    assert condition.xreplace({m: 0, lat: sympy.Rational(1, 50) + sympy.Rational(1, 10**9)}) == sympy.false
    decimal, _ = parse_condition("latency <= 0.02")  # exactly 1/50, not the float nearest it
    assert decimal == (sympy.Symbol("latency") <= sympy.Rational(1, 50))
    kib, _ = parse_condition("model_bytes < 1*GiB")
    assert kib.xreplace({sympy.Symbol("model_bytes"): 2**30 - 1}) == sympy.true
    assert kib.xreplace({sympy.Symbol("model_bytes"): 2**30}) == sympy.false


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os') <= 1",
        "flops.real <= 1",
        "flops",
        "foo <= 1",
        "1 <= 2",
        "flops <= 1.5e3",  # exponent notation (a decimal such as latency <= 0.02 is exact: below)
        "flops[0] <= 1",
        "(lambda: 1)() <= flops",
        "flops <= 'a'",
        "flops <= 10**100",
        "exec('1') <= flops",
    ],
)
def test_parse_condition_refuses(text):
    with pytest.raises(SymcostError) as info:
        parse_condition(text)
    assert isinstance(info.value, (UsageError, ExprError))


def test_parse_condition_never_evaluates(tmp_path, monkeypatch):
    import builtins

    marker = tmp_path / "touched"
    calls = []
    monkeypatch.setattr(builtins, "eval", lambda *a, **k: calls.append(a))
    for text in (f"open({str(marker)!r}, 'w') <= flops", f"flops <= len(open({str(marker)!r}, 'w').name)"):
        with pytest.raises(ExprError):
            parse_condition(text)
    assert not marker.exists() and calls == []


# ==== compare =======================================================================================


def test_compare_values_and_exact_ratios():
    names = ["params", "macs", "flops", "elementwise", "model_bytes", "traffic_bytes", "memory"]
    c = compare([graph("resnet50"), graph("mobilenet_v2")], names)
    assert c.archs == ["resnet50", "mobilenet_v2"]
    refs = []
    for name in ("resnet50", "mobilenet_v2"):
        result = compile_module.evaluate(graph(name), {})
        t = result.totals
        refs.append({
            **{k: t[k] for k in ("params", "macs", "flops", "elementwise")},
            "model_bytes": 4 * (t["params"] + t["buffers"]),  # fp32: 4 bytes an element
            "traffic_bytes": 4 * (t["read"] + t["write"]),
            "memory": sum(memory.needed(result, "fp32").values()),
        })  # fmt: skip
    assert [r["metric"] for r in c.rows] == names
    for row in c.rows:
        values = [ref[row["metric"]] for ref in refs]
        assert row["values"] == values
        assert all(isinstance(r, Fraction) for r in row["ratios"])
        assert row["ratios"] == [Fraction(1), Fraction(values[1], values[0])]
    flops = next(r for r in c.rows if r["metric"] == "flops")
    params = next(r for r in c.rows if r["metric"] == "params")
    assert flops["values"][0] == RESNET50_FLOPS and params["values"][0] == RESNET50_PARAMS
    assert c.values[0]["H"] == 224 and c.values[1]["W"] == 224


def test_compare_free_sequence_length():
    c = compare([graph("gpt2"), graph("gpt2_medium")], ["flops", "params"], free=["S"])
    assert c.free == ["S"]
    s = sym("gpt2", "S")
    assert sym("gpt2_medium", "S") == s  # same name, same symbol: the ratios can cancel
    for row in c.closed:
        forms, ratios = row["forms"], row["ratios"]
        at = [f.xreplace({s: 1024}) for f in forms]
        assert at == [exact("gpt2")[row["metric"]], exact("gpt2_medium")[row["metric"]]]
        assert ratios[1].xreplace({s: 1024}) == sympy.Rational(at[1], at[0])
        for length in (1, 100):  # other lengths too, against the exact path
            assert [f.xreplace({s: length}) for f in forms] == [
                exact("gpt2", S=length)[row["metric"]],
                exact("gpt2_medium", S=length)[row["metric"]],
            ]
    flops = next(r for r in c.closed if r["metric"] == "flops")
    assert flops["forms"][0].xreplace({s: 1024}) == GPT2_FLOPS
    assert sympy.degree(flops["forms"][0], s) == 2


def test_compare_free_with_assumptions_gives_polynomials():
    facts = parse_assumptions(["H % 32 == 0", "W % 32 == 0"], {"H": sym("resnet50", "H"), "W": sym("resnet50", "W")})
    c = compare([graph("resnet50"), graph("mobilenet_v2")], ["flops"], free=["H", "W"], assumptions=facts)
    h, w = sym("resnet50", "H"), sym("resnet50", "W")
    forms = c.closed[0]["forms"]
    assert not any(f.atoms(sympy.floor, sympy.ceiling) for f in forms)
    for hh, ww in ((224, 224), (320, 96)):
        assert [f.xreplace({h: hh, w: ww}) for f in forms] == [
            exact("resnet50", H=hh, W=ww)["flops"],
            exact("mobilenet_v2", H=hh, W=ww)["flops"],
        ]


def test_compare_errors_and_split_values():
    with pytest.raises(UsageError):
        compare([graph("resnet50")], ["flops"])
    with pytest.raises(UsageError):
        compare([graph("resnet50"), graph("gpt2")], ["flops"], free=["H"])  # gpt2 has no H
    graphs = [graph("resnet50"), graph("gpt2")]
    assert split_values(graphs, {"N": 4, "S": 8}) == [{"N": 4}, {"S": 8}]
    with pytest.raises(UsageError):
        split_values(graphs, {"Q": 1})


# ==== assume and leading ============================================================================


def _resnet_closed(key: str, *free: str):
    variables = graph("resnet50").arch.variables
    bound = {k: v.default for k, v in variables.items() if k not in free}
    return compile_module.symbolic_totals(graph("resnet50"), bound)[key]


def _resnet_names():
    return {v.name: v.symbol for v in graph("resnet50").arch.variables.values()}


def test_assume_multiples_of_32_resolve_every_floor():
    names = _resnet_names()
    n, h, w = names["N"], names["H"], names["W"]
    form = _resnet_closed("flops", "N", "H", "W")
    assert form.atoms(sympy.floor)  # floors of floors before
    poly = assume(form, parse_assumptions(["H % 32 == 0", "W % 32 == 0"], names))
    assert not poly.atoms(sympy.floor, sympy.ceiling)
    assert poly.is_polynomial(n, h, w)
    # Hand check at 224x224: the polynomial is 162912*H*W*N + 4096000*N, and
    # 162912*50176 = 8,174,272,512 (convolutions etc.) + 2*2048*1000 = 4,096,000 (the fc layer) = 8,178,368,512
    assert poly.xreplace({n: 1, h: 224, w: 224}) == RESNET50_FLOPS
    for hh, ww in itertools.product((32, 224, 320, 448), (32, 224, 320, 448)):
        assert poly.xreplace({n: 2, h: hh, w: ww}) == exact("resnet50", N=2, H=hh, W=ww)["flops"], (hh, ww)


def test_assume_other_residues_agree_with_the_exact_path():
    names = _resnet_names()
    h = names["H"]
    form = _resnet_closed("flops", "H")  # W = 224
    five = assume(form, parse_assumptions(["H % 32 == 5"], names))
    assert not five.atoms(sympy.floor, sympy.ceiling)
    for hh in (37, 69, 229, 325):  # all = 5 (mod 32)
        assert five.xreplace({h: hh}) == exact("resnet50", H=hh)["flops"]
    # a modulus too small to resolve every floor leaves some, and is still exact
    odd = assume(form, parse_assumptions(["H % 2 == 1"], names))
    for hh in (33, 101, 225):
        assert odd.xreplace({h: hh}) == exact("resnet50", H=hh)["flops"]
    # an equality: W == H
    square = assume(_resnet_closed("flops", "H", "W"), parse_assumptions(["W == H", "H % 32 == 0"], names))
    assert square.free_symbols == {h}
    assert square.xreplace({h: 224}) == RESNET50_FLOPS


@pytest.mark.parametrize("text", ["H > 3", "H % W == 0", "H % -32 == 0", "H % 32 == W", "2*H % 32 == 0", "H + W"])
def test_bad_assumptions(text):
    with pytest.raises(UsageError):
        parse_assumptions([text], _resnet_names())


def test_assumption_parsing_never_evaluates():
    with pytest.raises(SymcostError):
        parse_assumptions(["__import__('os').getcwd() == H"], _resnet_names())


def test_leading_terms_of_gpt2_in_the_sequence_length():
    variables = graph("gpt2").arch.variables
    s = variables["S"].symbol
    form = compile_module.symbolic_totals(graph("gpt2"), {k: v.default for k, v in variables.items() if k != "S"})[
        "flops"
    ]
    terms = leading(form, s)
    assert [d for d, _ in terms] == [2, 1]
    assert sympy.expand(sum(t for _, t in terms) - form) == 0
    assert sum(t.xreplace({s: 1024}) for _, t in terms) == GPT2_FLOPS
    # the S**2 term is attention's full square: QK^T and AV, each 2*B*n_head*S*S*head_dim FLOPs, in
    # every layer: 2 matmuls * 2*1*12*1024*1024*64 * 12 layers = 4*1*12*1024*1024*64*12 = 38,654,705,664
    assert terms[0][1].xreplace({s: 1024}) == 4 * 1 * 12 * 1024 * 1024 * 64 * 12 == 38_654_705_664
    assert terms[1][1].xreplace({s: 1024}) == GPT2_FLOPS - 38_654_705_664


def test_leading_needs_a_polynomial():
    names = _resnet_names()
    with pytest.raises(UsageError, match="assumption"):
        leading(_resnet_closed("flops", "H"), names["H"])
    x = sympy.Symbol("x", positive=True)
    with pytest.raises(UsageError):
        leading(1 / x + x, x)


# ==== the command line ==============================================================================


def test_cli_sweep_csv_matches_the_exact_path():
    result = invoke(
        "sweep", "resnet50", "--over", "H=32:96:32", "--over", "N=1,2", "--metric", "flops,params", "-f", "csv"
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    # first axis slowest
    assert [(r["H"], r["N"]) for r in rows] == list(itertools.product(("32", "64", "96"), ("1", "2")))
    for r in rows:
        t = exact("resnet50", H=int(r["H"]), N=int(r["N"]))
        assert (int(r["flops"]), int(r["params"])) == (t["flops"], t["params"])


def test_cli_sweep_csv_leaves_invalid_points_empty():
    result = invoke("sweep", "gpt2", "--over", "d_model=760:780:4", "-f", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["d_model"]: r["flops"] for r in rows} == {
        "760": "", "764": "", "768": str(GPT2_FLOPS), "772": "", "776": "",
        "780": str(exact("gpt2", d_model=780)["flops"]),
    }  # fmt: skip


def test_cli_sweep_writes_json(tmp_path):
    out = tmp_path / "out.json"
    result = invoke("sweep", "gpt2", "--over", "S=1,512,1024", "--metric", "flops,cache", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert str(out) in result.stdout
    data = json.loads(out.read_text())
    assert data["arch"] == "gpt2" and data["axes"] == {"S": [1, 512, 1024]}
    assert data["exact_mode"] == "int64" and data["approximate"] == []
    for point in data["points"]:
        t = exact("gpt2", S=point["S"])
        assert (point["flops"], point["cache"]) == (t["flops"], t["cache"])
    assert data["points"][-1]["flops"] == GPT2_FLOPS


def test_cli_sweep_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "x.png"
    result = invoke("sweep", "gpt2", "--over", "S=128:1024:128", "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"{GPT2_FLOPS:,}" in result.stdout  # the table is printed too


def test_cli_sweep_set_w_to_h():
    result = invoke("sweep", "resnet50", "--over", "H=224,256", "--set", "W=H", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["fixed"]["W"] == "H"
    assert [p["flops"] for p in data["points"]] == [RESNET50_FLOPS, exact("resnet50", H=256, W=256)["flops"]]


def test_cli_solve():
    result = invoke("solve", "resnet50", "flops <= 10**10", "--for", "H", "--set", "W=H")
    assert result.exit_code == 0, result.output
    answer = solve(graph("resnet50"), "flops <= 10**10", "H", values={"W": sym("resnet50", "H")}).value
    assert (
        exact("resnet50", H=answer, W=answer)["flops"]
        <= 10**10
        < exact("resnet50", H=answer + 1, W=answer + 1)["flops"]
    )
    assert f"H = {answer:,}" in result.stdout
    data = json.loads(invoke("solve", "resnet50", "flops <= 10**10", "--for", "H", "--set", "W=H", "-f", "json").stdout)
    assert data["value"] == answer and data["checked"] is True
    assert [c["holds"] for c in data["checks"]] == [True, False]


def test_cli_solve_width_with_heads_tied_to_it():
    result = invoke("solve", "gpt2", "params <= 10**9", "--for", "d_model", "--step", "64", "--set", "n_head=d_model/64",
                 "-f", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    a = json.loads(result.stdout)["value"]
    assert a % 64 == 0
    assert exact("gpt2", d_model=a, n_head=a // 64)["params"] <= 10**9
    assert exact("gpt2", d_model=a + 64, n_head=a // 64 + 1)["params"] > 10**9


def test_cli_solve_phase_value_yields_to_for():
    # --phase decode sets S=1; solving for S must not conflict with it
    result = invoke("solve", "gpt2", "flops >= 10**12", "--for", "S", "--phase", "decode", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    s = data["value"]
    assert exact("gpt2", S=s - 1, ctx=1023)["flops"] < 10**12 <= exact("gpt2", S=s, ctx=1023)["flops"]


def test_cli_compare_json():
    result = invoke("compare", "resnet50", "mobilenet_v2", "--metric", "flops,params", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["archs"] == ["resnet50", "mobilenet_v2"]
    by = {m["metric"]: m for m in data["metrics"]}
    assert by["flops"]["values"] == [RESNET50_FLOPS, exact("mobilenet_v2")["flops"]]
    assert by["params"]["values"] == [RESNET50_PARAMS, exact("mobilenet_v2")["params"]]
    assert Fraction(by["flops"]["ratios_exact"][1]) == Fraction(exact("mobilenet_v2")["flops"], RESNET50_FLOPS)


def test_cli_eval_assume_and_leading():
    result = invoke(
        "eval", "resnet50", "--free", "N,H,W", "--assume", "H % 32 == 0", "--assume", "W % 32 == 0", "-f", "json"
    )
    assert result.exit_code == 0, result.output
    text = json.loads(result.stdout)["symbolic"]["flops"]
    names = _resnet_names()
    form = expr.parse(text, names)  # the safe parser, as the CLI reads expressions
    assert not form.atoms(sympy.floor)
    assert form.xreplace({names["N"]: 1, names["H"]: 224, names["W"]: 224}) == RESNET50_FLOPS
    assert (
        form.xreplace({names["N"]: 3, names["H"]: 320, names["W"]: 96}) == exact("resnet50", N=3, H=320, W=96)["flops"]
    )
    lead = invoke("eval", "gpt2", "--free", "S", "--leading", "S")
    assert lead.exit_code == 0, lead.output
    assert "36864*S**2" in lead.stdout  # 4*12*64*12 = 36,864: attention's S**2 coefficient at B=1


@pytest.mark.parametrize(
    "args, needle",
    [
        (["sweep", "resnet50", "--over", "H=32,64", "--metric", "flopz"], "unknown metric"),
        (["sweep", "resnet50", "--over", "H=32,64", "--metric", "latency"], "needs --device"),
        (["sweep", "resnet50", "--over", "H=5:1"], "empty"),
        (["sweep", "resnet50", "--over", "H"], "--over"),
        (["sweep", "resnet50", "--over", "Q=1,2"], "no variable"),
        (["sweep", "resnet50", "--over", "H=32", "-f", "xml"], "unknown format"),
        (["compare", "resnet50", "mobilenet_v2", "--assume", "H % 32 == 0"], "--free"),
        (["compare", "resnet50"], "at least two"),
        (["solve", "resnet50", "flops <= 10**10", "--for", "Q"], "no variable"),
        (["solve", "resnet50", "flops", "--for", "H"], "comparison"),
        (["solve", "resnet50", "__import__('os').system('true') <= 1", "--for", "H"], "not allowed"),
        (["solve", "resnet50", "latency <= 1*ms", "--for", "H"], "needs --device"),
        (["solve", "resnet50", "flops <= 10**10", "--for", "H", "--set", "H=3"], "conflicts"),
        (["eval", "resnet50", "--free", "H", "--assume", "H > 3"], "--assume"),
    ],
)
def test_cli_errors_are_one_line(args, needle):
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error:"), result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
