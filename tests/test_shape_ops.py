"""Every shape op and broadcasting op against torch: at Hypothesis-drawn shapes and arguments, an
architecture of one layer gives torch's output shapes, and is refused exactly where torch refuses.

The reference is torch itself on the meta device (shapes only, no data); a refusal is any error torch
raises. symcost's refusal is its one located error type. Costs are checked by the formulas' worked
examples (tests/test_examples.py) and below where a shape op's traffic is the claim (views move nothing,
copies move every element once).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
import yaml
from hypothesis import given
from hypothesis import strategies as st

from symcost.arch import load_text
from symcost.compile import evaluate
from symcost.errors import SymcostError
from symcost.shapes import build

small = st.integers(1, 5)
shapes = st.lists(small, min_size=1, max_size=4)


def meta(shape) -> torch.Tensor:
    return torch.empty(tuple(shape), device="meta")


def ours(op: str, inputs: list[list[int]], **args):
    """Output shapes of one ``op`` layer on inputs of these shapes, or None where symcost refuses."""
    names = [f"x{i}" for i in range(len(inputs))]
    layer = {"op": op, "name": "out", "in": names, **args}
    spec = {"name": "t", "summary": "t", "inputs": dict(zip(names, inputs)), "layers": [layer]}
    # a JSON round trip unshares repeated lists: YAML would write them as aliases, which symcost refuses
    text = yaml.safe_dump(json.loads(json.dumps(spec)), sort_keys=False)
    try:
        graph = build(load_text(text, "t.yaml"))
        result = evaluate(graph)
    except SymcostError:
        return None
    node = graph.nodes[0]
    return [tuple(int(d) for d in shape) for shape in node.outputs.values()], result


def theirs(fn, inputs: list[list[int]]):
    try:
        out = fn(*[meta(s) for s in inputs])
    except (RuntimeError, IndexError, ValueError, TypeError):
        return None
    outs = out if isinstance(out, (tuple, list)) else [out]
    return [tuple(o.shape) for o in outs]


def agree(op: str, fn, inputs: list[list[int]], **args):
    """symcost and torch agree on the output shapes, or both refuse; returns symcost's result."""
    got = ours(op, inputs, **args)
    want = theirs(fn, inputs)
    if want is None:
        assert got is None, f"{op} {inputs} {args}: torch refuses, symcost gives {got and got[0]}"
        return None
    assert got is not None, f"{op} {inputs} {args}: symcost refuses, torch gives {want}"
    assert got[0] == want, f"{op} {inputs} {args}: symcost {got[0]}, torch {want}"
    return got[1]


def totals(result) -> tuple[int, int]:
    return result.totals["read"], result.totals["write"]


# ---- views: shapes as torch's, nothing moved ------------------------------------------------


@given(shape=shapes, data=st.data())
def test_reshape_and_view(shape, data):
    numel = math.prod(shape)
    target = data.draw(st.lists(small, min_size=1, max_size=4), label="target")
    if data.draw(st.booleans(), label="infer"):
        target[data.draw(st.integers(0, len(target) - 1), label="hole")] = -1
    for op in ("reshape", "view"):
        result = agree(op, lambda x: x.reshape(target), [shape], shape=target)
        if result is not None:
            assert totals(result) == (0, 0) and numel == math.prod(result.outputs["out"])


@given(shape=shapes, start=st.integers(-4, 3), end=st.integers(-4, 3))
def test_flatten(shape, start, end):
    agree("flatten", lambda x: torch.flatten(x, start, end), [shape], start_dim=start, end_dim=end)


@given(shape=shapes, dim=st.integers(-4, 3), sizes=st.lists(st.integers(-1, 4), min_size=1, max_size=3))
def test_unflatten(shape, dim, sizes):
    sizes = [s for s in sizes if s != 0]
    if not sizes:
        sizes = [-1]
    agree("unflatten", lambda x: torch.unflatten(x, dim, sizes), [shape], dim=dim, sizes=sizes)


