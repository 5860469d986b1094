"""Properties of the activation, elementwise, embedding and shape formulas.

FlopCounterMode counts every one of these as 0 FLOPs, so the twin test can only check their
parameters and output shapes at single-dim ``*name`` points. Here: the algebra of their counts
(linear in the element count, read twice the write for a binary op, ...), their variadic dims
against torch at multi-dim shapes, and the "a view moves nothing" claims against torch's own
aliasing. Their worked examples are checked by tests/test_examples.py.
"""

from __future__ import annotations

import math

import pytest
import sympy
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from symcost import cost, registry
from symcost.errors import FormulaError

from .twins import BUILDERS

#: the activations of one input, any shape (``*numel``), 1 'activation' per element
ACTIVATIONS = [
    *("relu", "relu6", "gelu", "gelu_tanh", "quick_gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid"),
    *("leaky_relu", "rrelu", "elu", "selu", "celu", "mish", "softplus", "softsign", "logsigmoid", "hardtanh"),
    *("hardshrink", "softshrink", "tanhshrink", "threshold"),
]
SOFTMAXES = ["softmax", "log_softmax", "softmin", "softmax2d"]
VIEWS = ["identity", "flatten", "reshape", "transpose", "permute"]
# add, mul, concat and the shape ops take their shapes from a shape rule: tests/test_shape_ops.py
# checks them against torch through architectures.
MINE = [
    *ACTIVATIONS,
    *SOFTMAXES,
    "glu",
    "prelu",
    "dropout",
    "embedding",
    "upsample_nearest2d",
    "upsample_bilinear2d",
    *VIEWS,
]
ALL_ELEMENTWISE = cost.TORCH.with_elementwise(cost.ELEMENTWISE_CATEGORIES)

sizes = st.integers(1, 64)
small = st.integers(1, 6)
#: concrete dims for a ``*name``: zero to three dims (zero dims have product 1)
dims = st.lists(small, min_size=0, max_size=3)


def evaluate(name: str, **values):
    return registry.get(name).evaluate(**values)


def costs(ev) -> dict[str, int]:
    """Every count of an evaluation, elementwise categories included, in one flat dict."""
    return {
        "macs": ev.macs,
        "flops": ev.flops,
        "params": ev.params,
        "buffers": ev.buffers,
        "read": ev.read,
        "write": ev.write,
        **{f"elementwise.{k}": v for k, v in ev.elementwise.items()},
    }


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


# ---- every formula of this family ------------------------------------------------------------


@pytest.mark.parametrize("name", MINE)
def test_zero_flops_and_no_macs(name):
    """FlopCounterMode's rule: none of these is a matmul, conv or attention."""
    formula = registry.get(name)
    assert formula.macs == 0
    assert formula.flops == 0
    # folding every elementwise category in gives exactly their sum
    assert sympy.expand(formula.flops_under(ALL_ELEMENTWISE) - cost.elementwise_total(formula.elementwise)) == 0


@pytest.mark.parametrize("name", [n for n in MINE if n not in ("embedding", "prelu")])
def test_no_parameters_or_buffers(name):
    formula = registry.get(name)
    assert formula.params == 0
    assert formula.buffers == 0


# ---- activations -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(n=sizes, k=st.integers(1, 8))
def test_activation_costs_are_linear_in_the_element_count(name, n, k):
    one, many = costs(evaluate(name, numel=n)), costs(evaluate(name, numel=k * n))
    assert many == {key: k * value for key, value in one.items()}
    assert one["read"] == one["write"] == one["elementwise.activation"] == n


@pytest.mark.parametrize("name", [*ACTIVATIONS, "dropout"])
def test_symbolic_costs_are_homogeneous_linear(name):
    """Each closed form is c * numel: zero at numel = 0, second derivative 0."""
    formula = registry.get(name)
    numel = formula.symbols["numel"]
    for key, expression in [*formula.costs.items(), *formula.elementwise.items()]:
        assert expression.xreplace({numel: 0}) == 0, f"{name} {key}"
        assert sympy.diff(expression, numel, 2) == 0, f"{name} {key}"


def _function(name: str):
    """The formula's torch twin as a function of its input tensors: its builder's callable, or its function with
    the twin's args (F.threshold needs threshold and value)."""
    twin = registry.get(name).torch
    if twin.builder:
        return BUILDERS[twin.builder]({"numel": 1, "_args": {}})[0]
    function = getattr(F, twin.function) if hasattr(F, twin.function) else getattr(torch, twin.function)
    args = {key: int(value) for key, value in twin.args.items()}
    return lambda *tensors: function(*tensors, **args)


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(shape=dims)
def test_activation_numel_is_any_shape(name, shape):
    """``*numel`` stands for any dims: torch keeps the shape, and the element counts agree."""
    numel = math.prod(shape)
    out = _function(name)(meta(*shape))
    assert tuple(out.shape) == tuple(shape)
    assert math.prod(evaluate(name, numel=numel).output_shape) == out.numel()


