"""Properties of the matmul, attention and recurrent formulas, each of which a wrong formula fails.

- sdpa: MACs depend on the query heads, never on the KV heads (GQA/MQA/MHA); exact causal counts are
  at most the full square, equal it at S_q = 1, are S(S + 1)/2 pairs at S_q = S_kv = S, and are the sum
  of S_q decode steps; the exact-causal twin computes the same attention as the masked kernel.
- multi_head_attention: its MACs and params are its four ``linear`` projections plus ``sdpa``; it
  equals torch.nn.MultiheadAttention (FlopCounterMode FLOPs and params) where the two coincide; with a
  KV cache of ``past`` tokens its twin counts the formula's FLOPs, holds ``cache`` elements and computes
  the last rows of the uncached causal layer over all past + S tokens.
- lstm/gru: params equal nn.LSTM/nn.GRU's; an unrolled cell built from F.linear, numerically equal
  to torch's module, counts the formula's FLOPs and its documented elementwise operations.
"""

from __future__ import annotations

from collections import Counter

import pytest
import sympy
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from symcost import formulas, registry
from symcost.errors import FormulaError

from .builders_attention import MultiHeadAttention, attend
from .twins import META, build_twin, count

MINE = ["matmul", "bmm", "sdpa", "multi_head_attention", "lstm", "gru"]

dims = st.integers(1, 64)
small = st.integers(1, 6)


# ---- examples ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MINE)
def test_examples_hold(name):
    formula = registry.get(name)
    assert formula.examples, f"{name} has no worked example"
    for example in formula.examples:
        result = formula.evaluate(**example.values)
        for key, want in example.expect.items():
            assert getattr(result, key) == want, f"{name} example {example.note!r}: {key}"


@pytest.mark.parametrize("name", ["sdpa", "multi_head_attention"])
def test_attention_has_a_decode_example(name):
    assert any(ex.values.get("S_q") == 1 for ex in registry.get(name).examples)


# ---- matmul / bmm --------------------------------------------------------------------------------


def test_bmm_is_batch_matmuls():
    bmm, matmul = formulas.bmm, formulas.matmul
    batch = bmm.symbols["batch"]
    for key in ("macs", "read", "write"):
        assert sympy.expand(bmm.costs[key] - batch * matmul.costs[key]) == 0, key


# ---- sdpa: grouped-query heads -------------------------------------------------------------------


@st.composite
def gqa_heads(draw):
    h_kv = draw(st.integers(1, 8))
    return h_kv * draw(st.integers(1, 8)), h_kv


def test_sdpa_macs_free_of_kv_heads_symbolically():
    sdpa = formulas.sdpa
    assert sympy.diff(sdpa.macs, sdpa.symbols["H_kv"]) == 0
    assert sympy.diff(sdpa.macs, sdpa.symbols["H_q"]) != 0
    assert sdpa.symbols["H_kv"] in sdpa.read.free_symbols


@given(heads=gqa_heads(), b=small, s_q=dims, s_kv=dims, d=dims, d_v=dims, causal=st.booleans(), exact=st.booleans())
def test_sdpa_gqa_mqa_mha_same_macs(heads, b, s_q, s_kv, d, d_v, causal, exact):
    h_q, h_kv = heads
    exact = exact and s_q <= s_kv
    common = dict(B=b, H_q=h_q, S_q=s_q, S_kv=s_kv, D=d, D_v=d_v, causal=causal, exact_causal=exact)
    gqa = formulas.sdpa.evaluate(**common, H_kv=h_kv)
    mha = formulas.sdpa.evaluate(**common, H_kv=h_q)
    mqa = formulas.sdpa.evaluate(**common, H_kv=1)
    assert gqa.macs == mha.macs == mqa.macs
    assert gqa.flops == mha.flops == mqa.flops
    assert gqa.elementwise == mha.elementwise == mqa.elementwise
    # only the K/V read shrinks, by (H_q - H_kv) heads of S_kv*(D + D_v)
    assert mha.read - gqa.read == b * (h_q - h_kv) * s_kv * (d + d_v)
    assert mqa.read <= gqa.read <= mha.read