@given(shape=shapes, dims=st.lists(st.integers(-4, 3), min_size=1, max_size=4))
def test_permute(shape, dims):
    result = agree("permute", lambda x: x.permute(*dims), [shape], dims=dims)
    if result is not None:
        assert totals(result) == (0, 0)


@given(shape=shapes, d0=st.integers(-4, 3), d1=st.integers(-4, 3))
def test_transpose(shape, d0, d1):
    agree("transpose", lambda x: x.transpose(d0, d1), [shape], dim0=d0, dim1=d1)


def test_transpose_defaults_to_the_last_two_dims():
    got, _ = ours("transpose", [[2, 3, 4]])
    assert got == [(2, 4, 3)]


@given(shape=shapes, dims=st.one_of(st.none(), st.integers(-4, 3), st.lists(st.integers(-4, 3), max_size=2)))
def test_squeeze(shape, dims):
    if dims is None:
        agree("squeeze", lambda x: x.squeeze(), [shape])
    else:
        agree("squeeze", lambda x: x.squeeze(tuple(dims) if isinstance(dims, list) else dims), [shape], dim=dims)


@given(shape=shapes, dim=st.integers(-6, 5))
def test_unsqueeze(shape, dim):
    agree("unsqueeze", lambda x: x.unsqueeze(dim), [shape], dim=dim)


@given(shape=st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=3), data=st.data())
def test_expand(shape, data):
    sizes = data.draw(st.lists(st.sampled_from([-1, 1, 2, 3, 4]), min_size=1, max_size=5), label="sizes")
    agree("expand", lambda x: x.expand(*sizes), [shape], sizes=sizes)


# ---- pieces -------------------------------------------------------------------------------------


@given(shape=shapes, dim=st.integers(-4, 3), size=st.integers(1, 6))
def test_split_by_size(shape, dim, size):
    agree("split", lambda x: torch.split(x, size, dim), [shape], size=size, dim=dim)


@given(shape=shapes, dim=st.integers(-4, 3), sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3))
def test_split_by_sizes(shape, dim, sizes):
    agree("split", lambda x: torch.split(x, sizes, dim), [shape], sizes=sizes, dim=dim)


@given(shape=shapes, dim=st.integers(-4, 3), chunks=st.integers(1, 6))
def test_chunk(shape, dim, chunks):
    agree("chunk", lambda x: torch.chunk(x, chunks, dim), [shape], chunks=chunks, dim=dim)


@given(shape=shapes, dim=st.integers(-4, 3))
def test_unbind(shape, dim):
    agree("unbind", lambda x: torch.unbind(x, dim), [shape], dim=dim)


@given(shape=shapes, dim=st.integers(-4, 3), start=st.integers(-6, 6), end=st.integers(-6, 6), step=st.integers(1, 3))
def test_slice(shape, dim, start, end, step):
    def fn(x):
        d = dim % x.dim() if -x.dim() <= dim < x.dim() else None
        if d is None:
            raise IndexError(dim)
        out = x[(slice(None),) * d + (slice(start, end, step),)]
        if out.numel() == 0:
            raise RuntimeError("empty")  # symcost sizes are >= 1: an empty slice is refused
        return out

    agree("slice", fn, [shape], dim=dim, start=start, end=end, step=step)


@given(shape=shapes, dim=st.integers(-4, 3), start=st.integers(0, 5), length=st.integers(1, 5))
def test_narrow(shape, dim, start, length):
    agree("narrow", lambda x: torch.narrow(x, dim, start, length), [shape], dim=dim, start=start, length=length)


@given(shape=shapes, dim=st.integers(-4, 3), index=st.integers(-6, 5))
def test_select(shape, dim, index):
    agree("select", lambda x: torch.select(x, dim, index), [shape], dim=dim, index=index)


@given(shape=shapes, dim=st.integers(-4, 3), k=st.integers(1, 5))
def test_index_select(shape, dim, k):
    def fn(x, idx):
        return torch.index_select(x, dim, idx.long())

    result = agree("index_select", fn, [shape, [k]], dim=dim)
    if result is not None:
        out = math.prod(result.outputs["out"])
        assert totals(result) == (out + k, out)


