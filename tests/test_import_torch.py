"""``symcost import torch`` / ``symcost.from_torch``: an nn.Module traced on fake tensors becomes a symcost file.

What is checked, each against torch itself (never against symcost's own numbers):

- at three points of the symbolic dims, the imported file's FLOPs equal FlopCounterMode's on the module
  (meta device), its params ``sum(p.numel())`` over unique tensors, its buffers, and its output shapes
  torch's;
- where a hand-written bundled file exists, the imported closed forms equal it: ``expand(imported -
  bundled) == 0`` for flops, macs, params and buffers (and the elementwise counts where the layers
  are the same ops);
- ops without a formula are an error naming each with its module path, or explicit ``unknown``
  layers with ``allow_unknown``; the user's module is left as it was.

Traces are cached per session: each model is imported once.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import pytest
import sympy
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import symcost
from symcost.arch import load_path
from symcost.compile import evaluate
from symcost.evaluation import keep_free, symbolic_totals
from symcost.importing import ImporterError
from symcost.importing.torch import from_torch
from symcost.shapes import build
from tests.helpers import invoke

from .torch_reference import ARCHS

META = torch.device("meta")


# ---- helpers -----------------------------------------------------------------------------------


def torch_totals(model: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[dict[str, int], list[tuple[int, ...]]]:
    """FlopCounterMode's FLOPs, unique params and buffers, and the output shapes, on the meta device."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = model(*inputs.values())
    outs = _flat(out)
    totals = {
        "flops": counter.get_total_flops(),
        "params": sum(p.numel() for p in model.parameters()),
        "buffers": sum(b.numel() for b in model.buffers()),
    }
    return totals, [tuple(t.shape) for t in outs]


def _flat(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _flat(v)]
    if isinstance(out, list | tuple):
        return [t for v in out for t in _flat(v)]
    return []


def meta_inputs(spec: dict[str, tuple[Any, ...]], values: dict[str, int], dtypes: dict[str, str]) -> dict:
    made = {}
    for name, dims in spec.items():
        shape = [values[d] if isinstance(d, str) else d for d in dims]
        dtype = getattr(torch, dtypes.get(name, "float32"))
        made[name] = torch.zeros(shape, dtype=dtype, device=META)
    return made


def check_points(model: nn.Module, imported: Any, spec: dict, points: list[dict[str, int]], dtypes: dict | None = None
                 ) -> None:  # fmt: skip
    graph = build(imported.arch)
    for point in points:
        want, shapes = torch_totals(model, meta_inputs(spec, point, dtypes or {}))
        free = {k: v for k, v in point.items() if k in imported.arch.variables}
        result = evaluate(graph, free)
        got = {k: result.totals[k] for k in want}
        assert got == want, f"{imported.name} at {point}: symcost {got} != torch {want}"
        ours = [tuple(int(d) for d in graph_shape(graph, result, name)) for name in graph.arch.outputs]
        assert ours == shapes, f"{imported.name} at {point}: output shapes {ours} != torch {shapes}"


def graph_shape(graph: Any, result: Any, name: str) -> tuple[int, ...]:
    shape = graph.outputs[name]
    return tuple(sympy.sympify(d).xreplace(_symbols(graph, result)) for d in shape)


def _symbols(graph: Any, result: Any) -> dict:
    variables = graph.arch.variables
    return {variables[k].symbol: v for k, v in result.values.items() if k in variables}


def closed(arch: Any, free: list[str]) -> dict[str, sympy.Expr]:
    graph = build(arch)
    return symbolic_totals(graph, keep_free(graph, {}, free))


# ---- models written the way people write them ------------------------------------------------------