@pytest.mark.parametrize("h_q, h_kv", [(4, 4), (4, 2), (4, 1), (6, 3)])
def test_sdpa_torch_counts_gqa_as_mha(h_q, h_kv):
    """FlopCounterMode on meta: enable_gqa changes nothing in the count, as the formula says."""
    q = torch.empty(2, h_q, 3, 5, device=META)
    k = torch.empty(2, h_kv, 7, 5, device=META)
    v = torch.empty(2, h_kv, 7, 4, device=META)
    flops, _ = count(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=h_q != h_kv), [q, k, v])
    ours = formulas.sdpa.evaluate(B=2, H_q=h_q, H_kv=h_kv, S_q=3, S_kv=7, D=5, D_v=4)
    assert flops == ours.flops == 2 * 2 * h_q * 3 * 7 * (5 + 4)


def test_sdpa_heads_must_group():
    with pytest.raises(FormulaError, match="divide"):
        formulas.sdpa.evaluate(B=1, H_q=4, H_kv=3, S_q=1, S_kv=1, D=1, D_v=1)


# ---- sdpa: causal counting -----------------------------------------------------------------------


def _sdpa(**values):
    return formulas.sdpa.evaluate(**{"B": 1, "H_q": 1, "H_kv": 1, "D": 1, "D_v": 1} | values)


@given(b=small, h=small, s_q=dims, extra=st.integers(0, 64), d=dims, d_v=dims)
def test_exact_causal_at_most_full(b, h, s_q, extra, d, d_v):
    s_kv = s_q + extra
    common = dict(B=b, H_q=h, H_kv=h, S_q=s_q, S_kv=s_kv, D=d, D_v=d_v, causal=True)
    full = formulas.sdpa.evaluate(**common)
    exact = formulas.sdpa.evaluate(**common, exact_causal=True)
    assert exact.macs <= full.macs
    assert full.macs - exact.macs == b * h * (d + d_v) * s_q * (s_q - 1) // 2
    assert (exact.macs == full.macs) == (s_q == 1)


@given(s_kv=st.integers(1, 10_000), d=dims)
def test_exact_causal_decode_equals_full(s_kv, d):
    full = _sdpa(S_q=1, S_kv=s_kv, D=d, D_v=d, causal=True)
    exact = _sdpa(S_q=1, S_kv=s_kv, D=d, D_v=d, causal=True, exact_causal=True)
    assert exact.macs == full.macs == s_kv * 2 * d


@given(s=st.integers(1, 4096), b=small, h=small)
def test_exact_causal_square_is_triangle_with_diagonal(s, b, h):
    exact = formulas.sdpa.evaluate(B=b, H_q=h, H_kv=h, S_q=s, S_kv=s, D=1, D_v=1, causal=True, exact_causal=True)
    assert exact.macs == b * h * s * (s + 1) // 2 * 2
    assert exact.elementwise["softmax"] == 3 * b * h * s * (s + 1) // 2


@given(s_q=st.integers(1, 12), extra=st.integers(0, 12), d=small)
def test_exact_causal_is_sum_of_decode_steps(s_q, extra, d):
    s_kv = s_q + extra
    exact = _sdpa(S_q=s_q, S_kv=s_kv, D=d, D_v=d, causal=True, exact_causal=True)
    steps = [_sdpa(S_q=1, S_kv=s_kv - s_q + i + 1, D=d, D_v=d) for i in range(s_q)]
    assert exact.macs == sum(step.macs for step in steps)
    assert exact.elementwise == {k: sum(s.elementwise[k] for s in steps) for k in exact.elementwise}