def test_pieces_are_named_after_the_layer():
    text = """
name: qkv
summary: a fused projection cut into q, k and v
variables: {B: 2, S: 5, d: 8}
inputs: {x: [B, S, d]}
layers:
  - {op: linear, name: qkv, out_features: 3*d}
  - {op: chunk, name: parts, chunks: 3, dim: -1}
  - {op: add, name: qk, in: [parts.0, parts.1]}
  - {op: mul, name: out, in: [qk, parts.2]}
"""
    graph = build(load_text(text, "qkv.yaml"))
    assert evaluate(graph).outputs == {"out": (2, 5, 8)}
    with pytest.raises(SymcostError, match="parts.3"):
        build(load_text(text.replace("parts.2]", "parts.3]"), "qkv.yaml"))


# ---- joins ------------------------------------------------------------------------------------


@given(base=st.lists(small, min_size=1, max_size=4), count=st.integers(1, 4), dim=st.integers(-4, 3), data=st.data())
def test_cat_any_number_on_any_dim(base, count, dim, data):
    inputs = []
    for _ in range(count):
        shape = list(base)
        if data.draw(st.booleans(), label="vary"):
            shape[data.draw(st.integers(0, len(shape) - 1), label="which")] = data.draw(small, label="size")
        inputs.append(shape)
    result = agree("cat", lambda *xs: torch.cat(xs, dim), inputs, dim=dim)
    if result is not None:
        out = math.prod(result.outputs["out"])
        assert totals(result) == (out, out) == (sum(math.prod(s) for s in inputs),) * 2


def test_cat_mismatch_names_both_tensors_their_shapes_and_the_dim():
    got = None
    try:
        build(
            load_text(
                "name: t\nsummary: t\ninputs: {a: [1, 8, 16, 16], b: [1, 8, 32, 32]}\n"
                "layers:\n  - {op: concat, in: [a, b]}\n",
                "t.yaml",
            )
        )
    except SymcostError as exc:
        got = str(exc)
    assert got is not None
    assert "'a' [1, 8, 16, 16]" in got and "'b' [1, 8, 32, 32]" in got and "dim 2" in got, got


@given(shape=shapes, count=st.integers(1, 3), dim=st.integers(-5, 4))
def test_stack(shape, count, dim):
    agree("stack", lambda *xs: torch.stack(xs, dim), [shape] * count, dim=dim)


# ---- copies -------------------------------------------------------------------------------------


@given(
    shape=st.lists(small, min_size=1, max_size=4),
    pads=st.lists(st.integers(-1, 3), min_size=0, max_size=6),
    mode=st.sampled_from(["constant", "reflect", "replicate", "circular"]),
)
def test_pad(shape, pads, mode):
    def fn(x):
        out = F.pad(x, pads, mode=mode)
        if out.numel() == 0:
            raise RuntimeError("empty")
        return out

    result = agree("pad", fn, [shape], pad=pads, mode=mode)
    if result is not None:
        assert totals(result) == (math.prod(shape), math.prod(result.outputs["out"]))


@given(shape=shapes, shifts=st.lists(st.integers(-3, 3), min_size=1, max_size=2), data=st.data())
def test_roll(shape, shifts, data):
    dims = data.draw(st.lists(st.integers(-4, 3), min_size=len(shifts), max_size=len(shifts)), label="dims")
    result = agree("roll", lambda x: torch.roll(x, shifts, dims), [shape], shifts=shifts, dims=dims)
    if result is not None:
        assert totals(result) == (math.prod(shape),) * 2