class Functional(nn.Module):
    """F.* calls, x.view(x.size(0), -1), torch.cat, chunk, F.interpolate, F.pad."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.left = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(24)
        self.head = nn.Linear(24 * 4 * 4, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        a, b = x.chunk(2, dim=1)
        a = F.max_pool2d(self.left(a), 2)
        a = F.interpolate(a, scale_factor=2, mode="nearest")
        x = torch.cat([a, b, a], dim=1)
        x = F.gelu(self.bn(x))
        x = F.pad(x, (1, 1, 1, 1))
        x = F.adaptive_avg_pool2d(x, 4)
        return self.head(x.view(x.size(0), -1))


class Attention(nn.Module):
    """q, k, v from one linear, split, heads by view/transpose, SDPA, an einsum projection."""

    def __init__(self, d: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Parameter(torch.empty(d, d))
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(self.norm(x)).split(d, dim=-1)
        q, k, v = (t.view(b, s, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).reshape(b, s, d)
        return x + torch.einsum("bsd,de->bse", y, self.proj)


class Encoder(nn.Module):
    """nn.TransformerEncoder (nn.MultiheadAttention inside) on a batch-first sequence."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.mha = nn.MultiheadAttention(32, 2)

    def forward(self, x):
        x = self.encoder(x)
        y, _ = self.mha(x, x, x, need_weights=False)
        return y


class Recurrent(nn.Module):
    """An embedding, a 2-layer LSTM and a GRU (token ids in), a head tied to the embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        self.lstm = nn.LSTM(32, 32, num_layers=2, batch_first=True)
        self.gru = nn.GRU(32, 32)
        self.head = nn.Linear(32, 100, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids):
        x = self.embed(ids)
        x, _ = self.lstm(x)
        x, _ = self.gru(x.transpose(0, 1))
        return self.head(x.transpose(0, 1))


class CrossAttention(nn.Module):
    """Two inputs (queries and a memory of another length), two outputs; a learned bias added."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
        self.bias = nn.Parameter(torch.empty(32))
        self.unused = nn.Linear(4, 4)  # never called: its parameters still count

    def forward(self, x, memory):
        y, _ = self.attn(x, memory, memory, need_weights=False)
        return y + self.bias, memory.mean(dim=1)


#: name -> (factory, input spec, dtypes, three points)
MODELS: dict[str, tuple[Any, dict, dict, list[dict[str, int]]]] = {
    "functional": (Functional, {"x": ("N", 3, "H", "W")}, {},
                   [{"N": 1, "H": 32, "W": 32}, {"N": 2, "H": 40, "W": 24}, {"N": 3, "H": 64, "W": 48}]),
    "attention": (Attention, {"x": ("B", "S", 32)}, {}, [{"B": 1, "S": 16}, {"B": 2, "S": 7}, {"B": 3, "S": 33}]),
    "encoder": (Encoder, {"x": ("B", "S", 32)}, {}, [{"B": 2, "S": 16}, {"B": 1, "S": 9}, {"B": 4, "S": 20}]),
    "cross": (CrossAttention, {"x": ("B", "S", 32), "memory": ("B", "T", 32)}, {},
              [{"B": 2, "S": 5, "T": 9}, {"B": 1, "S": 12, "T": 3}, {"B": 3, "S": 7, "T": 7}]),
    "recurrent": (Recurrent, {"ids": ("B", "T")}, {"ids": "int64"},
                  [{"B": 2, "T": 8}, {"B": 1, "T": 5}, {"B": 3, "T": 12}]),
}  # fmt: skip


@functools.cache
def built(name: str) -> nn.Module:
    with META:
        return MODELS[name][0]().eval()


@functools.cache
def imported(name: str) -> Any:
    _, spec, dtypes, points = MODELS[name]
    return from_torch(built(name), spec, points[0], dtypes=dtypes, name=name)


@pytest.mark.parametrize("name", list(MODELS))
def test_imported_model_equals_torch_at_three_points(name):
    _, spec, dtypes, points = MODELS[name]
    check_points(built(name), imported(name), spec, points, dtypes)


def test_layers_are_named_by_module_path():
    text = imported("functional").to_yaml()
    assert "{name: stem, op: conv2d, in: x, C_out: 16, kernel: 3, padding: 1}" in text
    assert "{name: head, op: linear, out_features: 10}" in text
    assert 'op: view, shape: ["N", -1]' in text  # x.view(x.size(0), -1): the batch stays a variable
    encoder = imported("encoder").to_yaml()
    assert "name: encoder.layers.0.self_attn.attention, op: multi_head_attention" in encoder
    assert "name: encoder.layers.1.linear1, op: linear" in encoder


def test_tied_weights_are_counted_once():
    text = imported("recurrent").to_yaml()
    assert "{name: head, op: linear, out_features: 100, bias: false, tied: embed}" in text


