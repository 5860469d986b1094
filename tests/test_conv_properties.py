"""Algebraic properties of the convolution family, and its domain against real torch kernels.

``test_formula_twins.py`` checks each formula against FlopCounterMode point by point; these check
how the formulas relate to each other and to themselves (batch linearity, 1x1 conv = per-pixel
linear, depthwise = C single-channel convs, transposed conv = its adjoint conv), and that each
formula accepts exactly the attribute combinations that torch's CPU kernels accept, which the twin
test cannot see: the meta device skips torch's output_padding check.
"""

from __future__ import annotations

import math

import pytest
import sympy
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from symcost import formulas, registry
from symcost.errors import FormulaError

from .twins import build_twin, count, draw_values, evaluate_or_none

CONVS = ["conv1d", "conv2d", "conv3d"]
TRANSPOSED = ["conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
FAMILY = CONVS + TRANSPOSED

#: spatial shape symbols, and the suffixes of per-axis attribute symbols, by rank (1-D has no axes)
SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
SUFFIX = {1: ("",), 2: ("_h", "_w"), 3: ("_d", "_h", "_w")}


def _rank(name: str) -> int:
    return int(name[-2])


def _point(formula, data, **fixed):
    """A valid point drawn from the formula's test ranges, channels made divisible by groups.

    ``fixed`` pins values; a per-axis attribute name (``kernel=1``) pins every axis.
    """
    values = draw_values(formula, data)
    for key, value in fixed.items():
        names = formula.attributes[key].symbol_names if key in formula.attributes else (key,)
        for name in names:
            values[name] = value
    groups = values["groups"]
    for channels in ("C_in", "C_out"):
        if channels not in fixed:
            values[channels] = groups * data.draw(st.integers(1, 3), label=f"{channels}/groups")
    result = evaluate_or_none(formula, values)
    assume(result is not None)
    return values, result


def _cpu_forward(formula, values) -> tuple[int, ...]:
    """The output shape of the real CPU kernel (not the meta device) on a zero input."""
    _, inputs, module = build_twin(formula, values)
    module = module.to_empty(device="cpu")
    with torch.no_grad():
        return tuple(module(torch.zeros(inputs[0].shape)).shape)


# ---- batch and activation sizes -----------------------------------------------------------


@pytest.mark.parametrize("name", FAMILY)
@given(data=st.data(), k=st.integers(1, 4))
def test_costs_are_linear_in_batch(name, data, k):
    formula = registry.get(name)
    values, one = _point(formula, data, N=k)
    two = formula.evaluate(**(values | {"N": 2 * k}))
    assert one.macs > 0
    assert (two.macs, two.flops, two.write) == (2 * one.macs, 2 * one.flops, 2 * one.write)
    assert two.elementwise["bias"] == 2 * one.elementwise["bias"]
    # activations are read once per sample, the weights once per call
    assert two.read - two.params == 2 * (one.read - one.params)


@pytest.mark.parametrize("name", FAMILY)
@given(data=st.data())
def test_params_do_not_depend_on_activation_sizes(name, data):
    formula = registry.get(name)
    activation = ("N", *SPATIAL[_rank(name)])
    values, first = _point(formula, data)
    other = values | {s: data.draw(st.integers(1, 12), label=f"other {s}") for s in activation}
    second = evaluate_or_none(formula, other)
    assume(second is not None)
    assert second.params == first.params
    # the closed form holds no activation size at all, while the MACs do
    assert not {s.name for s in formula.params.free_symbols} & set(activation)
    assert set(activation) <= {s.name for s in formula.macs.free_symbols}


# ---- a conv that is something simpler ------------------------------------------------------


@pytest.mark.parametrize("name", FAMILY)
@given(data=st.data())
def test_pointwise_conv_is_a_per_pixel_linear(name, data):
    formula = registry.get(name)
    pointwise = {"kernel": 1, "stride": 1, "padding": 0, "groups": 1}
    if name in TRANSPOSED:
        pointwise["output_padding"] = 0
    values, conv = _point(formula, data, **pointwise)  # dilation stays drawn: it moves nothing at k=1
    spatial = tuple(values[s] for s in SPATIAL[_rank(name)])
    linear = formulas.linear.evaluate(
        batch=values["N"] * math.prod(spatial),
        in_features=values["C_in"],
        out_features=values["C_out"],
        bias=values["bias"],
    )
    assert conv.output_shape == (values["N"], values["C_out"], *spatial)
    assert (conv.macs, conv.flops, conv.params) == (linear.macs, linear.flops, linear.params)
    assert (conv.read, conv.write, conv.elementwise) == (linear.read, linear.write, linear.elementwise)


def test_pointwise_conv2d_is_linear_symbolically():
    conv = formulas.conv2d.bind(kernel=1, stride=1, padding=0, groups=1)
    s, lin = formulas.conv2d.symbols, formulas.linear
    pixels = {
        lin.symbols["batch"]: s["N"] * s["H"] * s["W"],
        lin.symbols["in_features"]: s["C_in"],
        lin.symbols["out_features"]: s["C_out"],
        lin.symbols["bias"]: s["bias"],
    }
    for key in ("macs", "params", "read", "write"):
        assert sympy.simplify(conv.costs[key] - lin.costs[key].xreplace(pixels)) == 0, key


@pytest.mark.parametrize("name", FAMILY)
@given(data=st.data(), channels=st.integers(1, 8))
def test_depthwise_conv_is_c_single_channel_convs(name, data, channels):
    formula = registry.get(name)
    values, depthwise = _point(formula, data, C_in=channels, C_out=channels, groups=channels)
    single = formula.evaluate(**(values | {"C_in": 1, "C_out": 1, "groups": 1}))
    for key in ("macs", "flops", "params", "read", "write"):
        assert getattr(depthwise, key) == channels * getattr(single, key), key
    assert depthwise.output_shape == (values["N"], channels, *single.output_shape[2:])


@pytest.mark.parametrize("name", FAMILY)
@given(data=st.data(), groups=st.integers(1, 4), a=st.integers(1, 3), b=st.integers(1, 3))
def test_grouped_conv_is_groups_separate_convs(name, data, groups, a, b):
    formula = registry.get(name)
    values, grouped = _point(formula, data, C_in=groups * a, C_out=groups * b, groups=groups)
    one = formula.evaluate(**(values | {"C_in": a, "C_out": b, "groups": 1}))
    for key in ("macs", "flops", "params", "read", "write"):
        assert getattr(grouped, key) == groups * getattr(one, key), key


# ---- transposed conv and its adjoint -------------------------------------------------------


def _adjoint(rank: int, values, transposed_result):
    """conv{rank}d from the transposed conv's output back to its input: same kernel, stride,
    padding, dilation and groups, channels swapped (the weight tensor is the same shape)."""
    adjoint = {"N": values["N"], "C_in": values["C_out"], "C_out": values["C_in"]}
    adjoint |= {"groups": values["groups"], "bias": values["bias"]}
    adjoint |= dict(zip(SPATIAL[rank], transposed_result.output_shape[2:]))
    for attr in ("kernel", "stride", "padding", "dilation"):
        for suffix in SUFFIX[rank]:
            adjoint[attr + suffix] = values[attr + suffix]
    return registry.get(f"conv{rank}d").evaluate(**adjoint)


@pytest.mark.parametrize("rank", [1, 2, 3])
@given(data=st.data())
def test_transposed_macs_equal_the_adjoint_conv(rank, data):
    # The duality holds exactly when output_padding < stride on every axis (output_padding 0
    # always): the adjoint conv's output size is then floor(((H-1)*s + op)/s) + 1 = H.
    transposed = registry.get(f"conv_transpose{rank}d")
    values, up = _point(transposed, data, output_padding=0)
    down = _adjoint(rank, values, up)
    spatial = tuple(values[s] for s in SPATIAL[rank])
    assert down.output_shape == (values["N"], values["C_in"], *spatial)
    assert (down.macs, down.flops) == (up.macs, up.flops)
    weights_up = up.params - values["bias"] * values["C_out"]
    weights_down = down.params - values["bias"] * values["C_in"]
    assert weights_up == weights_down


@pytest.mark.parametrize("rank", [1, 2, 3])
@given(data=st.data())
def test_adjoint_duality_breaks_when_output_padding_reaches_stride(rank, data):
    # torch allows output_padding >= stride when output_padding < dilation: the adjoint conv then
    # sees H + output_padding // stride rows, and counts that many more output positions.
    transposed = registry.get(f"conv_transpose{rank}d")
    suffix = data.draw(st.sampled_from(SUFFIX[rank]), label="axis")
    stride = data.draw(st.integers(1, 2), label="stride")
    output_padding = data.draw(st.integers(stride, stride + 1), label="output_padding")
    dilation = data.draw(st.integers(output_padding + 1, output_padding + 2), label="dilation")
    pinned = {"stride" + suffix: stride, "output_padding" + suffix: output_padding, "dilation" + suffix: dilation}
    values, up = _point(transposed, data)
    values |= pinned
    up = evaluate_or_none(transposed, values)
    assume(up is not None)
    down = _adjoint(rank, values, up)
    spatial = [values[s] for s in SPATIAL[rank]]
    seen = [size + values["output_padding" + sfx] // values["stride" + sfx] for size, sfx in zip(spatial, SUFFIX[rank])]
    assert list(down.output_shape[2:]) == seen
    assert down.macs * math.prod(spatial) == up.macs * math.prod(seen)
    assert down.macs > up.macs


def test_transposed_macs_are_counted_over_input_positions():
    f = formulas.conv_transpose2d
    s = f.symbols
    inputs = s["N"] * s["C_in"] * s["H"] * s["W"] * s["C_out"] / s["groups"] * s["kernel_h"] * s["kernel_w"]
    assert sympy.expand(f.macs - inputs) == 0
    geometry = {n for n in s if n.split("_")[0] in ("stride", "padding", "dilation", "output")}
    assert len(geometry) == 8
    assert not {x.name for x in f.macs.free_symbols} & geometry
    assert {"stride_h", "stride_w"} <= {x.name for x in formulas.conv2d.macs.free_symbols}
    # old thop counts output positions (pytorch-OpCounter#93); with kernel = stride and no padding
    # the output is H*s_h x W*s_w, so that count is stride_h*stride_w times too large
    b = f.bind(padding=0, dilation=1, output_padding=0)
    _, c_out, h_out, w_out = b.outputs["y"]
    thop = s["N"] * c_out * h_out * w_out * s["C_in"] / s["groups"] * s["kernel_h"] * s["kernel_w"]
    at_stride = {s["kernel_h"]: s["stride_h"], s["kernel_w"]: s["stride_w"]}
    ratio = sympy.simplify(thop.xreplace(at_stride) / b.costs["macs"].xreplace(at_stride))
    assert ratio == s["stride_h"] * s["stride_w"]


# ---- symbolic: conv1d in its length -------------------------------------------------------


@given(data=st.data())
def test_conv1d_macs_are_monotone_in_length(data):
    # With everything but L fixed, macs(L) is a closed form in L alone, with a floor. Writing
    # L = stride*q + r for each residue r removes the floor: each piece is linear in q with slope
    # one output position's MACs, and stepping L by one (r -> r+1, or r = stride-1 -> the next q)
    # adds that or nothing. A symbolic proof that macs never decreases in L, for every L.
    conv1d = formulas.conv1d
    values, _ = _point(conv1d, data)
    fixed = {k: v for k, v in values.items() if k != "L"}
    stride = values["stride"]
    L, q = conv1d.symbols["L"], sympy.Symbol("q", integer=True)
    macs = conv1d.bind(**fixed).costs["macs"]
    assert macs.free_symbols == {L}
    position = values["N"] * values["C_out"] * values["C_in"] // values["groups"] * values["kernel"]
    pieces = [sympy.expand(macs.xreplace({L: stride * q + r})) for r in range(stride)]
    for r, piece in enumerate(pieces):
        assert piece.is_polynomial(q) and sympy.diff(piece, q) == position
        step = sympy.expand(pieces[(r + 1) % stride].xreplace({q: q + (r + 1) // stride}) - piece)
        assert step in (0, position)
    if stride == 1:
        assert sympy.diff(macs, L) == position
    # the closed form is the one evaluate() uses, wherever L is valid
    valid = [n for n in range(1, 30) if evaluate_or_none(conv1d, fixed | {"L": n}) is not None]
    assert valid and valid == list(range(valid[0], 30)), "once valid, a longer input stays valid"
    for length in valid:
        assert macs.xreplace({L: length}) == conv1d.evaluate(**(fixed | {"L": length})).macs


# ---- the domain: what torch's CPU kernels accept --------------------------------------------


@pytest.mark.parametrize("name", FAMILY)
@given(data=st.data())
def test_formula_accepts_what_cpu_torch_accepts(name, data):
    formula = registry.get(name)
    values = draw_values(formula, data)
    ours = evaluate_or_none(formula, values)
    try:
        shape = _cpu_forward(formula, values)
    except (RuntimeError, ValueError):
        shape = None
    if ours is not None:
        assert shape == ours.output_shape, f"torch refused or disagreed at {values}"
    elif shape is not None:
        # the one documented difference: torch's oneDNN path returns an empty tensor for an
        # output size of exactly 0, where its native kernels raise; a formula needs sizes >= 1
        assert name in TRANSPOSED and 0 in shape, f"torch accepted {values} (shape {shape})"


@pytest.mark.parametrize("name", TRANSPOSED)
@given(data=st.data())
def test_output_padding_must_be_below_stride_or_dilation(name, data):
    formula = registry.get(name)
    values, _ = _point(formula, data)
    suffix = data.draw(st.sampled_from(SUFFIX[_rank(name)]), label="axis")
    limit = max(values["stride" + suffix], values["dilation" + suffix])
    bad = values | {"output_padding" + suffix: data.draw(st.integers(limit, limit + 2), label="output_padding")}
    with pytest.raises(FormulaError, match="smaller than either stride or dilation"):
        formula.evaluate(**bad)
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride or dilation"):
        _cpu_forward(formula, bad)
    edge = values | {"output_padding" + suffix: limit - 1}  # the largest accepted value
    assert _cpu_forward(formula, edge) == formula.evaluate(**edge).output_shape


# ---- the worked examples, against torch ----------------------------------------------------


@pytest.mark.parametrize(("name", "index"), [(n, i) for n in FAMILY for i in range(len(registry.get(n).examples))])
def test_examples_match_torch(name, index):
    formula = registry.get(name)
    example = formula.examples[index]
    ours = formula.evaluate(**example.values)
    fn, inputs, module = build_twin(formula, ours.values)
    torch_flops, outputs = count(fn, inputs)
    assert ours.flops == torch_flops == example.expect["flops"]
    assert ours.params == sum(p.numel() for p in module.parameters()) == example.expect["params"]
    assert ours.output_shape == tuple(outputs[0].shape)