# ---- softmax, dropout, add, mul --------------------------------------------------------------


@given(batch_dims=dims, s=st.integers(1, 32))
def test_softmax_is_three_per_element_over_any_leading_dims(batch_dims, s):
    batch = math.prod(batch_dims)
    ev = evaluate("softmax", batch=batch, S=s)
    assert ev.elementwise["softmax"] == 3 * ev.read == 3 * ev.write == 3 * batch * s
    # thop's calculate_softmax counts 3*S - 1 per row: symcost's is exactly batch more (the notes say so)
    assert ev.elementwise["softmax"] - batch * (3 * s - 1) == batch
    out = F.softmax(meta(*batch_dims, s), dim=-1)
    assert math.prod(out.shape[:-1]) == ev.output_shape[0] and out.shape[-1] == ev.output_shape[-1]


@pytest.mark.parametrize("name", ["log_softmax", "softmin"])
@given(batch_dims=dims, s=st.integers(1, 32))
def test_log_softmax_and_softmin_cost_what_softmax_costs(name, batch_dims, s):
    """Both are a softmax with one per-element step changed (subtract the log-sum; negate the input first)."""
    batch = math.prod(batch_dims)
    assert costs(evaluate(name, batch=batch, S=s)) == costs(evaluate("softmax", batch=batch, S=s))
    out = _function(name)(meta(*batch_dims, s))
    assert tuple(out.shape) == (*batch_dims, s)


@given(n=small, c=st.integers(1, 32), h=small, w=small)
def test_softmax2d_is_softmax_over_the_channels(n, c, h, w):
    """Softmax2d is softmax with S = C and batch = N*H*W: the same counts, and torch's values equal."""
    ev = evaluate("softmax2d", N=n, C=c, H=h, W=w)
    assert costs(ev) == costs(evaluate("softmax", batch=n * h * w, S=c))
    x = torch.randn(n, c, h, w)
    assert torch.allclose(torch.nn.Softmax2d()(x), F.softmax(x.permute(0, 2, 3, 1), dim=-1).permute(0, 3, 1, 2))


@given(lead_dims=dims, d=st.integers(1, 16))
def test_glu_halves_the_last_dim_and_reads_twice_what_it_writes(lead_dims, d):
    lead = math.prod(lead_dims)
    ev = evaluate("glu", lead=lead, D_in=2 * d)
    assert ev.output_shape == (lead, d)
    assert ev.read == 2 * ev.write == 2 * ev.elementwise["activation"] == 2 * lead * d
    out = F.glu(meta(*lead_dims, 2 * d), dim=-1)
    assert tuple(out.shape) == (*lead_dims, d)


@given(lead=st.integers(1, 8), d=st.integers(0, 16))
def test_glu_refuses_an_odd_dim_as_torch_does(lead, d):
    with pytest.raises(FormulaError, match="must be even"):
        evaluate("glu", lead=lead, D_in=2 * d + 1)
    with pytest.raises(RuntimeError, match="must be even"):
        F.glu(meta(lead, 2 * d + 1), dim=-1)


@given(n=small, c=st.integers(1, 8), rest_dims=dims, num_parameters=st.integers(1, 8))
def test_prelu_accepts_the_slope_counts_torch_accepts(n, c, rest_dims, num_parameters):
    """num_parameters is 1 or C, torch's channel dim 1, at any number of dims after C."""
    module = torch.nn.PReLU(num_parameters, device="meta")
    try:
        out = module(meta(n, c, *rest_dims))
    except RuntimeError:
        out = None
    try:
        ev = evaluate("prelu", N=n, C=c, rest=math.prod(rest_dims), num_parameters=num_parameters)
    except FormulaError:
        ev = None
    assert (out is None) == (ev is None) == (num_parameters not in (1, c))
    if ev is not None:
        assert ev.params == num_parameters == sum(p.numel() for p in module.parameters())
        assert ev.write == ev.elementwise["activation"] == out.numel() == ev.read - num_parameters


@pytest.mark.parametrize("preset", ["torch", "thop", "ptflops", "fvcore"])
@given(n=sizes)
def test_gelu_tanh_counts_as_gelu(preset, n):
    """The tanh approximation is the erf form's count under every convention: only the function differs."""
    convention = cost.preset(preset)
    erf, tanh = (registry.get(name).evaluate(convention, numel=n) for name in ("gelu", "gelu_tanh"))
    assert costs(erf) == costs(tanh)


