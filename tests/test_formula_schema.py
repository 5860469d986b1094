"""Formula files that break the schema, and values that break a formula, give located errors."""

from __future__ import annotations

import textwrap

import pytest
import sympy

from symcost import formulas, registry
from symcost.errors import FormulaError, SymcostError
from symcost.formula import load
from symcost.yamlio import load_text

GOOD = """\
name: tiny
summary: a tiny formula
symbols:
  N: {doc: batch, test: [1, 4]}
attributes:
  k: {type: int, doc: width, test: [1, 4]}
inputs:
  x: [N]
outputs:
  y: [N*k]
costs:
  macs: N*k
  params: k
  read: N
  write: N*k
no_torch_twin: a test formula
"""


def _load(text: str, name: str = "tiny.yaml"):
    return load(load_text(textwrap.dedent(text), name), name)


def test_good_formula_loads_and_evaluates():
    formula = _load(GOOD)
    result = formula.evaluate(N=3, k=2)
    assert (result.macs, result.flops, result.params, result.outputs["y"]) == (6, 12, 2, (6,))


@pytest.mark.parametrize(
    ("old", "new", "needle", "line"),
    [
        ("summary: a tiny formula", "sumary: a tiny formula", "did you mean 'summary'", 2),
        ("  macs: N*k", "  macs: N*kk", "unknown name 'kk'", 12),
        ("  macs: N*k", "  macs: N*k.real", "attribute access", 12),
        ("  macs: N*k", "  flops: N*k", "unknown key 'flops'", 12),
        ("{type: int, doc: width", "{type: float, doc: width", "type must be int or bool", 6),
        ("  N: {doc: batch, test: [1, 4]}", "  N: {doc: batch}", "test: [low, high]", 4),
        ("  N: {doc: batch, test: [1, 4]}", "  N: {doc: batch, test: [0, 4]}", "within the domain", 4),
        ("no_torch_twin: a test formula", "", "no_torch_twin", 1),
        ("name: tiny", "name: other", "file named other.yaml", 1),
        ("  x: [N]", "  x: []", "non-empty list", 8),
        ("  y: [N*k]", "  y: [N*k, '*q']", "declared symbol", 10),
    ],
)
def test_schema_errors_are_located(old, new, needle, line):
    text = GOOD.replace(old, new)
    assert text != GOOD
    with pytest.raises(SymcostError) as caught:
        _load(text)
    assert needle in str(caught.value)
    assert caught.value.loc is not None and caught.value.loc.file == "tiny.yaml"
    assert caught.value.loc.line == line


CONV = dict(N=1, C_in=4, H=8, W=8, C_out=4, kernel=3)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"kernel": 11}, "kernel (with dilation) is taller|dilated kernel is taller"),
        ({"groups": 3}, "groups must divide the input channels"),
        ({"H": 0}, "size .H. must be >= 1, got 0"),
        ({"C_in": -2}, "must be >= 1, got -2"),
        ({"kernel": True}, "must be a whole number, got the bool true"),
        ({"bias": 7}, "must be true or false"),
        ({"stride": 0}, r"attribute 'stride' \(stride_h\) must be >= 1, got 0"),
        ({"padding": -1}, r"attribute 'padding' \(padding_h\) must be >= 0, got -1"),
        ({"kernel": (3, 3, 3)}, "takes 2 values"),
        ({"kernal": 3}, "did you mean 'kernel'"),
    ],
)
def test_bad_values_name_the_formula_and_attribute(change, needle):
    with pytest.raises(FormulaError, match=needle) as caught:
        formulas.conv2d.evaluate(**(CONV | change))
    assert str(caught.value).startswith("conv2d: ")


def test_missing_values_are_listed_with_their_meaning():
    with pytest.raises(FormulaError, match=r"missing value for C_out \(output channels\)"):
        formulas.conv2d.evaluate(N=1, C_in=3, H=8, W=8, kernel=3)


def test_unknown_formula_suggests_nearest():
    with pytest.raises(FormulaError, match="did you mean 'conv2d'"):
        registry.get("conv2")


def test_per_axis_forms_agree():
    a = formulas.conv2d.evaluate(**(CONV | {"kernel": (3, 1)}))
    b = formulas.conv2d.evaluate(N=1, C_in=4, H=8, W=8, C_out=4, kernel_h=3, kernel_w=1)
    assert a == b
    assert a.macs == 1 * 4 * 6 * 8 * 4 * 3 * 1  # N*C_out*H_out*W_out*C_in*kh*kw


def test_expressions_are_sympy_in_named_symbols():
    conv = formulas.conv2d
    s = conv.symbols
    # Derivative of MACs in C_out is MACs / C_out: the expression is a real sympy object.
    assert sympy.simplify(sympy.diff(conv.macs, s["C_out"]) * s["C_out"] - conv.macs) == 0
    # Solving the linear layer's params for out_features.
    lin = formulas.linear
    out = lin.symbols["out_features"]
    solved = sympy.solve(
        sympy.Eq(lin.params.subs({lin.symbols["in_features"]: 100, lin.symbols["bias"]: 1}), 5050), out
    )
    assert solved == [50]


def test_user_formula_folder_takes_precedence(tmp_path, monkeypatch):
    (tmp_path / "tiny.yaml").write_text(GOOD)
    monkeypatch.setenv("SYMCOST_FORMULA_PATH", str(tmp_path))
    assert registry.get("tiny").evaluate(N=2, k=5).macs == 10
    assert "tiny" in registry.names()


@pytest.mark.parametrize(
    ("setting", "written", "message"),
    [
        ({"kernel": 0}, "kernel: 0", "attribute 'kernel' (kernel_h) must be >= 1, got 0"),
        ({"kernel": True}, "kernel: true", "attribute 'kernel' must be a whole number, got the bool true"),
        ({"bias": 7}, "kernel: 3, bias: 7", "attribute 'bias' must be true or false, got 7"),
    ],
)
def test_one_binder_says_the_same_in_derive_and_in_an_architecture(setting, written, message):
    """Formula.normalize_values binds attributes for `derive --set` and for a layer alike."""
    from symcost.arch import load_text as load_arch
    from symcost.shapes import build

    values = {"N": 1, "C_in": 3, "H": 8, "W": 8, "C_out": 4, "kernel": 3, **setting}
    with pytest.raises(FormulaError) as derived:
        registry.get("conv2d").evaluate(**values)
    text = f"name: t\nsummary: t\ninputs: {{x: [1, 3, 8, 8]}}\nlayers:\n  - {{op: conv2d, C_out: 4, {written}}}\n"
    with pytest.raises(SymcostError) as built:
        build(load_arch(text, "t.yaml"))
    assert derived.value.message == f"conv2d: {message}"
    assert built.value.message == f"layer 'conv2d' (conv2d): {message}"