def test_closed_form_keeps_the_symbols():
    forms = closed(imported("functional").arch, ["N", "H", "W"])
    h, w, n = (imported("functional").arch.variables[k].symbol for k in "HWN")
    # stem 3x3 conv 3->16 with bias, per output pixel: 2*(16*27) + ... : the H*W term is torch's own count
    assert forms["flops"].free_symbols == {n, h, w}
    model = built("functional")
    for hv, wv in [(32, 32), (40, 24)]:
        want, _ = torch_totals(model, {"x": torch.empty(2, 3, hv, wv, device=META)})
        assert forms["flops"].xreplace({n: 2, h: hv, w: wv}) == want["flops"]


# ---- the bundled models: the imported closed forms equal the hand-written files ------------------


def _cnn(arch: str) -> nn.Module:
    from tests import test_archs_cnn, test_zoo_convnets

    if arch in test_zoo_convnets.CASES:
        return test_zoo_convnets.reference(arch)
    return test_archs_cnn.reference(arch)


@functools.cache
def imported_cnn(arch: str) -> Any:
    return from_torch(_cnn(arch), {"x": ("N", 3, "H", "W")}, {"N": 1, "H": 224, "W": 224}, name=arch)


@pytest.mark.parametrize("arch", ["resnet50", "mobilenet_v2", "vgg16_bn", "convnext_tiny", "regnet_y_400mf"])
def test_imported_cnn_equals_bundled_closed_form(arch):
    """Every closed form, memory traffic and elementwise counts included: the files name the same ops."""
    ours = closed(imported_cnn(arch).arch, ["N", "H", "W"])
    bundled = closed(load_path(ARCHS / f"{arch}.yaml"), ["N", "H", "W"])
    assert set(ours) == set(bundled)
    for key in bundled:
        assert sympy.expand(ours[key] - bundled[key]) == 0, key


@pytest.mark.parametrize("arch", ["resnet50"])
def test_imported_cnn_equals_torch(arch):
    spec = {"x": ("N", 3, "H", "W")}
    points = [{"N": 1, "H": 224, "W": 224}, {"N": 2, "H": 320, "W": 257}, {"N": 1, "H": 97, "W": 131}]
    check_points(_cnn(arch), imported_cnn(arch), spec, points)


@functools.cache
def imported_vit() -> tuple[nn.Module, Any]:
    from tests import test_zoo_vit

    model = test_zoo_vit.reference("vit_b_16", 224)
    return model, from_torch(model, {"x": ("N", 3, "H", "W")}, {"N": 1, "H": 224, "W": 224}, name="vit_b_16")


def test_imported_vit_equals_bundled():
    """torchvision's ViT asserts the image size: the trace fixes H = W = 224 and says so; in N the closed
    forms equal archs/vit_b_16.yaml's at 224."""
    model, vit = imported_vit()
    assert "H = 224: the forward only runs at this size" in vit.to_yaml()
    assert set(vit.arch.variables) == {"N"}
    ours = closed(vit.arch, ["N"])
    graph = build(load_path(ARCHS / "vit_b_16.yaml"))
    bundled = symbolic_totals(graph, keep_free(graph, {"H": 224, "W": 224}, ["N"]))
    for key in ("flops", "macs", "params", "buffers"):
        assert sympy.expand(ours[key] - bundled[key]) == 0, key
    check_points(model, vit, {"x": ("N", 3, 224, 224)}, [{"N": 1}, {"N": 2}, {"N": 5}])


# ---- never a silent zero -------------------------------------------------------------------------


class Odd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        y = torch.cumsum(self.fc(x), dim=-1)
        return torch.cumsum(y, dim=-1) + torch.sort(x, dim=-1).values


def test_unknown_ops_are_an_error_naming_each():
    with META:
        model = Odd()
    with pytest.raises(ImporterError) as err:
        from_torch(model, {"x": ("B", 8)}, {"B": 2})
    message = str(err.value)
    assert "cumsum at (top level) (2x)" in message
    assert "sort at (top level) (1x)" in message
    assert "--allow-unknown" in message