@given(n=sizes)
def test_dropout_is_free_in_inference_and_two_multiplies_in_training(n):
    inference = costs(evaluate("dropout", numel=n))
    assert inference == costs(evaluate("identity", numel=n)) | {"elementwise.mul": 0}
    training = evaluate("dropout", numel=n, training=True)
    assert training.read == training.write == n
    assert training.elementwise["mul"] == 2 * n


def test_dropout_and_identity_return_their_input_in_inference():
    """The 0 traffic of inference dropout and nn.Identity: torch hands back the same tensor."""
    x = torch.ones(3, 4)
    assert F.dropout(x, p=0.5, training=False) is x
    assert torch.nn.Dropout(p=0.5).eval()(x) is x
    assert torch.nn.Identity()(x) is x
    assert F.dropout(x, p=0.5, training=True) is not x  # training allocates an output


# ---- embedding -------------------------------------------------------------------------------


@given(b1=st.integers(1, 64), b2=st.integers(1, 64), vocab=st.integers(1, 100), d=st.integers(1, 16))
def test_embedding_params_do_not_depend_on_the_batch(b1, b2, vocab, d):
    one = evaluate("embedding", batch=b1, num_embeddings=vocab, embedding_dim=d)
    two = evaluate("embedding", batch=b2, num_embeddings=vocab, embedding_dim=d)
    assert one.params == two.params == vocab * d
    # traffic, though, is per id and never touches the rest of the table
    assert one.write == b1 * d and one.read == one.write + b1
    bigger = evaluate("embedding", batch=b1, num_embeddings=vocab + 1, embedding_dim=d)
    assert (bigger.read, bigger.write) == (one.read, one.write)


def test_embedding_params_are_free_of_batch_symbolically():
    formula = registry.get("embedding")
    assert sympy.diff(formula.params, formula.symbols["batch"]) == 0
    assert sympy.diff(formula.write, formula.symbols["num_embeddings"]) == 0


@given(id_dims=dims, vocab=st.integers(1, 20), d=st.integers(1, 8))
def test_embedding_appends_one_dim_to_any_ids_shape(id_dims, vocab, d):
    module = torch.nn.Embedding(vocab, d, device="meta")
    out = module(meta(*id_dims, dtype=torch.long))
    ev = evaluate("embedding", batch=math.prod(id_dims), num_embeddings=vocab, embedding_dim=d)
    assert tuple(out.shape) == (*id_dims, d)
    assert out.numel() == ev.write and ev.params == sum(p.numel() for p in module.parameters())


# ---- views -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VIEWS)
def test_views_move_nothing(name):
    formula = registry.get(name)
    assert formula.read == 0 and formula.write == 0 and not formula.elementwise


# ---- upsampling ------------------------------------------------------------------------------

UPSAMPLES = {"upsample_nearest2d": 0, "upsample_bilinear2d": 11}  # interpolate ops per output element


@pytest.mark.parametrize("name", UPSAMPLES)
@given(n=small, c=small, h=st.integers(1, 12), w=st.integers(1, 12), sh=st.integers(1, 4), sw=st.integers(1, 4))
def test_upsample_output_is_input_times_both_scales(name, n, c, h, w, sh, sw):
    ev = evaluate(name, N=n, C=c, H=h, W=w, scale_factor=(sh, sw))
    assert ev.output_shape == (n, c, h * sh, w * sw)
    assert ev.write == ev.read * sh * sw == math.prod(ev.output_shape)
    assert ev.elementwise["interpolate"] == UPSAMPLES[name] * ev.write
    if sh == sw == 1:
        assert ev.output_shape == (n, c, h, w)


@given(n=small, c=small, h=st.integers(1, 12), w=st.integers(1, 12), sh=st.integers(1, 4), sw=st.integers(1, 4))
def test_bilinear_counts_do_not_depend_on_align_corners(n, c, h, w, sh, sw):
    values = {"N": n, "C": c, "H": h, "W": w, "scale_factor": (sh, sw)}
    off = evaluate("upsample_bilinear2d", **values, align_corners=False)
    on = evaluate("upsample_bilinear2d", **values, align_corners=True)
    assert costs(off) == costs(on) and off.outputs == on.outputs
    # and bilinear moves exactly what nearest moves
    nearest = evaluate("upsample_nearest2d", **values)
    assert (nearest.read, nearest.write, nearest.outputs) == (off.read, off.write, off.outputs)
