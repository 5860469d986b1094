"""`symcost import onnx`: torch modules exported to ONNX, imported, and checked against the module itself.

Each model is exported once per session with dynamic batch and spatial (or sequence) dims, imported, and
evaluated at three points of those dims: FLOPs equal FlopCounterMode on the module, params equal
sum(p.numel()), and the output shape equals the module's. ResNet-18's imported closed forms equal the
bundled archs/resnet18.yaml's. Hand-built graphs (onnx.helper) cover operators the exporter does not emit
in these models, and bad files.
"""

from __future__ import annotations

import functools
import io
import json
import warnings

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import numpy as np  # noqa: E402
import sympy  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from symcost.arch import load_path, load_text  # noqa: E402
from symcost.cli import app  # noqa: E402
from symcost.errors import SymcostError  # noqa: E402
from symcost.evaluation import evaluate, symbolic_totals  # noqa: E402
from symcost.importing import onnx as onnx_import  # noqa: E402
from symcost.shapes import build  # noqa: E402

from .test_archs_cnn import BasicBlock, ResNet  # noqa: E402

# --- models, written the way people write them -----------------------------------------------------


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.dw = nn.Conv2d(20, 20, 3, padding=1, groups=20)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(20, 10)

    def forward(self, x):
        x = nn.functional.hardswish(self.bn(self.conv1(x)))
        x = nn.functional.max_pool2d(x, 2)
        x = self.up(torch.sigmoid(self.conv2(x)))
        x = torch.cat([x, x[:, :4]], dim=1)  # a slice and a concat
        x = self.pool(nn.functional.leaky_relu(self.dw(x), 0.1))
        return self.fc(x.view(x.size(0), -1))  # view from a Shape -> Gather chain


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(12, 32), nn.Linear(32, 32, bias=False), nn.Linear(32, 5)

    def forward(self, x):
        return torch.softmax(self.fc3(torch.tanh(self.fc2(torch.relu(self.fc1(x))))), dim=-1)