@given(shape=st.lists(small, min_size=2, max_size=4), groups=st.integers(1, 4))
def test_channel_shuffle(shape, groups):
    def fn(x):  # torchvision.models.shufflenetv2.channel_shuffle
        b, c = x.shape[:2]
        return x.view(b, groups, c // groups, *x.shape[2:]).transpose(1, 2).contiguous().view(x.shape)

    def guarded(x):
        if x.dim() < 3 or x.shape[1] % groups:
            raise RuntimeError("torch.nn.ChannelShuffle refuses")
        return fn(x)

    agree("channel_shuffle", guarded, [shape], groups=groups)


@given(lead=st.lists(small, max_size=1), c=st.integers(1, 12), h=small, w=small, r=st.integers(1, 3))
def test_pixel_shuffle_and_unshuffle(lead, c, h, w, r):
    agree("pixel_shuffle", lambda x: F.pixel_shuffle(x, r), [[*lead, c, h, w]], upscale_factor=r)
    agree("pixel_unshuffle", lambda x: F.pixel_unshuffle(x, r), [[*lead, c, h, w]], downscale_factor=r)


@given(
    shape=shapes, dims=st.one_of(st.none(), st.lists(st.integers(-4, 3), min_size=1, max_size=2)), keep=st.booleans()
)
def test_reductions(shape, dims, keep):
    for op, fn in (("mean", torch.mean), ("sum", torch.sum), ("amax", torch.amax), ("amin", torch.amin)):
        args = {"keepdim": keep} if dims is None else {"dim": dims, "keepdim": keep}

        def call(x, fn=fn):
            if dims is None:
                out = fn(x, dim=tuple(range(x.dim())), keepdim=keep)
            else:
                if len(set(d % x.dim() for d in dims if -x.dim() <= d < x.dim())) != len(dims):
                    raise RuntimeError("repeated or out-of-range dim")
                out = fn(x, dim=tuple(dims), keepdim=keep)
            return out

        result = agree(op, call, [shape], **args)
        if result is not None:
            n, out = math.prod(shape), math.prod(result.outputs["out"])
            assert totals(result) == (n, out)
            assert result.totals["elementwise.reduce"] == n + (out if op == "mean" else 0)


# ---- broadcasting ----------------------------------------------------------------------------

_BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}


@given(a=shapes, b=st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=4), op=st.sampled_from(sorted(_BINARY)))
def test_broadcasting_two_tensors(a, b, op):
    result = agree(op, _BINARY[op], [a, b])
    if result is not None:
        out = math.prod(result.outputs["out"])
        assert totals(result) == (math.prod(a) + math.prod(b), out)
        category = "add" if op in ("add", "sub") else "mul"
        assert result.totals[f"elementwise.{category}"] == out and result.totals["params"] == 0


@given(a=shapes, learned=st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=3))
def test_a_learned_operand_is_counted_in_params(a, learned):
    class Scale(torch.nn.Module):  # ConvNeXt's layer scale, a learned bias, a position embedding
        def __init__(self):
            super().__init__()
            self.gamma = torch.nn.Parameter(torch.empty(learned, device="meta"))

        def forward(self, x):
            return x * self.gamma

    module = Scale()
    result = agree("mul", module, [a], learned=learned)
    if result is not None:
        assert result.totals["params"] == sum(p.numel() for p in module.parameters())
        assert totals(result) == (math.prod(a) + math.prod(learned), math.prod(result.outputs["out"]))


@given(a=shapes)
def test_a_scalar_operand_reads_only_the_tensor(a):
    result = agree("mul", lambda x: x * 0.5, [a], scalar=0.5)
    assert result is not None and totals(result) == (math.prod(a), math.prod(a))


def test_broadcast_refusal_states_torchs_rule():
    with pytest.raises(
        SymcostError, match=r"'a' \[2, 3\] and 'b' \[4\] do not broadcast: dim 1 is 3 vs 4 \(torch's rule"
    ):
        build(load_text("name: t\nsummary: t\ninputs: {a: [2, 3], b: [4]}\nlayers:\n  - {op: add, in: [a, b]}\n", "t"))


def test_layernorm_needs_its_normalized_shape():
    """nn.LayerNorm(normalized_shape) requires it; on an NCHW map symcost no longer guesses the last dim."""
    text = "name: t\nsummary: t\ninputs: {x: [1, 96, 56, 56]}\nlayers:\n  - {op: layernorm}\n"
    with pytest.raises(SymcostError, match="needs 'normalized_shape'"):
        build(load_text(text, "t.yaml"))
    with pytest.raises(SymcostError, match="normalized_shape"):
        build(load_text(text.replace("{op: layernorm}", "{op: layernorm, normalized_shape: 96}"), "t.yaml"))
    with pytest.raises(RuntimeError):  # torch refuses the same layer
        torch.nn.LayerNorm(96, device="meta")(meta([1, 96, 56, 56]))