def test_allow_unknown_keeps_explicit_unknown_layers():
    with META:
        model = Odd()
    result = from_torch(model, {"x": ("B", 8)}, {"B": 2}, allow_unknown=True)
    text = result.to_yaml()
    assert "# UNKNOWN COST: cumsum (no formula; counted as 0)" in text
    assert "{name: cumsum, op: unknown, shape: [B, 8]}" in text
    assert "UNKNOWN COSTS" in text
    assert result.unknown == [("cumsum", "", 2), ("sort", "", 1)]
    r = symcost.evaluate(result, B=3)
    assert r.totals["params"] == 72
    # two cumsum calls and sort's two outputs: the totals say how many layers count nothing
    assert r.totals["unknown_layers"] == 4
    assert "WARNING: 4 layer(s) of unknown cost" in r.render("table")
    assert "WARNING: 4 layer(s) of unknown cost" in r.render("markdown")
    assert r.to_dict()["unknown"] == ["cumsum", "cumsum_2", "sort", "sort_2"]


class Routed(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # a branch on values: fake tensors have none
            return x * 2
        return x


def test_data_dependent_control_flow_is_reported():
    with pytest.raises(ImporterError) as err:
        from_torch(Routed(), {"x": ("B", 4)}, {"B": 2})
    assert "data-dependent control flow at (top level)" in str(err.value)
    assert "'moe' formula" in str(err.value)


def test_the_users_module_is_not_changed():
    with META:
        model = Functional()  # training mode: BatchNorm would update its running stats
    before = {k: (v.shape, v.dtype, v.device) for k, v in model.state_dict().items()}
    hooks = (dict(model._forward_hooks), dict(model._forward_pre_hooks))
    from_torch(model, {"x": ("N", 3, "H", "W")}, {"N": 2, "H": 16, "W": 16})
    assert model.training
    assert {k: (v.shape, v.dtype, v.device) for k, v in model.state_dict().items()} == before
    assert (dict(model._forward_hooks), dict(model._forward_pre_hooks)) == hooks
    real = nn.BatchNorm2d(4)  # real tensors: the trace must not write them
    from_torch(nn.Sequential(real), {"x": ("N", 4, 8, 8)}, {"N": 2})
    assert int(real.num_batches_tracked) == 0 and torch.equal(real.running_mean, torch.zeros(4))


# ---- the command -------------------------------------------------------------------------------


MODEL_FILE = """
import torch
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))
"""


def test_cli_writes_the_yaml(tmp_path):
    (tmp_path / "net.py").write_text(MODEL_FILE.replace("nn.LazyLinear(4)", "nn.Identity()"))
    out = tmp_path / "net.yaml"
    result = invoke("import", "torch", f"{tmp_path / 'net.py'}:build", "--input", "x=[N,3,H,W]", "--set", "N=1",
                    "H=32", "W=32", "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    assert '{name: "0", op: conv2d, in: x, C_out: 8, kernel: 3, stride: 2, padding: 1}' in text
    r = symcost.evaluate(str(out), N=2, H=64, W=64)
    # 2 * N * 8 * 32 * 32 outputs * (27 MACs + 0) ... = FlopCounterMode's 2*macs; bias adds are not FLOPs
    assert r.totals["flops"] == 2 * 2 * 8 * 32 * 32 * 27


def test_cli_reports_unknown_ops(tmp_path):
    (tmp_path / "odd.py").write_text("import torch\n\nclass M(torch.nn.Module):\n    def forward(self, x):\n"
                                     "        return torch.cumsum(x, 0)\n\n\ndef build():\n    return M()\n")  # fmt: skip
    result = invoke("import", "torch", f"{tmp_path / 'odd.py'}:build", "--input", "x=[B,4]", "--set", "B=2")
    assert result.exit_code == 1
    assert "cumsum at (top level) (1x)" in result.stderr


def test_missing_torch_names_the_extra(monkeypatch):
    import sys

    from symcost.importing import torch as importer

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImporterError, match=r'pip install "symcost\[torch\]"'):
        importer._torch()


def test_from_torch_is_the_facade():
    with META:
        net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    arch = symcost.from_torch(net, inputs={"x": ("N", 3, "H", "W")}, example={"N": 1, "H": 32, "W": 32})
    assert arch.to_yaml().startswith("# Imported by `symcost import torch`")
    assert symcost.evaluate(arch, H=64, W=64).totals["flops"] == 2 * 62 * 62 * 8 * 27
    assert math.prod([1]) == 1


# ---- Hugging Face transformers, from small configs on meta ---------------------------------------

#: family -> (config class, model class, config, the bundled file and its variables at that config,
#: ops without a formula that the import keeps as `unknown` layers)
HF: dict[str, tuple[str, str, dict[str, int], str, dict[str, int], set[str]]] = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=64),
             "gpt2", dict(vocab=100, n_positions=64, d_model=64, n_layer=2, n_head=4, d_ff=256, ctx=0), set()),
    "bert": ("BertConfig", "BertModel", dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                                             intermediate_size=128, vocab_size=100, max_position_embeddings=64),
             "bert_base", dict(vocab=100, max_positions=64, d_model=64, n_layer=2, n_head=4, d_ff=128), {"gather"}),
    "llama": ("LlamaConfig", "LlamaForCausalLM", dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                                                      num_key_value_heads=2, intermediate_size=128, vocab_size=100),
              "llama", dict(vocab=100, d_model=64, n_layer=2, n_head=4, n_kv_head=2, d_ff=128, ctx=0), {"cos", "sin"}),
}  # fmt: skip
HF_POINTS = [{"B": 2, "S": 16}, {"B": 1, "S": 7}, {"B": 3, "S": 33}]