class EncoderBlock(nn.Module):
    """A pre-norm transformer encoder block: fused qkv, heads by view/transpose, softmax attention, GELU MLP."""

    def __init__(self, d: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.act, self.fc2 = nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d)
        for norm in (self.ln1, self.ln2):  # distinct values: an exporter may merge identical initializers
            nn.init.normal_(norm.weight)
            nn.init.normal_(norm.bias)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (t.view(b, s, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        a = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1) @ v
        x = x + self.proj(a.transpose(1, 2).reshape(b, s, d))
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


def _export(module: nn.Module, example: torch.Tensor, axes: dict[int, str], dynamo: bool | str) -> bytes:
    """The ONNX bytes of ``module``: the TorchScript exporter (dynamo=False), torch.export's (True), or
    torch.export's without its optimizer ("raw": every shape computation left in the graph)."""
    module = module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dims = {i: torch.export.Dim(name, min=2, max=4096) for i, name in axes.items()}
            program = torch.onnx.export(
                module, (example,), dynamo=True, dynamic_shapes=(dims,), verbose=False, optimize=dynamo != "raw"
            )
            return program.model_proto.SerializeToString()
        f = io.BytesIO()
        # do_constant_folding=False keeps BatchNormalization apart from the conv before it (folded, its
        # parameters would vanish into the conv's and no longer be the module's)
        torch.onnx.export(module, (example,), f, dynamo=False, do_constant_folding=False, opset_version=17,
                          input_names=["x"], dynamic_axes={"x": axes})  # fmt: skip
        return f.getvalue()


#: name -> (factory, example input, dynamic axes, exporter is dynamo, three points of the dynamic dims)
MODELS = {
    "cnn": (SmallCNN, (2, 3, 32, 32), {0: "N", 2: "H", 3: "W"}, False,
            [{"N": 1, "H": 32, "W": 32}, {"N": 2, "H": 16, "W": 48}, {"N": 3, "H": 40, "W": 24}]),
    "cnn_dynamo_raw": (SmallCNN, (2, 3, 32, 32), {0: "N", 2: "H", 3: "W"}, "raw",
                       [{"N": 1, "H": 32, "W": 32}, {"N": 2, "H": 16, "W": 48}, {"N": 3, "H": 40, "W": 24}]),
    "mlp": (MLP, (4, 12), {0: "B"}, False, [{"B": 1}, {"B": 7}, {"B": 32}]),
    "encoder": (EncoderBlock, (2, 10, 32), {0: "B", 1: "S"}, False, [{"B": 1, "S": 5}, {"B": 3, "S": 7}, {"B": 2, "S": 16}]),
    "encoder_dynamo": (EncoderBlock, (2, 10, 32), {0: "B", 1: "S"}, True,
                       [{"B": 1, "S": 5}, {"B": 3, "S": 7}, {"B": 2, "S": 16}]),
    "resnet18": (lambda: ResNet(BasicBlock, [2, 2, 2, 2]), (1, 3, 64, 64), {0: "N", 2: "H", 3: "W"}, False,
                 [{"N": 1, "H": 64, "W": 64}, {"N": 2, "H": 32, "W": 48}, {"N": 1, "H": 97, "W": 65}]),
}  # fmt: skip


@functools.cache
def exported(name: str) -> tuple[nn.Module, str]:
    factory, shape, axes, dynamo, _ = MODELS[name]
    torch.manual_seed(0)
    module = factory().eval()
    raw = _export(module, torch.randn(shape), axes, dynamo)
    model = onnx_import.parse_model(raw, f"{name}.onnx")
    return module, onnx_import.to_yaml(model, f"{name}.onnx")


@functools.cache
def imported_graph(name: str):
    return build(load_text(exported(name)[1], f"{name}.yaml"))


def _torch_point(name: str, point: dict[str, int]) -> tuple[int, int, tuple[int, ...]]:
    module, _ = exported(name)
    _, shape, axes, _, _ = MODELS[name]
    dims = [point[axes[i]] if i in axes else s for i, s in enumerate(shape)]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = module(torch.randn(dims))
    return counter.get_total_flops(), sum(p.numel() for p in module.parameters()), tuple(out.shape)


CASES = [(name, i) for name in MODELS for i in range(3)]


@pytest.mark.parametrize(("name", "index"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_imported_model_equals_torch(name: str, index: int) -> None:
    point = MODELS[name][4][index]
    flops, params, out_shape = _torch_point(name, point)
    g = imported_graph(name)
    r = evaluate(g, point)
    assert r.totals["flops"] == flops
    assert r.totals["params"] == params
    (shape,) = g.outputs.values()
    subs = {sympy.Symbol(k, integer=True, positive=True): v for k, v in point.items()}
    assert tuple(int(d.subs(subs) if isinstance(d, sympy.Basic) else d) for d in shape) == out_shape


def test_resnet18_closed_forms_equal_the_bundled_file() -> None:
    imported = symbolic_totals(imported_graph("resnet18"))
    bundled_arch = load_path("resnet18")
    fixed = {k: v.default for k, v in bundled_arch.variables.items() if k not in ("N", "H", "W")}
    bundled = symbolic_totals(build(bundled_arch), fixed)
    for key in ("macs", "flops", "params", "buffers", "read", "write"):
        assert sympy.expand(imported[key] - bundled[key]) == 0, key


def test_names_variables_and_no_constant_params() -> None:
    text = exported("resnet18")[1]
    assert "  N: {default: null" in text and "  H: {default: null" in text
    assert "{name: layer1.0.conv1, op: conv2d, in: maxpool, C_out: 64, kernel: 3, padding: 1, bias: false}" in text
    cnn = exported("cnn")[1]
    assert "op: parameter" not in cnn and "op: constant" not in cnn  # the view's shape is an argument, not a weight
    assert 'in: pool, shape: ["N", -1]}' in cnn  # x.view(x.size(0), -1): N followed through Shape -> Gather


def test_gelu_from_erf_is_one_layer() -> None:
    text = exported("encoder")[1]
    assert text.count("op: gelu") == 1 and "Erf" not in text
    dynamo = exported("encoder_dynamo")[1]
    assert dynamo.count("op: gelu") == 1
    # the dynamo exporter's node metadata names each layer by its module path
    assert "{name: qkv, op: linear, in: ln1, out_features: 96, bias: true}" in dynamo


# --- hand-built graphs ------------------------------------------------------------------------------


def _model(nodes, inputs, outputs, inits=(), opset=18) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _totals(model, point):
    g = build(load_text(onnx_import.to_yaml(model, "hand.onnx"), "hand.yaml"))
    r = evaluate(g, point)
    subs = {sympy.Symbol(k, integer=True, positive=True): v for k, v in point.items()}
    shapes = [tuple(int(d.subs(subs) if isinstance(d, sympy.Basic) else d) for d in s) for s in g.outputs.values()]
    return r.totals, shapes


def _f32(*shape):
    return np.zeros(shape, np.float32)


def test_hand_built_operators_match_torch() -> None:
    """Reshape with 0 (copy), Gemm transB=0, Slice with steps, Pad, ReduceMean, AveragePool, ConvTranspose,
    Resize by scales and Squeeze/Unsqueeze, against the same computation in torch."""
    nodes = [
        helper.make_node(
            "ConvTranspose", ["x", "wt"], ["a"], name="up", strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]
        ),  # fmt: skip
        helper.make_node("Pad", ["a", "pads"], ["b"], name="pad", mode="reflect"),
        helper.make_node("AveragePool", ["b"], ["c"], name="avg", kernel_shape=[3, 3], strides=[1, 1]),
        helper.make_node("Resize", ["c", "", "scales"], ["d"], name="resize", mode="linear"),
        helper.make_node("Slice", ["d", "starts", "ends", "axes", "steps"], ["e"], name="slice"),
        helper.make_node("ReduceMean", ["e", "hw"], ["f"], name="mean", keepdims=0),
        helper.make_node("Reshape", ["f", "zero_minus1"], ["g"], name="reshape"),
        helper.make_node("Gemm", ["g", "w", "bias"], ["h"], name="fc"),
        helper.make_node("Unsqueeze", ["h", "ax"], ["i"], name="unsq"),
        helper.make_node("Squeeze", ["i", "ax"], ["y"], name="sq"),
    ]
    inits = [_init("wt", _f32(4, 6, 3, 3)), _init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
             _init("scales", np.array([1, 1, 2, 2], np.float32)), _init("starts", np.array([1, 0], np.int64)),
             _init("ends", np.array([2**63 - 1, 7], np.int64)), _init("axes", np.array([2, 3], np.int64)),
             _init("steps", np.array([2, 1], np.int64)), _init("hw", np.array([2, 3], np.int64)),
             _init("zero_minus1", np.array([0, -1], np.int64)), _init("w", _f32(6, 5)), _init("bias", _f32(5)),
             _init("ax", np.array([1], np.int64))]  # fmt: skip
    model = _model(nodes, [_vi("x", ["N", 4, "H", "W"])], [_vi("y", None)], inits)
    for n, h, w in ((1, 5, 6), (2, 8, 9), (3, 4, 7)):
        totals, shapes = _totals(model, {"N": n, "H": h, "W": w})
        up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, bias=False)
        fc = nn.Linear(6, 5)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            t = nn.functional.pad(up(torch.randn(n, 4, h, w)), (1, 1, 1, 1), mode="reflect")
            t = nn.functional.interpolate(nn.functional.avg_pool2d(t, 3, 1), scale_factor=2, mode="bilinear")
            t = fc(t[:, :, 1::2, :7].mean(dim=(2, 3)).reshape(n, -1))
        assert totals["flops"] == counter.get_total_flops()
        assert totals["params"] == sum(p.numel() for p in (*up.parameters(), *fc.parameters()))
        assert shapes == [tuple(t.shape)]


def test_tied_initializer_counted_once() -> None:
    """An embedding table reused as the output projection (tied weights): its parameters count once."""
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="wte"),
             helper.make_node("Transpose", ["table"], ["tT"], name="t", perm=[1, 0]),
             helper.make_node("MatMul", ["e", "tT"], ["y"], name="lm_head")]  # fmt: skip
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["B", "S"])
    model = _model(nodes, [ids], [_vi("y", None)], [_init("table", _f32(50, 8))])
    text = onnx_import.to_yaml(model, "tied.onnx")
    assert "tied: wte" in text
    totals, shapes = _totals(model, {"B": 2, "S": 3})
    emb, head = nn.Embedding(50, 8), nn.Linear(8, 50, bias=False)
    head.weight = emb.weight
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = head(emb(torch.zeros(2, 3, dtype=torch.long)))
    assert totals["params"] == sum(p.numel() for p in nn.ModuleList([emb, head]).parameters()) == 400
    assert totals["flops"] == counter.get_total_flops()
    assert shapes == [tuple(out.shape)]


