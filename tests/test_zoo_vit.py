"""The ViT family (archs/vit_b_16.yaml and the files that extend it) equals torchvision's VisionTransformer.

The reference is torchvision/models/vision_transformer.py written here with torch.nn (torchvision is not a
dependency): conv_proj, class_token, Encoder (pos_embedding, EncoderBlock x num_layers with LayerNorm
eps 1e-6, nn.MultiheadAttention(batch_first=True) and MLPBlock = Linear, GELU, Dropout, Linear, Dropout),
encoder.ln and heads.head, built for one image_size on the meta device. FlopCounterMode runs it on a meta
input (nn.MultiheadAttention takes no fast path on meta tensors: F.multi_head_attention_forward with
need_weights=False, whose scaled_dot_product_attention FlopCounterMode counts as its two bmms).
At the weights' input size and one other size: params, buffers, FLOPs, output shape and the elements that
the residual/position adds and the GELUs write equal symcost's; at the first size every layer with
parameters or FLOPs is the torchvision module (or parameter) of that name with the same counts. The
published weights meta (num_params exactly, _ops GMACs x 2e9 to its three decimals) is checked against
both, including the weights published at other sizes (SWAG E2E at 384 and 512, SWAG linear at 224).
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from symcost.arch import load_path
from symcost.compile import Result, evaluate
from symcost.shapes import Graph, build
from tests.test_archs_cnn import ElementwiseCounter
from tests.torch_reference import torch_counts as measure

ARCHS = Path(__file__).resolve().parent.parent / "archs"
META = torch.device("meta")


# --- torchvision.models.vision_transformer -------------------------------------------------------


class MLPBlock(nn.Sequential):
    """torchvision.ops.misc.MLP(in_dim, [mlp_dim, in_dim], activation_layer=nn.GELU, dropout=0.0)."""

    def __init__(self, in_dim: int, mlp_dim: int):
        super().__init__(
            nn.Linear(in_dim, mlp_dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(mlp_dim, in_dim), nn.Dropout(0.0)
        )


class EncoderBlock(nn.Module):
    def __init__(self, num_heads: int, hidden_dim: int, mlp_dim: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(hidden_dim, num_heads, dropout=0.0, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.mlp = MLPBlock(hidden_dim, mlp_dim)

    def forward(self, input):
        x = self.ln_1(input)
        x, _ = self.self_attention(query=x, key=x, value=x, need_weights=False)
        x = self.dropout(x) + input
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    def __init__(self, seq_length: int, num_layers: int, num_heads: int, hidden_dim: int, mlp_dim: int):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, hidden_dim))
        self.dropout = nn.Dropout(0.0)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i in range(num_layers):
            layers[f"encoder_layer_{i}"] = EncoderBlock(num_heads, hidden_dim, mlp_dim)
        self.layers = nn.Sequential(layers)
        self.ln = nn.LayerNorm(hidden_dim, eps=1e-6)

    def forward(self, input):
        return self.ln(self.layers(self.dropout(input + self.pos_embedding)))


class VisionTransformer(nn.Module):
    def __init__(
        self,
        image_size: int,
        patch_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        mlp_dim: int,
        num_classes: int = 1000,
    ):
        super().__init__()
        assert image_size % patch_size == 0, "Input shape indivisible by patch size!"
        self.image_size, self.patch_size, self.hidden_dim = image_size, patch_size, hidden_dim
        self.conv_proj = nn.Conv2d(3, hidden_dim, kernel_size=patch_size, stride=patch_size)
        seq_length = (image_size // patch_size) ** 2
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        seq_length += 1
        self.encoder = Encoder(seq_length, num_layers, num_heads, hidden_dim, mlp_dim)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(hidden_dim, num_classes)))

    def forward(self, x):
        n, _, h, w = x.shape
        assert h == w == self.image_size
        p = self.patch_size
        x = self.conv_proj(x).reshape(n, self.hidden_dim, (h // p) * (w // p)).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        return self.heads(self.encoder(x)[:, 0])


#: torchvision's builders: (patch_size, num_layers, num_heads, hidden_dim, mlp_dim)
BUILDERS = {
    "vit_b_16": (16, 12, 12, 768, 3072),
    "vit_b_32": (32, 12, 12, 768, 3072),
    "vit_l_16": (16, 24, 16, 1024, 4096),
    "vit_l_32": (32, 24, 16, 1024, 4096),
    "vit_h_14": (14, 32, 16, 1280, 5120),
}

#: (N, image_size) per model: the default weights' size first, then one other
SHAPES = {
    "vit_b_16": [(1, 224), (2, 384)],
    "vit_b_32": [(1, 224), (2, 384)],
    "vit_l_16": [(1, 224), (2, 512)],
    "vit_l_32": [(1, 224), (2, 320)],
    "vit_h_14": [(1, 518), (2, 224)],
}

# torchvision/models/vision_transformer.py weights meta: image_size -> (num_params, _ops in GMACs)
PUBLISHED = {
    "vit_b_16": {224: (86_567_656, "17.564"), 384: (86_859_496, "55.484")},  # IMAGENET1K_V1, SWAG_E2E_V1
    "vit_b_32": {224: (88_224_232, "4.409")},  # IMAGENET1K_V1
    "vit_l_16": {224: (304_326_632, "61.555"), 512: (305_174_504, "361.986")},  # IMAGENET1K_V1, SWAG_E2E_V1
    "vit_l_32": {224: (306_535_400, "15.378")},  # IMAGENET1K_V1
    "vit_h_14": {518: (633_470_440, "1016.717"), 224: (632_045_800, "167.295")},  # SWAG_E2E_V1, SWAG_LINEAR_V1
}


class VitElementwise(ElementwiseCounter):
    """The residual and position-embedding adds, and the GELUs (nn.GELU: aten.gelu). An add with a 1-D
    operand is a bias: with N > 1, F.multi_head_attention_forward's in-projection gets a transposed
    (non-contiguous) input, and linear then adds its bias with aten.add instead of inside addmm; symcost
    counts biases under 'bias', not 'add'."""

    CATEGORIES = {**ElementwiseCounter.CATEGORIES, "aten.gelu.default": "activation"}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func) == "aten.add.Tensor" and any(isinstance(a, torch.Tensor) and a.dim() == 1 for a in args):
            return func(*args, **(kwargs or {}))
        return super().__torch_dispatch__(func, types, args, kwargs)


@functools.cache
def reference(arch: str, image_size: int) -> nn.Module:
    with META:
        return VisionTransformer(image_size, *BUILDERS[arch]).eval()


@functools.cache
def torch_counts(arch: str, n: int, image_size: int) -> tuple[dict[str, int], tuple[int, ...], dict[str, int]]:
    x = torch.empty(n, 3, image_size, image_size, device=META)
    with torch.no_grad():
        return measure(reference(arch, image_size), x, counter=VitElementwise())


@functools.cache
def graph(arch: str) -> Graph:
    return build(load_path(ARCHS / f"{arch}.yaml", f"archs/{arch}.yaml"))


def ours(arch: str, n: int, image_size: int) -> Result:
    return evaluate(graph(arch), {"N": n, "H": image_size, "W": image_size})


PAIRS = [(arch, n, size) for arch, shapes in SHAPES.items() for n, size in shapes]


@pytest.mark.parametrize(("arch", "n", "size"), PAIRS, ids=[f"{a}-{n}x{s}" for a, n, s in PAIRS])
def test_vit_equals_torchvision(arch, n, size):
    totals, out_shape, _ = torch_counts(arch, n, size)
    r = ours(arch, n, size)
    assert {key: r.totals.get(key, 0) for key in totals} == totals, f"{arch} at N={n}, {size}x{size}"
    assert list(r.outputs.values()) == [out_shape]


PUBLISHED_POINTS = [(arch, size) for arch, sizes in PUBLISHED.items() for size in sizes]


@pytest.mark.parametrize(("arch", "size"), PUBLISHED_POINTS, ids=[f"{a}-{s}" for a, s in PUBLISHED_POINTS])
def test_published_meta(arch, size):
    """num_params exactly and _ops (GMACs per image, FlopCounterMode FLOPs / 2e9, three decimals), symcost and
    torch, at the batch the size is tested at above (a ViT's FLOPs are N times one image's)."""
    params, gmacs = PUBLISHED[arch][size]
    n = dict((s, n) for n, s in SHAPES[arch])[size]
    totals, _, _ = torch_counts(arch, n, size)
    r = ours(arch, n, size)
    assert r.totals["flops"] == n * ours(arch, 1, size).totals["flops"]
    for where, (p, flops) in {
        "symcost": (r.totals["params"], r.totals["flops"] // n),
        "torch": (totals["params"], totals["flops"] // n),
    }.items():
        assert p == params, f"{arch} {where} params at {size}"
        assert f"{flops / 2e9:.3f}" == gmacs, f"{arch} {where} GMACs at {size}"


def test_defaults_are_the_default_weights_size():
    for arch, shapes in SHAPES.items():
        r = evaluate(graph(arch))
        assert (r.values["N"], r.values["H"], r.values["W"]) == (1, shapes[0][1], shapes[0][1]), arch
        assert r.values["seq_length"] == (shapes[0][1] // BUILDERS[arch][0]) ** 2 + 1


_RANGE = re.compile(r"^encoder\.layers\.(\d+)(?:-(\d+))?\.")


def _torchvision_paths(path: str, count: int) -> list[str]:
    """symcost's ``encoder.layers.0-11.ln_1`` (a repeat costed once, x12) as torchvision's
    ``encoder.layers.encoder_layer_0.ln_1``, ..., ``encoder.layers.encoder_layer_11.ln_1``."""
    match = _RANGE.match(path)
    if match is None:
        assert count == 1, path
        return [path]
    first = int(match[1])
    last = int(match[2]) if match[2] is not None else first
    assert last - first + 1 == count, path
    return [f"encoder.layers.encoder_layer_{i}.{path[match.end() :]}" for i in range(first, last + 1)]


@pytest.mark.parametrize("arch", list(BUILDERS))
def test_layers_name_torchvision_modules(arch):
    """Every layer with parameters or FLOPs is the torchvision module or parameter of that name (encoder
    layers as torchvision numbers them), with its parameters and FLOPs; together they hold every parameter."""
    n, size = SHAPES[arch][0]
    _, _, per_module = torch_counts(arch, n, size)
    model = reference(arch, size)
    modules = dict(model.named_modules())
    parameters = dict(model.named_parameters())
    covered: set[str] = set()
    for node in ours(arch, n, size).nodes:
        if not (node.values["params"] or node.values["flops"]):
            continue
        for path in _torchvision_paths(node.path, int(node.count)):
            if path in modules:
                owned = {f"{path}.{name}" for name, _ in modules[path].named_parameters()}
            else:
                assert path in parameters, f"{arch}: no torchvision module or parameter named {path}"
                owned = {path}
            assert sum(parameters[p].numel() for p in owned) * node.count == node.values["params"], path
            assert per_module.get(f"VisionTransformer.{path}", 0) * node.count == node.values["flops"], path
            covered |= owned
    assert covered == set(parameters)