def test_exact_causal_pairs_symbolically():
    sdpa = formulas.sdpa
    s_q, s_kv = sdpa.symbols["S_q"], sdpa.symbols["S_kv"]
    i = sympy.Symbol("i", integer=True, nonnegative=True)
    visible = sympy.summation(s_kv - s_q + i + 1, (i, 0, s_q - 1))
    exact = sdpa.macs.subs({sdpa.symbols["causal"]: 1, sdpa.symbols["exact_causal"]: 1})
    per_pair = sdpa.symbols["B"] * sdpa.symbols["H_q"] * (sdpa.symbols["D"] + sdpa.symbols["D_v"])
    assert sympy.simplify(exact - per_pair * visible) == 0


@given(s_q=dims, s_kv=dims)
def test_exact_flag_alone_changes_nothing(s_q, s_kv):
    assert _sdpa(S_q=s_q, S_kv=s_kv, exact_causal=True).macs == _sdpa(S_q=s_q, S_kv=s_kv).macs == s_q * s_kv * 2


def test_exact_causal_needs_queries_within_keys():
    with pytest.raises(FormulaError, match="S_q <= S_kv"):
        _sdpa(S_q=3, S_kv=2, causal=True, exact_causal=True)
    assert _sdpa(S_q=3, S_kv=2, causal=True).macs == 3 * 2 * 2  # full square: alignment does not matter


@pytest.mark.parametrize("h_q, h_kv, s_q, s_kv", [(2, 2, 4, 4), (4, 2, 3, 6), (3, 1, 5, 5), (2, 1, 1, 6), (4, 4, 6, 7)])
def test_exact_causal_twin_counts_visible_pairs(h_q, h_kv, s_q, s_kv):
    q = torch.empty(2, h_q, s_q, 3, device=META)
    k = torch.empty(2, h_kv, s_kv, 3, device=META)
    v = torch.empty(2, h_kv, s_kv, 5, device=META)
    common = dict(B=2, H_q=h_q, H_kv=h_kv, S_q=s_q, S_kv=s_kv, D=3, D_v=5, causal=True)
    exact, _ = count(lambda q, k, v: attend(q, k, v, True, True), [q, k, v])
    full, _ = count(lambda q, k, v: attend(q, k, v, True, False), [q, k, v])
    assert exact == formulas.sdpa.evaluate(**common, exact_causal=True).flops
    assert full == formulas.sdpa.evaluate(**common).flops
    assert exact < full or s_q == 1