def test_unnamed_dims_and_odd_dim_params_become_variables() -> None:
    nodes = [helper.make_node("Relu", ["in-put"], ["y"], name="r")]
    model = _model(nodes, [_vi("in-put", ["batch size", None, 4])], [_vi("y", None)])
    text = onnx_import.to_yaml(model, "odd.onnx")
    assert "batch_size: {default: null" in text and "in_put_dim1: {default: null" in text
    assert "in_put: [batch_size, in_put_dim1, 4]" in text


def test_unknown_operators_are_all_listed() -> None:
    nodes = [helper.make_node("Sqrt", ["x"], ["a"], name="s1"), helper.make_node("Sin", ["a"], ["b"], name="sin1"),
             helper.make_node("Sin", ["b"], ["c"], name="sin2"), helper.make_node("Foo", ["c"], ["y"], name="foo",
                                                                                   domain="custom")]  # fmt: skip
    model = _model(nodes, [_vi("x", ["N", 3])], [_vi("y", None)])
    with pytest.raises(SymcostError) as err:
        onnx_import.to_yaml(model, "unk.onnx")
    message = str(err.value)
    assert "3 nodes use operators symcost has no formula for" in message
    assert "Sin x2 (sin1, sin2)" in message and "custom.Foo x1 (foo)" in message
    with pytest.raises(SymcostError, match="Sqrt node 's1': works on a tensor's values at run time"):
        onnx_import.to_yaml(_model(nodes[:1], [_vi("x", ["N", 3])], [_vi("a", None)]), "sqrt.onnx")