def test_parameter_and_buffer_tensors_count_as_torch_counts_them():
    """Swin's relative position bias: a learned [169, heads] table gathered by a stored index."""

    class Bias(torch.nn.Module):  # torchvision ShiftedWindowAttention's bias, at window 7 and 3 heads
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Parameter(torch.zeros(169, 3))
            self.register_buffer("index", torch.zeros(49 * 49, dtype=torch.long))

        def forward(self, attn):
            bias = self.table[self.index].view(49, 49, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
            return attn + bias

    module = Bias()
    text = """
name: bias
summary: Swin's relative position bias
inputs: {attn: [4, 3, 49, 49]}
layers:
  - {op: parameter, name: table, shape: [169, 3]}
  - {op: buffer, name: index, shape: [2401]}
  - {op: index_select, name: gathered, in: [table, index], dim: 0}
  - {op: view, shape: [49, 49, -1]}
  - {op: permute, dims: [2, 0, 1]}
  - {op: contiguous}
  - {op: unsqueeze, dim: 0}
  - {op: add, name: out, in: [attn, unsqueeze]}
"""
    result = evaluate(build(load_text(text, "bias.yaml")))
    assert result.totals["params"] == sum(p.numel() for p in module.parameters())
    assert result.totals["buffers"] == sum(b.numel() for b in module.buffers())
    assert result.outputs["out"] == tuple(module(torch.zeros(4, 3, 49, 49)).shape)


def test_reshape_takes_its_target_shape():
    """Regression: reshape once passed its input through, so a following linear saw [1, 4, 6] and
    counted 6*10 + 10 = 70 params; torch's view(1, 24) then Linear(24, 10) has 24*10 + 10 = 250."""
    text = "name: t\nsummary: t\ninputs: {x: [1, 4, 6]}\nlayers:\n  - {op: reshape, shape: [1, 24]}\n  - {op: linear, out_features: 10}\n"
    module = torch.nn.Linear(24, 10)
    result = evaluate(build(load_text(text, "t.yaml")))
    assert result.totals["params"] == sum(p.numel() for p in module.parameters()) == 250
    assert result.outputs == {"linear": tuple(module(torch.zeros(1, 4, 6).view(1, 24)).shape)}


def test_squeeze_of_a_variable_size_is_decided_only_with_its_value():
    """Whether squeeze drops a dim depends on its size: the closed form refuses to guess, the graph
    of one point (eval at values) decides it as torch does."""
    text = "name: t\nsummary: t\nvariables: {H: 1}\ninputs: {x: [2, H]}\nlayers:\n  - {op: squeeze, name: out}\n"
    with pytest.raises(SymcostError, match="whether it is dropped depends on its value"):
        build(load_text(text, "t.yaml"))
    for h in (1, 3):
        graph = build(load_text(text, "t.yaml"), {"H": h}, numeric=True)
        assert evaluate(graph, {"H": h}).outputs["out"] == tuple(torch.empty(2, h, device="meta").squeeze().shape)


def test_unbind_over_a_variable_count_needs_the_number():
    """unbind gives one piece per index: a closed form cannot have a variable number of tensors,
    the graph of one point can."""
    text = "name: t\nsummary: t\nvariables: {T: 3}\ninputs: {x: [T, 4]}\nlayers:\n  - {op: unbind, name: parts}\n  - {op: add, name: out, in: [parts.0, parts.2]}\n"
    with pytest.raises(SymcostError, match="the number of pieces must be a number"):
        build(load_text(text, "t.yaml"))
    graph = build(load_text(text, "t.yaml"), {"T": 3}, numeric=True)
    assert evaluate(graph, {"T": 3}).outputs["out"] == (4,)