@pytest.mark.parametrize("h_q, h_kv, s_q, s_kv", [(2, 2, 4, 4), (4, 2, 3, 6), (3, 1, 5, 5), (2, 1, 1, 6)])
def test_exact_causal_twin_is_the_masked_attention(h_q, h_kv, s_q, s_kv):
    """The row-by-row twin computes bottom-right causal attention (torch's causal_lower_right)."""
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, h_q, s_q, 3, generator=gen, dtype=torch.float64)
    k = torch.randn(2, h_kv, s_kv, 3, generator=gen, dtype=torch.float64)
    v = torch.randn(2, h_kv, s_kv, 5, generator=gen, dtype=torch.float64)
    rows = attend(q, k, v, True, True)
    masked = attend(q, k, v, True, False)
    torch.testing.assert_close(rows, masked)
    kk, vv = (t.repeat_interleave(h_q // h_kv, dim=1) for t in (k, v))
    scores = (q @ kk.transpose(-1, -2)) / 3**0.5
    visible = torch.ones(s_q, s_kv, dtype=torch.bool).tril(s_kv - s_q)
    reference = scores.masked_fill(~visible, float("-inf")).softmax(-1) @ vv
    torch.testing.assert_close(rows, reference)
    if s_q == s_kv:
        torch.testing.assert_close(rows, F.scaled_dot_product_attention(q, kk, vv, is_causal=True))


# ---- multi_head_attention --------------------------------------------------------------------------


@st.composite
def attention_layer(draw, wide: bool = True):
    top = 64 if wide else 5
    kv_heads = draw(st.integers(1, 8 if wide else 3))
    heads = kv_heads * draw(st.integers(1, 4))
    s_q = draw(st.integers(1, top))
    s_kv = draw(st.integers(1, top))
    causal = draw(st.booleans())
    return dict(
        B=draw(st.integers(1, 4)),
        S_q=s_q,
        S_kv=s_kv,
        E=draw(st.integers(1, 256 if wide else 16)),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=draw(st.integers(1, 128 if wide else 4)),
        bias=draw(st.booleans()),
        causal=causal,
        exact_causal=causal and s_q <= s_kv and draw(st.booleans()),
    )


@given(layer=attention_layer())
def test_mha_is_four_linears_plus_sdpa(layer):
    mha = formulas.multi_head_attention.evaluate(**layer)
    b, s_q, s_kv, e, inner = layer["B"], layer["S_q"], layer["S_kv"], layer["E"], layer["heads"] * layer["head_dim"]
    kv_inner, bias = layer["kv_heads"] * layer["head_dim"], layer["bias"]
    linear = formulas.linear.evaluate
    projections = [
        linear(batch=b * s_q, in_features=e, out_features=inner, bias=bias),  # q
        linear(batch=b * s_kv, in_features=e, out_features=kv_inner, bias=bias),  # k
        linear(batch=b * s_kv, in_features=e, out_features=kv_inner, bias=bias),  # v
        linear(batch=b * s_q, in_features=inner, out_features=e, bias=bias),  # out
    ]
    attention = formulas.sdpa.evaluate(
        B=b,
        H_q=layer["heads"],
        H_kv=layer["kv_heads"],
        S_q=s_q,
        S_kv=s_kv,
        D=layer["head_dim"],
        D_v=layer["head_dim"],
        causal=layer["causal"],
        exact_causal=layer["exact_causal"],
    )
    assert mha.macs == sum(p.macs for p in projections) + attention.macs
    assert mha.flops == sum(p.flops for p in projections) + attention.flops
    assert mha.params == sum(p.params for p in projections)
    assert mha.elementwise["bias"] == sum(p.elementwise["bias"] for p in projections)
    assert mha.elementwise["softmax"] == attention.elementwise["softmax"]
    assert mha.elementwise["mul"] == attention.elementwise["mul"]
    assert mha.outputs["y"] == (b, s_q, e)


def test_mha_kv_heads_defaults_to_heads():
    values = dict(B=1, S_q=3, S_kv=3, E=8, heads=4, head_dim=2)
    assert formulas.multi_head_attention.evaluate(**values) == formulas.multi_head_attention.evaluate(
        **values, kv_heads=4
    )


@given(
    b=st.integers(1, 2),
    s_q=st.integers(1, 5),
    s_kv=st.integers(1, 5),
    heads=st.integers(1, 4),
    head_dim=st.integers(1, 4),
    bias=st.booleans(),
    causal=st.booleans(),
)
def test_mha_equals_torch_multihead_attention(b, s_q, s_kv, heads, head_dim, bias, causal):
    e = heads * head_dim
    module = torch.nn.MultiheadAttention(e, heads, bias=bias, batch_first=True, device=META)
    x_q = torch.empty(b, s_q, e, device=META)
    x_kv = torch.empty(b, s_kv, e, device=META)
    # nn.MultiheadAttention's bool mask marks the *hidden* pairs; bottom-right aligned as the formula's
    mask = ~torch.ones(s_q, s_kv, dtype=torch.bool, device=META).tril(s_kv - s_q) if causal else None
    flops, outputs = count(lambda q, kv: module(q, kv, kv, attn_mask=mask, need_weights=False), [x_q, x_kv])
    ours = formulas.multi_head_attention.evaluate(
        B=b, S_q=s_q, S_kv=s_kv, E=e, heads=heads, head_dim=head_dim, bias=bias, causal=causal
    )
    assert ours.flops == flops
    assert ours.params == sum(p.numel() for p in module.parameters())
    assert ours.outputs["y"] == tuple(outputs[0].shape)


# (S_q, S_kv, past, exact_causal): decode (one token), several new tokens, and cross-length queries
KV_CACHE_CASES = [
    (1, 1, 3, False),
    (1, 1, 3, True),
    (3, 3, 4, False),
    (3, 3, 4, True),
    (2, 5, 1, True),
    (4, 1, 5, True),
]


@pytest.mark.parametrize(("s_q", "s_kv", "past", "exact"), KV_CACHE_CASES)
def test_mha_kv_cache_twin_counts_the_formula(s_q, s_kv, past, exact):
    """With past cached tokens, the twin projects S_kv tokens and attends over past + S_kv keys: its
    FlopCounterMode count, parameters and cache (keys and values after the call) are the formula's."""
    formula = formulas.multi_head_attention
    values = dict(B=2, S_q=s_q, S_kv=s_kv, E=8, heads=4, kv_heads=2, head_dim=3, bias=True, causal=True)
    values |= dict(exact_causal=exact, kv_cache=True, past=past)
    fn, inputs, module = build_twin(formula, values)
    assert [tuple(t.shape) for t in inputs[2:]] == [(2, 2, past, 3)] * 2  # cached keys, values per KV head
    flops, outputs = count(fn, inputs)
    ours = formula.evaluate(**values)
    assert ours.flops == flops
    assert ours.params == sum(p.numel() for p in module.parameters())
    assert ours.outputs["y"] == tuple(outputs[0].shape)
    assert [tuple(t.shape) for t in module.cache] == [(2, 2, past + s_kv, 3)] * 2
    assert formula.bind(defaults=True, **values).costs["cache"] == sum(t.numel() for t in module.cache)
    # the cache is not re-projected: fewer FLOPs and bias adds than projecting past + S_kv tokens anew,
    # and the same attention scores (softmax, scale)
    uncached = formula.evaluate(**(values | dict(S_kv=past + s_kv, kv_cache=False, past=0)))
    assert ours.flops < uncached.flops and ours.elementwise["bias"] < uncached.elementwise["bias"]
    assert [ours.elementwise[k] for k in ("softmax", "mul")] == [uncached.elementwise[k] for k in ("softmax", "mul")]


def test_mha_kv_cache_needs_kv_cache():
    values = dict(B=1, S_q=1, S_kv=1, E=8, heads=2, head_dim=4, past=2)
    with pytest.raises(FormulaError, match="kv_cache"):
        formulas.multi_head_attention.evaluate(**values)
    assert formulas.multi_head_attention.bind(defaults=True, **values, kv_cache=True).costs["cache"] == 2 * 3 * 2 * 4
    assert formulas.multi_head_attention.bind(defaults=True, **(values | {"past": 0})).costs["cache"] == 0


@pytest.mark.parametrize(
    ("s", "past", "exact"), [(1, 4, False), (1, 4, True), (3, 4, False), (3, 4, True), (2, 1, True)]
)
def test_mha_kv_cache_twin_is_the_uncached_layer(s, past, exact):
    """Self-attention over past + s tokens (causal, bottom-right) gives, in its last s rows, what the
    cached twin gives from the s new tokens and the past tokens' projected keys and values."""
    torch.manual_seed(0)
    layer = MultiHeadAttention(6, 4, 2, 3, causal=True, exact_causal=exact, kv_cache=True, device=torch.device("cpu"))
    layer = layer.double()
    x = torch.randn(2, past + s, 6, dtype=torch.float64)
    with torch.no_grad():
        full = layer(x, x)
        past_k = layer._split(layer.k_proj(x[:, :past]), 2)
        past_v = layer._split(layer.v_proj(x[:, :past]), 2)
        new = x[:, past:]
        cached = layer(new, new, past_k, past_v)
    torch.testing.assert_close(cached, full[:, past:])
    # the cache after the step holds every token's keys and values, as the uncached layer's
    torch.testing.assert_close(layer.cache[0], layer._split(layer.k_proj(x), 2))
    torch.testing.assert_close(layer.cache[1], layer._split(layer.v_proj(x), 2))


# ---- lstm / gru ------------------------------------------------------------------------------------


@given(i=st.integers(1, 512), h=st.integers(1, 512), bias=st.booleans())
def test_recurrent_params_equal_torch(i, h, bias):
    for name, module in (("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)):
        torch_params = sum(p.numel() for p in module(i, h, bias=bias, batch_first=True, device=META).parameters())
        ours = registry.get(name).evaluate(B=1, T=1, input_size=i, hidden_size=h, bias=bias)
        assert ours.params == torch_params, name


def lstm_unrolled(x, w_ih, w_hh, b_ih, b_hh):
    """nn.LSTM (one layer, batch_first) as explicit per-step F.linear calls."""
    batch, steps, _ = x.shape
    h = x.new_zeros(batch, w_hh.shape[1])
    c = x.new_zeros(batch, w_hh.shape[1])
    ys = []
    for t in range(steps):
        i, f, g, o = (F.linear(x[:, t], w_ih, b_ih) + F.linear(h, w_hh, b_hh)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        ys.append(h)
    return torch.stack(ys, dim=1), h[None], c[None]


def gru_unrolled(x, w_ih, w_hh, b_ih, b_hh):
    """nn.GRU (one layer, batch_first) as explicit per-step F.linear calls, torch's gate order r, z, n."""
    batch, steps, _ = x.shape
    h = x.new_zeros(batch, w_hh.shape[1])
    ys = []
    for t in range(steps):
        i_r, i_z, i_n = F.linear(x[:, t], w_ih, b_ih).chunk(3, dim=1)
        h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        h = n + z * (h - n)
        ys.append(h)
    return torch.stack(ys, dim=1), h[None]


UNROLLED = {"lstm": (torch.nn.LSTM, lstm_unrolled), "gru": (torch.nn.GRU, gru_unrolled)}

# aten ops of the unrolled cells -> the formulas' elementwise categories (output elements per call)
_CATEGORY = {"sigmoid": "activation", "tanh": "activation", "mul": "mul", "add": "add", "sub": "add"}


class _Tally(TorchDispatchMode):
    """Output elements of each elementwise op, by category; an addmm's bias add counts as 'bias'."""

    def __init__(self):
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name == "addmm":
            self.counts["bias"] += out.numel()
        elif name in _CATEGORY:
            self.counts[_CATEGORY[name]] += out.numel()
        return out


def _weights(module, bias):
    return (
        module.weight_ih_l0,
        module.weight_hh_l0,
        module.bias_ih_l0 if bias else None,
        module.bias_hh_l0 if bias else None,
    )


@pytest.mark.parametrize("name", ["lstm", "gru"])
@given(b=st.integers(1, 3), t=st.integers(1, 5), i=st.integers(1, 6), h=st.integers(1, 6), bias=st.booleans())
def test_unrolled_cell_counts_the_formula(name, b, t, i, h, bias):
    module_cls, unrolled = UNROLLED[name]
    module = module_cls(i, h, bias=bias, batch_first=True, device=META)
    x = torch.empty(b, t, i, device=META)
    flops, outputs = count(lambda x: unrolled(x, *_weights(module, bias)), [x])
    ours = registry.get(name).evaluate(B=b, T=t, input_size=i, hidden_size=h, bias=bias)
    assert flops == ours.flops
    assert [tuple(o.shape) for o in outputs] == list(ours.outputs.values())
    with _Tally() as tally:
        unrolled(x, *_weights(module, bias))
    assert {k: v for k, v in ours.elementwise.items() if v} == dict(tally.counts)


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("bias", [True, False])
def test_unrolled_cell_is_torch_module(name, bias):
    """The unrolled cell computes what nn.LSTM / nn.GRU compute (CPU, float64)."""
    module_cls, unrolled = UNROLLED[name]
    torch.manual_seed(0)
    module = module_cls(3, 4, bias=bias, batch_first=True, dtype=torch.float64)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    y, state = module(x)
    ours = unrolled(x, *_weights(module, bias))
    torch.testing.assert_close(ours[0], y)
    for mine, theirs in zip(ours[1:], state if isinstance(state, tuple) else (state,)):
        torch.testing.assert_close(mine, theirs)