def test_run_time_reshape_target_is_refused_clearly() -> None:
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"], name="r")]
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
    with pytest.raises(SymcostError, match="Reshape node 'r': its input 'shape' is computed at run time"):
        onnx_import.to_yaml(_model(nodes, [_vi("x", ["N", 6]), shape], [_vi("y", None)]), "r.onnx")


# --- files and the command ---------------------------------------------------------------------------


def _cli(*args: str):
    from typer.testing import CliRunner

    return CliRunner().invoke(app, list(args))


def test_cli_writes_yaml_that_evaluates(tmp_path) -> None:
    path = tmp_path / "mlp.onnx"
    _, shape, axes, _, _ = MODELS["mlp"]
    path.write_bytes(_export(MLP(), torch.randn(shape), axes, False))
    out = tmp_path / "mlp.yaml"
    result = _cli("import", "onnx", str(path), "-o", str(out), "--set", "B=8")
    assert result.exit_code == 0, result.output
    assert "B: {default: 8" in out.read_text()
    result = _cli("eval", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    # fc1 12*32 + 32 = 416, fc2 32*32 = 1024, fc3 32*5 + 5 = 165: 1605 params
    assert json.loads(result.output)["totals"]["params"] == 1605


def test_cli_refuses_set_values_that_are_not_whole_numbers(tmp_path) -> None:
    """``--set B=true`` or ``B=3/2`` would write a default that eval refuses: refused at import, as import torch
    refuses it, and nothing is written."""
    path = tmp_path / "mlp.onnx"
    _, shape, axes, _, _ = MODELS["mlp"]
    path.write_bytes(_export(MLP(), torch.randn(shape), axes, False))
    out = tmp_path / "mlp.yaml"
    for value in ("B=true", "B=3/2"):
        result = _cli("import", "onnx", str(path), "-o", str(out), "--set", value)
        assert result.exit_code == 1 and "an example value is a whole number" in result.output, result.output
        assert not out.exists()


def test_from_onnx_returns_an_architecture(tmp_path) -> None:
    import symcost

    path = tmp_path / "mlp.onnx"
    _, shape, axes, _, _ = MODELS["mlp"]
    path.write_bytes(_export(MLP(), torch.randn(shape), axes, False))
    arch = symcost.from_onnx(path, B=2)
    assert arch.to_yaml().startswith("# Imported from mlp.onnx")
    r = symcost.evaluate(arch)
    # 2 * B * (12*32 + 32*32 + 32*5) at B = 2
    assert r.totals["flops"] == 2 * 2 * (12 * 32 + 32 * 32 + 32 * 5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a model at all \x00\xff", "not an ONNX model"),
        (b"", "not an ONNX model"),
    ],
)
def test_bad_files_are_one_error_line(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    result = _cli("import", "onnx", str(path))
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]


