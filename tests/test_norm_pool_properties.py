"""Algebraic properties of the normalization and pooling formulas, which FlopCounterMode counts as 0.

The twin test (``test_formula_twins.py``) pins their parameters, buffers and output shapes to
torch's at points the formulas accept. Here: the points they refuse are exactly the ones torch
refuses; costs scale with the batch; parameters never depend on activation sizes; pooling
formulas that describe the same windows agree; adaptive window counts match a brute-force sum;
and every worked example gives its numbers.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from symcost import cost, registry
from symcost.formula import Evaluation

from .twins import build_twin, count, draw_values, evaluate_or_none

NORMS = [
    "batchnorm1d", "batchnorm2d", "batchnorm3d", "instancenorm1d", "instancenorm2d", "instancenorm3d",
    "layernorm", "groupnorm", "rmsnorm",
]  # fmt: skip
POOLS = [
    "maxpool1d", "maxpool2d", "maxpool3d", "avgpool1d", "avgpool2d", "avgpool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool2d",
    "global_avg_pool2d",
]  # fmt: skip
ALL = NORMS + POOLS
RUNNING_STATS = ["batchnorm1d", "batchnorm2d", "batchnorm3d", "instancenorm1d", "instancenorm2d", "instancenorm3d"]
AFFINE = {name: "affine" for name in [*RUNNING_STATS, "groupnorm"]} | {
    "layernorm": "elementwise_affine",
    "rmsnorm": "elementwise_affine",
}
# Symbols that are activation sizes (the batch and the spatial extent), never parameter sizes.
# (layernorm's and rmsnorm's D is the feature size their weight has; 3-D formulas' D is a depth.)
ACTIVATION_SIZES = {"N", "batch", "L", "D", "H", "W", "spatial"}
SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _batch_symbol(name: str) -> str:
    return "batch" if name in ("layernorm", "rmsnorm") else "N"


def _counts(e: Evaluation) -> dict[str, int]:
    """Every count of an evaluation: the costs, flops, and each elementwise category."""
    return {
        "macs": e.macs,
        "flops": e.flops,
        "params": e.params,
        "buffers": e.buffers,
        "read": e.read,
        "write": e.write,
        **{f"elementwise.{k}": v for k, v in e.elementwise.items()},
    }


def _valid(name: str, data: st.DataObject) -> tuple[dict, Evaluation]:
    formula = registry.get(name)
    values = draw_values(formula, data)
    ours = evaluate_or_none(formula, values)
    assume(ours is not None)
    return values, ours


def test_the_family_is_complete():
    for name in ALL:
        assert registry.get(name).torch is not None, name


@pytest.mark.parametrize("name", ALL)
@given(data=st.data())
def test_refuses_exactly_what_torch_refuses(name, data):
    """The twin test only visits accepted points; here a refused point must make torch raise too."""
    formula = registry.get(name)
    values = draw_values(formula, data)
    ours = evaluate_or_none(formula, values)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn, inputs, _ = build_twin(formula, values)
            _, outputs = count(fn, inputs)
        theirs = tuple(outputs[0].shape)
    except (RuntimeError, ValueError) as exc:
        assert ours is None, f"{name} accepts {values} but torch raises: {exc}"
        return
    assert ours is not None, f"{name} refuses {values} but torch gives {theirs}"
    assert ours.output_shape == theirs


@pytest.mark.parametrize("name", ALL)
@given(data=st.data())
def test_costs_are_linear_in_the_batch(name, data):
    """Activation counts scale with the batch; parameters and buffers do not move; read is affine."""
    values, one = _valid(name, data)
    batch = _batch_symbol(name)
    formula = registry.get(name)
    two = formula.evaluate(**(values | {batch: 2 * values[batch]}))
    three = formula.evaluate(**(values | {batch: 3 * values[batch]}))
    c1, c2, c3 = _counts(one), _counts(two), _counts(three)
    assert c1.keys() == c2.keys() == c3.keys()
    for key in c1:
        assert c3[key] - c2[key] == c2[key] - c1[key], f"{name} {key} is not affine in {batch}"
        if key in ("params", "buffers"):
            assert c1[key] == c2[key], f"{name} {key} depends on {batch}"
        elif key not in ("read", "write"):
            assert c2[key] == 2 * c1[key], f"{name} {key} is not proportional to {batch}"
    # read holds the parameters and the running statistics used, once; write the statistics updated
    fixed_read = c1["read"] - (c2["read"] - c1["read"])
    fixed_write = c1["write"] - (c2["write"] - c1["write"])
    assert one.params <= fixed_read <= one.params + one.buffers, f"{name} read's batch-free part"
    assert 0 <= fixed_write <= one.buffers, f"{name} write's batch-free part"
    if not values.get("training"):
        assert fixed_write == 0, f"{name} writes state in inference"
    assert two.output_shape[0] == 2 * one.output_shape[0]


@pytest.mark.parametrize("name", ALL)
def test_params_and_buffers_are_free_of_activation_sizes(name):
    formula = registry.get(name)
    for key in ("params", "buffers"):
        used = {s.name for s in formula.costs[key].free_symbols}
        activation = {"batch"} if name in ("layernorm", "rmsnorm") else ACTIVATION_SIZES
        assert not used & activation, f"{name} {key} uses {sorted(used & activation)}"
    if name in POOLS:
        assert formula.params == 0 and formula.buffers == 0


@pytest.mark.parametrize("name", sorted(AFFINE))
@given(data=st.data())
def test_no_affine_means_no_parameters(name, data):
    formula = registry.get(name)
    values = draw_values(formula, data) | {AFFINE[name]: False}
    ours = evaluate_or_none(formula, values)
    assume(ours is not None)
    assert ours.params == 0
    elements = math.prod(ours.output_shape)
    per_element = 1 if name == "rmsnorm" else 2  # normalize only: 1/rms, or minus mean and 1/std
    assert ours.elementwise["norm"] == per_element * elements
    assert elements <= ours.read <= elements + ours.buffers  # x, and at most the running statistics


@pytest.mark.parametrize("name", sorted(AFFINE))
@given(data=st.data())
def test_affine_norm_costs_four_per_element_with_torch_defaults(name, data):
    """The norm category: 2 to normalize, +2 scale and shift (RMSNorm: 1, +1 scale; no bias)."""
    formula = registry.get(name)
    values = draw_values(formula, data) | {AFFINE[name]: True}
    if "bias" in formula.attributes:
        values["bias"] = True
    ours = evaluate_or_none(formula, values)
    assume(ours is not None)
    elements = math.prod(ours.output_shape)
    assert ours.elementwise["norm"] == (2 if name == "rmsnorm" else 4) * elements
    channels = values["C"] if "C" in values else values["D"]
    assert ours.params == (1 if name == "rmsnorm" else 2) * channels


@given(data=st.data())
def test_the_users_batchnorm_rule(data):
    """BN FLOPs = 4 x elements and params = 2*C, once norm is folded into flops."""
    values, ours = _valid("batchnorm2d", data)
    values |= {"affine": True}
    convention = cost.TORCH.with_elementwise({"norm"})
    folded = registry.get("batchnorm2d").evaluate(convention, **values)
    assert folded.flops == 4 * values["N"] * values["C"] * values["H"] * values["W"]
    assert folded.params == 2 * values["C"]
    assert ours.flops == 0  # FlopCounterMode's count


@pytest.mark.parametrize("name", RUNNING_STATS)
@given(data=st.data())
def test_running_stats_are_2c_plus_1_buffers(name, data):
    values, ours = _valid(name, data)
    expected = 2 * values["C"] + 1 if values["track_running_stats"] else 0
    assert ours.buffers == expected
    # num_batches_tracked is a buffer but never a parameter
    assert ours.params == (2 * values["C"] if values["affine"] else 0)


@pytest.mark.parametrize("name", RUNNING_STATS)
@given(data=st.data())
def test_state_written_is_what_torch_updates(name, data):
    """write beyond the output = the buffer elements a real forward changes (CPU, random input).

    BatchNorm in training updates running_mean, running_var and num_batches_tracked (2*C + 1);
    InstanceNorm updates its running statistics but never num_batches_tracked (2*C); eval updates none.
    """
    values, ours = _valid(name, data)
    dims = int(name[-2])
    module_name = ("BatchNorm" if name.startswith("batch") else "InstanceNorm") + f"{dims}d"
    module = getattr(torch.nn, module_name)(
        values["C"], affine=bool(values["affine"]), track_running_stats=bool(values["track_running_stats"])
    )
    module.train(bool(values["training"]))
    before = {k: b.clone() for k, b in module.named_buffers()}
    generator = torch.Generator().manual_seed(0)
    shape = (values["N"], values["C"], *(values[a] for a in SPATIAL[dims]))
    module(torch.randn(shape, generator=generator))
    changed = sum(int(torch.ne(b, before[k]).sum()) for k, b in module.named_buffers())
    assert ours.write - math.prod(ours.output_shape) == changed


@given(data=st.data())
def test_global_average_pool_is_adaptive_pool_to_1x1(data):
    values, glob = _valid("global_avg_pool2d", data)
    adaptive = registry.get("adaptive_avg_pool2d").evaluate(**values, output_size=1)
    assert glob.outputs["y"] == adaptive.outputs["y"]
    assert _counts(glob) == _counts(adaptive)


@pytest.mark.parametrize("dims", [1, 2, 3])
@given(data=st.data())
def test_avgpool_with_tiling_kernel_is_adaptive_avgpool(dims, data):
    """kernel = stride dividing the input, no padding: both pool the same disjoint windows."""
    kernel = [data.draw(st.integers(1, 4), label=f"kernel{i}") for i in range(dims)]
    outs = [data.draw(st.integers(1, 4), label=f"out{i}") for i in range(dims)]
    values = {"N": data.draw(st.integers(1, 3), label="N"), "C": data.draw(st.integers(1, 8), label="C")}
    values |= {axis: k * o for axis, k, o in zip(SPATIAL[dims], kernel, outs)}
    ceil_mode = data.draw(st.booleans(), label="ceil_mode")
    per_axis = (lambda v: v[0]) if dims == 1 else tuple  # 1-D attributes have no axes
    avg = registry.get(f"avgpool{dims}d").evaluate(**values, kernel=per_axis(kernel), ceil_mode=ceil_mode)
    adaptive = registry.get(f"adaptive_avg_pool{dims}d").evaluate(**values, output_size=per_axis(outs))
    assert avg.outputs["y"] == adaptive.outputs["y"]
    assert _counts(avg) == _counts(adaptive)


@given(data=st.data())
def test_maxpool_with_tiling_kernel_is_adaptive_maxpool(data):
    kernel = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    outs = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    values = {"N": data.draw(st.integers(1, 3)), "C": data.draw(st.integers(1, 8))}
    values |= {"H": kernel[0] * outs[0], "W": kernel[1] * outs[1]}
    mx = registry.get("maxpool2d").evaluate(**values, kernel=kernel)
    adaptive = registry.get("adaptive_max_pool2d").evaluate(**values, output_size=outs)
    assert mx.outputs["y"] == adaptive.outputs["y"]
    assert _counts(mx) == _counts(adaptive)


def _window_sum(size: int, out: int) -> int:
    """Total length of the adaptive windows along one axis, by brute force (ATen's start/end index)."""
    return sum(-((-(i + 1) * size) // out) - (i * size) // out for i in range(out))


@pytest.mark.parametrize(
    "name", ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool2d"]
)
@given(data=st.data())
def test_adaptive_window_count_matches_brute_force(name, data):
    values, ours = _valid(name, data)
    dims = len(ours.output_shape) - 2
    sizes = [values[axis] for axis in SPATIAL[dims]]
    outs = list(ours.output_shape[2:])
    brute = [_window_sum(s, o) for s, o in zip(sizes, outs)]
    for s, o, b in zip(sizes, outs, brute):
        assert b == s + o - math.gcd(s, o)  # the identity the formulas state
    per_plane = math.prod(brute) + (math.prod(outs) if "avg" in name else 0)
    assert ours.elementwise["pool"] == values["N"] * values["C"] * per_plane


@pytest.mark.parametrize(("size", "out"), [(10, 6), (21, 15), (10, 4), (13, 6), (7, 7), (6, 10), (1, 5)])
def test_adaptive_window_sum_is_exact_where_gcd_is_not_trivial(size, out):
    """S = 10, O = 6 has gcd 2, which is neither 1, O nor S % O: 14 window elements, exactly."""
    ours = registry.get("adaptive_avg_pool1d").evaluate(N=1, C=1, L=size, output_size=out)
    assert ours.elementwise["pool"] - out == _window_sum(size, out)


@pytest.mark.parametrize("name", ALL)
def test_worked_examples(name):
    """Each example's expect: cost names and flops, or an elementwise category's count."""
    formula = registry.get(name)
    assert formula.examples, f"{name} has no worked example"
    for example in formula.examples:
        ours = formula.evaluate(**example.values)
        for key, value in example.expect.items():
            if key in cost.ELEMENTWISE_CATEGORIES:
                got = ours.elementwise[key]
            else:
                assert key in ("macs", "flops", "params", "buffers", "read", "write"), key
                got = getattr(ours, key)
            assert got == value, f"{name} {example.values}: {key} = {got}, expected {value}"