@functools.cache
def hf(family: str) -> tuple[nn.Module, Any]:
    import warnings

    transformers = pytest.importorskip("transformers")
    config_cls, model_cls, config, *_ = HF[family]
    with warnings.catch_warnings(), META:
        warnings.simplefilter("ignore")
        model = getattr(transformers, model_cls)(
            getattr(transformers, config_cls)(**config, attn_implementation="sdpa")
        )
    model = model.eval()
    imported = from_torch(model, {"ids": ("B", "S")}, HF_POINTS[0], dtypes={"ids": "int64"}, name=family,
                          allow_unknown=True)  # fmt: skip
    return model, imported


@pytest.mark.parametrize("family", list(HF))
def test_hf_model_equals_torch_at_three_points(family):
    model, result = hf(family)
    assert {op for op, _, _ in result.unknown} == HF[family][5]  # the rotary table's cos/sin, BERT's gather
    check_points(model, result, {"ids": ("B", "S")}, HF_POINTS, {"ids": "int64"})


@pytest.mark.parametrize("family", list(HF))
def test_hf_model_equals_bundled_closed_form(family):
    """flops, macs and params equal the hand-written file's closed forms in B and S. Buffers are torch's:
    HF's position-id and rotary-frequency buffers, which the hand-written files leave out."""
    model, result = hf(family)
    *_, arch, values, _ = HF[family]
    ours = closed(result.arch, ["B", "S"])
    graph = build(load_path(ARCHS / f"{arch}.yaml"))
    bundled = symbolic_totals(graph, keep_free(graph, values, ["B", "S"]))
    for key in ("flops", "macs", "params"):
        assert sympy.expand(ours[key] - bundled[key]) == 0, key
    assert ours["buffers"] == sum(b.numel() for b in model.buffers())


def test_core_install_is_free_of_torch():
    """torch is the `torch` extra: no core dependency, and neither `import symcost`, its facade nor the CLI's
    start-up imports it (only `symcost import torch` does)."""
    import re
    import subprocess
    import sys

    text = (ARCHS.parent / "pyproject.toml").read_text()
    core = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M)
    assert core is not None and "torch" not in core.group(1)
    assert re.search(r'^torch = \["torch==2\.13\.0"\]$', text, re.M)
    script = (
        "import sys, symcost, symcost.api, symcost.cli, symcost.importing\n"
        "symcost.from_torch\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("module", ["symcost.importing", "symcost.importing.torch"])
def test_docstring_examples(module):
    import doctest
    import importlib

    failures, tried = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert tried and not failures


def test_the_callers_no_grad_changes_nothing():
    """A CPU module with real weights, imported in no_grad and eval mode (where torch would otherwise take the
    fused nn.TransformerEncoderLayer kernel): the same file as the meta module's."""
    _, spec, dtypes, points = MODELS["encoder"]
    model = Encoder().eval()  # on the CPU: torch takes its fused path for CPU and CUDA tensors only
    with torch.no_grad():
        again = from_torch(model, spec, points[0], dtypes=dtypes, name="encoder")
    assert again.to_yaml() == imported("encoder").to_yaml()