def test_external_data_and_folders_are_refused(tmp_path) -> None:
    weight = _init("w", _f32(4, 3))
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [_vi("x", ["N", 4])],
                   [_vi("y", None)], [weight])  # fmt: skip
    path = tmp_path / "ext.onnx"
    path.write_bytes(model.SerializeToString())
    result = _cli("import", "onnx", str(path))
    assert result.exit_code == 1 and "keep their data in external files (w)" in result.output
    result = _cli("import", "onnx", str(tmp_path))
    assert result.exit_code == 1 and "not a regular file" in result.output


def test_missing_onnx_package_names_the_extra(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(SymcostError, match=r'pip install "symcost\[onnx\]"'):
        onnx_import._onnx()


def test_operator_reference_is_generated_from_the_code() -> None:
    page = onnx_import.operators_markdown()
    for op in ("Conv", "Gemm", "MatMul", "Resize", "LayerNormalization", "Attention"):
        assert f"| `{op}` |" in page


def _torch_equal(model, point, build_torch, params_modules=()) -> None:
    totals, shapes = _totals(model, point)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = build_torch()
    outs = out if isinstance(out, tuple) else (out,)
    assert totals["flops"] == counter.get_total_flops()
    assert totals["params"] == sum(p.numel() for m in params_modules for p in m.parameters())
    assert shapes == [tuple(o.shape) for o in outs]


def test_hand_built_attention_split_embedding_and_norms() -> None:
    """Gather from a table (embedding), LayerNormalization over the last 2 dims, Split into q, k, v with
    num_outputs, opset 23's Attention, Softmax over a middle axis, Clip as relu6, Concat with a weight."""
    d, heads, vocab = 8, 2, 20
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"], name="wte"),
        helper.make_node("LayerNormalization", ["e", "ln_w", "ln_b"], ["n"], name="ln", axis=-2),
        helper.make_node("MatMul", ["n", "w_qkv"], ["qkv"], name="qkv"),
        helper.make_node("Split", ["qkv"], ["q", "k", "v"], name="split", axis=-1, num_outputs=3),
        helper.make_node("Reshape", ["q", "heads"], ["q4"], name="q4"),
        helper.make_node("Reshape", ["k", "heads"], ["k4"], name="k4"),
        helper.make_node("Reshape", ["v", "heads"], ["v4"], name="v4"),
        helper.make_node("Transpose", ["q4"], ["qt"], name="qt", perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["k4"], ["kt"], name="kt", perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["v4"], ["vt"], name="vt", perm=[0, 2, 1, 3]),
        helper.make_node("Attention", ["qt", "kt", "vt"], ["a"], name="attn", is_causal=1),
        helper.make_node("Softmax", ["a"], ["s"], name="softmax", axis=1),
        helper.make_node("Clip", ["s", "zero", "six"], ["c"], name="relu6"),
        helper.make_node("Concat", ["c", "extra"], ["y"], name="cat", axis=-1),
    ]
    inits = [_init("emb", _f32(vocab, d)), _init("ln_w", _f32(4, d)), _init("ln_b", _f32(4, d)),
             _init("w_qkv", _f32(d, 3 * d)), _init("heads", np.array([0, 0, heads, d // heads], np.int64)),
             _init("zero", np.array(0, np.float32)), _init("six", np.array(6, np.float32)),
             _init("extra", _f32(1, heads, 4, 3))]  # fmt: skip
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "S"])
    model = _model(nodes, [ids], [_vi("y", None)], inits, opset=23)
    text = onnx_import.to_yaml(model, "attn.onnx")
    assert "op: sdpa" in text and "causal: true" in text and "op: layernorm_last2" in text
    # on the meta device, as the formula twins: FlopCounterMode has no rule for CPU's fused attention kernel
    meta = torch.device("meta")
    emb, ln = nn.Embedding(vocab, d, device=meta), nn.LayerNorm([4, d], device=meta)
    qkv = nn.Linear(d, 3 * d, bias=False, device=meta)
    extra = nn.Parameter(torch.zeros(1, heads, 4, 3, device=meta))

    def run():
        n = ln(emb(torch.zeros(1, 4, dtype=torch.long, device=meta)))
        q, k, v = (t.reshape(1, 4, heads, d // heads).transpose(1, 2) for t in qkv(n).split(d, dim=-1))
        a = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return torch.cat([nn.functional.relu6(torch.softmax(a, dim=1)), extra], dim=-1)

    holder = nn.Module()
    holder.extra = extra
    _torch_equal(model, {"S": 4}, run, (emb, ln, qkv, holder))


def test_hand_built_convolutions_pools_and_resize_by_sizes() -> None:
    """Conv1d with a PRelu, a 3-d conv, GlobalMaxPool, Resize to given sizes, Expand."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1d", strides=[2], pads=[1, 1], dilations=[2]),
        helper.make_node("PRelu", ["a", "slope"], ["b"], name="prelu"),
        helper.make_node("GlobalMaxPool", ["b"], ["c"], name="gmp"),
        helper.make_node("Unsqueeze", ["c", "ax3"], ["d"], name="unsq"),
        helper.make_node("Resize", ["d", "", "", "sizes"], ["e"], name="resize", mode="nearest"),
        helper.make_node("Expand", ["e", "exp"], ["f"], name="expand"),
        helper.make_node("Unsqueeze", ["f", "ax2"], ["g"], name="unsq5"),
        helper.make_node("Conv", ["g", "w3", "b3"], ["y"], name="conv3d", pads=[0, 1, 1, 0, 1, 1]),
    ]
    inits = [_init("w1", _f32(6, 4, 3)), _init("slope", _f32(6, 1)), _init("ax3", np.array([3], np.int64)),
             _init("sizes", np.array([2, 6, 5, 7], np.int64)), _init("exp", np.array([2, 6, 5, 7], np.int64)),
             _init("ax2", np.array([2], np.int64)), _init("w3", _f32(3, 6, 1, 3, 3)), _init("b3", _f32(3))]  # fmt: skip
    model = _model(nodes, [_vi("x", [2, 4, "L"])], [_vi("y", None)], inits)
    conv1, prelu = nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, bias=False), nn.PReLU(6)
    conv3 = nn.Conv3d(6, 3, (1, 3, 3), padding=(0, 1, 1))

    def run():
        c = nn.functional.adaptive_max_pool1d(prelu(conv1(torch.randn(2, 4, 11))), 1).unsqueeze(3)
        e = nn.functional.interpolate(c, size=(5, 7), mode="nearest")
        return conv3(e.expand(2, 6, 5, 7).unsqueeze(2))

    _torch_equal(model, {"L": 11}, run, (conv1, prelu, conv3))


def test_huge_files_are_refused(tmp_path, monkeypatch) -> None:
    path = tmp_path / "big.onnx"
    path.write_bytes(b"\x00" * 64)
    monkeypatch.setattr(onnx_import, "MAX_BYTES", 32)
    with pytest.raises(SymcostError, match="file is larger than 32 bytes"):
        onnx_import.read_model(path)


def test_same_and_asymmetric_padding_become_a_pad_layer() -> None:
    """TensorFlow converters write auto_pad SAME_UPPER and pads that differ between the sides: a pad layer,
    then the conv or pool with none, as torch computes F.pad then the layer."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="conv", strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("MaxPool", ["a"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1]),
    ]
    model = _model(nodes, [_vi("x", [1, 3, "H", "W"])], [_vi("y", None)], [_init("w", _f32(8, 3, 3, 3))])
    assert "op: pad" in onnx_import.to_yaml(model, "same.onnx")
    conv = nn.Conv2d(3, 8, 3, stride=2, bias=False)
    for h, w in ((9, 10), (16, 7), (5, 5)):

        def run(h=h, w=w):
            th, tw = (max(0, (-(-s // 2) - 1) * 2 + 3 - s) for s in (h, w))
            x = nn.functional.pad(torch.randn(1, 3, h, w), (tw // 2, tw - tw // 2, th // 2, th - th // 2))
            return nn.functional.max_pool2d(nn.functional.pad(conv(x), (0, 1, 0, 1)), 2)

        _torch_equal(model, {"H": h, "W": w}, run, (conv,))


def _has_unknown_formula() -> bool:
    from symcost import registry

    try:
        registry.get("unknown")
    except SymcostError:
        return False
    return True


@pytest.mark.skipif(
    not _has_unknown_formula(), reason="the catalog's 'unknown' formula comes with symcost import torch"
)
def test_allow_unknown_keeps_shapes_and_counts_nothing() -> None:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["a"], name="fc"),
             helper.make_node("Sin", ["a"], ["b"], name="sin"),
             helper.make_node("TopK", ["b", "k"], ["c", "idx"], name="topk", axis=-1),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]  # fmt: skip
    model = _model(nodes, [_vi("x", ["N", 4])], [_vi("y", None)], [_init("w", _f32(4, 6)), _init("k", np.array([3]))])
    with pytest.raises(SymcostError, match="--allow-unknown keeps them"):
        onnx_import.to_yaml(model, "unk.onnx")
    text = onnx_import.to_yaml(model, "unk.onnx", allow_unknown=True)
    assert "UNKNOWN COSTS: Sin x1, TopK x1" in text
    assert '{name: sin, op: unknown, in: fc, shape: ["N", 6]}' in text
    assert '{name: topk, op: unknown, in: sin, shape: ["N", 3]}' in text
    g = build(load_text(text, "unk.yaml"))
    r = evaluate(g, {"N": 5})
    assert r.totals["flops"] == 2 * 5 * 4 * 6  # the MatMul alone: Sin and TopK count nothing
    n = sympy.Symbol("N", integer=True, positive=True)
    assert [tuple(int(d.subs({n: 5})) for d in s) for s in g.outputs.values()] == [(5, 3)]


def test_module_docstring_example_runs() -> None:
    import doctest

    assert doctest.testmod(onnx_import).failed == 0
