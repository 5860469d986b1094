"""Swin-T and GoogLeNet (archs/swin_t.yaml, archs/googlenet.yaml) equal torch exactly.

Each is checked against a reference written here with torch.nn, following torchvision's source
(torchvision/models/swin_transformer.py and googlenet.py; torchvision is not a dependency), built on the
meta device and counted with FlopCounterMode on a meta input: symcost's params, buffers and FLOPs must
equal ``sum(p.numel())``, ``sum(b.numel())`` and FlopCounterMode's total, and the output shape must
match, at 224x224 and at a second batch and size. The elements written by torch's add, mul, ReLU/GELU
and softmax kernels must equal symcost's elementwise counts (softmax at 3 per element), so a missing
residual, bias add, mask add, q scaling or transform_input step fails. Every torch module with
parameters (and Swin's relative position bias tables) must be a symcost layer of the same name with the
same parameters and FLOPs; each Swin attention's FLOPs (qkv, the two bmm, proj) must equal the sum of
its layers'. The published numbers (torchvision weights meta: num_params, and _ops in GMACs) are checked
against both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from symcost.arch import load_path, load_text
from symcost.compile import Result, evaluate
from symcost.shapes import Graph, build

from .torch_reference import Permute, StochasticDepth
from .torch_reference import torch_counts as measure

ARCHS = Path(__file__).resolve().parent.parent / "archs"
META = torch.device("meta")


# --- torchvision.models.swin_transformer (v1) ---------------------------------------------------


class PatchMerging(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        h, w, _ = x.shape[-3:]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x0 = x[..., 0::2, 0::2, :]
        x1 = x[..., 1::2, 0::2, :]
        x2 = x[..., 0::2, 1::2, :]
        x3 = x[..., 1::2, 1::2, :]
        return self.reduction(self.norm(torch.cat([x0, x1, x2, x3], -1)))


def shifted_window_attention(x_in, qkv, proj, bias, window: list[int], heads: int, shift_size: list[int]):
    """torchvision's shifted_window_attention (v1, dropout 0), step by step."""
    b, h, w, c = x_in.shape
    pad_r = (window[1] - w % window[1]) % window[1]
    pad_b = (window[0] - h % window[0]) % window[0]
    x = F.pad(x_in, (0, 0, 0, pad_r, 0, pad_b))
    _, ph, pw, _ = x.shape
    if window[0] >= ph:  # torchvision writes into the module's own list, as here
        shift_size[0] = 0
    if window[1] >= pw:
        shift_size[1] = 0
    if sum(shift_size) > 0:
        x = torch.roll(x, shifts=(-shift_size[0], -shift_size[1]), dims=(1, 2))
    nw = (ph // window[0]) * (pw // window[1])
    x = x.view(b, ph // window[0], window[0], pw // window[1], window[1], c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b * nw, window[0] * window[1], c)
    t = qkv(x).reshape(x.size(0), x.size(1), 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = t[0], t[1], t[2]
    q = q * (c // heads) ** -0.5
    attn = q.matmul(k.transpose(-2, -1)) + bias
    if sum(shift_size) > 0:
        mask = x.new_zeros((ph, pw))
        h_slices = ((0, -window[0]), (-window[0], -shift_size[0]), (-shift_size[0], None))
        w_slices = ((0, -window[1]), (-window[1], -shift_size[1]), (-shift_size[1], None))
        count = 0
        for hs in h_slices:
            for ws in w_slices:
                mask[hs[0] : hs[1], ws[0] : ws[1]] = count
                count += 1
        mask = mask.view(ph // window[0], window[0], pw // window[1], window[1])
        mask = mask.permute(0, 2, 1, 3).reshape(nw, window[0] * window[1])
        mask = mask.unsqueeze(1) - mask.unsqueeze(2)
        mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        attn = attn.view(x.size(0) // nw, nw, heads, x.size(1), x.size(1))
        attn = (attn + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, x.size(1), x.size(1))
    attn = F.softmax(attn, dim=-1)
    x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), c)
    x = proj(x)
    x = x.view(b, ph // window[0], pw // window[1], window[0], window[1], c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
    if sum(shift_size) > 0:
        x = torch.roll(x, shifts=(shift_size[0], shift_size[1]), dims=(1, 2))
    return x[:, :h, :w, :].contiguous()


class ShiftedWindowAttention(nn.Module):
    def __init__(self, dim: int, window: list[int], shift: list[int], heads: int):
        super().__init__()
        self.window, self.shift, self.heads = window, shift, heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window[0] - 1) * (2 * window[1] - 1), heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window[0]), torch.arange(window[1]), indexing="ij"))
        flat = torch.flatten(coords, 1)
        rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
        rel[:, :, 0] += window[0] - 1
        rel[:, :, 1] += window[1] - 1
        rel[:, :, 0] *= 2 * window[1] - 1
        self.register_buffer("relative_position_index", rel.sum(-1).flatten())

    def forward(self, x):
        n = self.window[0] * self.window[1]
        bias = self.relative_position_bias_table[self.relative_position_index]
        bias = bias.view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
        return shifted_window_attention(x, self.qkv, self.proj, bias, self.window, self.heads, self.shift)


class SwinTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, window: list[int], shift: list[int], sd_prob: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ShiftedWindowAttention(dim, window, shift, heads)
        self.stochastic_depth = StochasticDepth(sd_prob)
        self.norm2 = nn.LayerNorm(dim)
        # torchvision.ops.misc.MLP(dim, [4*dim, dim], activation_layer=nn.GELU, dropout=0.0)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim), nn.Dropout(0.0)
        )

    def forward(self, x):
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth(self.mlp(self.norm2(x)))


class SwinTransformer(nn.Module):
    """swin_t: patch_size [4, 4], embed_dim 96, depths [2, 2, 6, 2], num_heads [3, 6, 12, 24], window [7, 7]."""

    def __init__(self, embed_dim=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window=(7, 7), num_classes=1000):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(3, embed_dim, 4, 4), Permute([0, 2, 3, 1]), nn.LayerNorm(embed_dim))
        ]
        total, block_id = sum(depths), 0
        for stage, depth in enumerate(depths):
            dim = embed_dim * 2**stage
            blocks = []
            for i in range(depth):
                shift = [0 if i % 2 == 0 else w // 2 for w in window]
                blocks.append(
                    SwinTransformerBlock(dim, heads[stage], list(window), shift, 0.2 * block_id / (total - 1))
                )
                block_id += 1
            layers.append(nn.Sequential(*blocks))
            if stage < len(depths) - 1:
                layers.append(PatchMerging(dim))
        self.features = nn.Sequential(*layers)
        features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(features, num_classes)

    def forward(self, x):
        x = self.norm(self.features(x)).permute(0, 3, 1, 2)
        return self.head(torch.flatten(self.avgpool(x), 1))


# --- torchvision.models.googlenet (with weights: transform_input True, aux_logits False) -------------


class BasicConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    def __init__(self, c_in: int, c1: int, r3: int, c3: int, r5: int, c5: int, pool_proj: int):
        super().__init__()
        self.branch1 = BasicConv2d(c_in, c1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(c_in, r3, kernel_size=1), BasicConv2d(r3, c3, kernel_size=3, padding=1)
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(c_in, r5, kernel_size=1), BasicConv2d(r5, c5, kernel_size=3, padding=1)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(c_in, pool_proj, kernel_size=1),
        )

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.aux1 = None  # built for loading the weights, then set to None (aux_logits False)
        self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        # _transform_input with transform_input=True
        x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        x = torch.cat((x_ch0, x_ch1, x_ch2), 1)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        for name in ("4a", "4b", "4c", "4d", "4e"):
            x = getattr(self, f"inception{name}")(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


# --- the cases -------------------------------------------------------------------------------------

#: arch -> (reference factory, shapes (N, H, W); the first holds the published numbers)
CASES: dict[str, tuple[Callable[[], nn.Module], list[tuple[int, int, int]]]] = {
    # 200x208: stage maps 50x52, 25x26, 13x13, 7x7, padded to 56x56, 28x28, 14x14, 7x7 (odd maps padded
    # by patch merging too); the same rolls and masks as at 224 (see the notes in archs/swin_t.yaml)
    "swin_t": (SwinTransformer, [(1, 224, 224), (2, 200, 208)]),
    # 227x250: the ceil-mode pools round up (114 -> 57, 125 -> 63, ...)
    "googlenet": (GoogLeNet, [(1, 224, 224), (2, 227, 250)]),
}

#: torchvision weights meta: (num_params, _ops in GMACs) -- torchvision/models/swin_transformer.py
#: Swin_T_Weights.IMAGENET1K_V1 and torchvision/models/googlenet.py GoogLeNet_Weights.IMAGENET1K_V1
PUBLISHED = {
    "swin_t": (28_288_354, 4.491),
    "googlenet": (6_624_904, 1.498),
}


class ElementwiseCounter(TorchDispatchMode):
    """Output elements of the aten ops behind symcost's elementwise add, mul, activation and softmax."""

    CATEGORIES = {
        "aten.add.Tensor": ("add", 1),
        "aten.mul.Tensor": ("mul", 1),
        "aten.relu.default": ("activation", 1),
        "aten.relu_.default": ("activation", 1),
        "aten.gelu.default": ("activation", 1),
        "aten._softmax.default": ("softmax", 3),  # symcost: exp, add, divide per element
    }

    def __init__(self):
        super().__init__()
        self.counts = {"add": 0, "mul": 0, "activation": 0, "softmax": 0}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        entry = self.CATEGORIES.get(str(func))
        if entry is not None:
            self.counts[entry[0]] += entry[1] * out.numel()
        return out


@functools.cache
def graph(arch: str, shape: tuple[int, int, int] | None = None) -> Graph:
    """The graph at N, H, W = shape (Swin's rolls, masks and copies follow the map sizes), else at the defaults."""
    values = None if shape is None else dict(zip(("N", "H", "W"), shape))
    return build(load_path(ARCHS / f"{arch}.yaml"), values, numeric=shape is not None)


@functools.cache
def torch_run(arch: str, shape: tuple[int, int, int]) -> tuple[nn.Module, dict, tuple[int, ...], dict]:
    """A fresh reference per shape: torchvision's Swin writes the zeroed shift back into its modules."""
    with META:
        model = CASES[arch][0]().eval()
    n, h, w = shape
    return model, *measure(model, torch.empty(n, 3, h, w, device=META), counter=ElementwiseCounter())


def ours(arch: str, shape: tuple[int, int, int]) -> Result:
    n, h, w = shape
    return evaluate(graph(arch, shape), {"N": n, "H": h, "W": w})


PAIRS = [(arch, shape) for arch, (_, shapes) in CASES.items() for shape in shapes]


@pytest.mark.parametrize(("arch", "shape"), PAIRS, ids=[f"{a}-{'x'.join(map(str, s))}" for a, s in PAIRS])
def test_arch_equals_torch(arch, shape):
    _, totals, out_shape, _ = torch_run(arch, shape)
    r = ours(arch, shape)
    got = {key: r.totals.get(key, 0) for key in totals}
    assert got == totals, f"{arch} at N, H, W = {shape}"
    assert list(r.outputs.values()) == [out_shape]


@pytest.mark.parametrize("arch", list(CASES))
def test_layers_name_torch_modules(arch):
    """Every torch layer with parameters is a symcost layer of its name, with its parameters and FLOPs."""
    shape = CASES[arch][1][0]
    model, _, _, per_module = torch_run(arch, shape)
    root = type(model).__name__
    nodes = {node.path: node for node in ours(arch, shape).nodes}
    assert all(node.count == 1 for node in nodes.values())
    checked = 0
    for path, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm)):
            continue
        assert path in nodes, f"{arch}: no layer named {path}"
        assert nodes[path].values["params"] == sum(p.numel() for p in module.parameters()), path
        assert nodes[path].values["flops"] == per_module.get(f"{root}.{path}", 0), path
        checked += 1
    for path, parameter in model.named_parameters():
        if path.endswith("relative_position_bias_table"):
            assert nodes[path].values["params"] == parameter.numel(), path
            checked += 1
    for path, module in model.named_modules():
        if isinstance(module, ShiftedWindowAttention):  # qkv, q k^T, attn v and proj
            inside = sum(node.values["flops"] for p, node in nodes.items() if p.startswith(f"{path}."))
            assert inside == per_module[f"{root}.{path}"] > 0, path
    assert checked == sum(1 for _ in model.parameters()) - sum(
        len(list(m.parameters(recurse=False))) - 1
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm)) and list(m.parameters(recurse=False))
    )


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_published_numbers(arch):
    """torchvision's num_params exactly, and its _ops GMACs as 2e9 x GMACs FLOPs rounded to 3 decimals."""
    params, gmacs = PUBLISHED[arch]
    r = evaluate(graph(arch))
    assert (r.values["N"], r.values["H"], r.values["W"]) == CASES[arch][1][0], "the defaults are the published shape"
    _, totals, _, _ = torch_run(arch, CASES[arch][1][0])
    assert r.totals["params"] == totals["params"] == params
    assert round(r.totals["flops"] / 2e9, 3) == round(totals["flops"] / 2e9, 3) == gmacs


def test_swin_stage_params_arithmetic():
    """The header's per-block arithmetic: 12C^2 + 13C + 169h per block, 8C^2 + 8C per patch merging."""
    block = {c: 12 * c * c + 13 * c + 169 * h for c, h in ((96, 3), (192, 6), (384, 12), (768, 24))}
    assert block == {96: 112_347, 192: 445_878, 384: 1_776_492, 768: 7_091_928}
    merging = sum(8 * c * c + 8 * c for c in (96, 192, 384))
    total = 4_896 + 2 * block[96] + 2 * block[192] + 6 * block[384] + 2 * block[768] + merging + 1_536 + 769_000
    assert (merging, total) == (1_553_664, 28_288_354)


def test_googlenet_block_params_arithmetic():
    """The header's Inception arithmetic: C_in*(c1 + r3 + r5 + p) + 9*(r3*c3 + r5*c5) + 2*(all outputs)."""
    blocks = {
        "3a": (192, 64, 96, 128, 16, 32, 32),
        "3b": (256, 128, 128, 192, 32, 96, 64),
        "4a": (480, 192, 96, 208, 16, 48, 64),
        "4b": (512, 160, 112, 224, 24, 64, 64),
        "4c": (512, 128, 128, 256, 24, 64, 64),
        "4d": (512, 112, 144, 288, 32, 64, 64),
        "4e": (528, 256, 160, 320, 32, 128, 128),
        "5a": (832, 256, 160, 320, 32, 128, 128),
        "5b": (832, 384, 192, 384, 48, 128, 128),
    }
    counts = {
        k: c_in * (c1 + r3 + r5 + p) + 9 * (r3 * c3 + r5 * c5) + 2 * (c1 + r3 + c3 + r5 + c5 + p)
        for k, (c_in, c1, r3, c3, r5, c5, p) in blocks.items()
    }
    assert counts == {
        "3a": 155_872,
        "3b": 340_224,
        "4a": 364_512,
        "4b": 425_232,
        "4c": 486_192,
        "4d": 573_312,
        "4e": 803_840,
        "5a": 978_944,
        "5b": 1_347_040,
    }
    stem = 9_536 + 4_224 + 110_976
    assert stem + sum(counts.values()) + 1_025_000 == 6_624_904


def test_constant_is_neither_parameter_nor_buffer():
    """A tensor the forward makes (Swin's mask) adds no parameters or buffers in torch, and none in symcost."""

    class Masked(nn.Module):
        def forward(self, attn):
            return attn + attn.new_zeros((4, 49, 49)).unsqueeze(1)

    module = Masked()
    with FlopCounterMode(display=False) as counter:
        out = module(torch.empty(4, 3, 49, 49, device=META))
    text = """
name: masked
summary: an attention mask made in the forward
inputs: {attn: [4, 3, 49, 49]}
layers:
  - {op: constant, name: mask, shape: [4, 49, 49]}
  - {op: unsqueeze, dim: 1}
  - {op: add, name: out, in: [attn, unsqueeze]}
"""
    result = evaluate(build(load_text(text, "masked.yaml")))
    assert (result.totals["params"], result.totals.get("buffers", 0), result.totals["flops"]) == (0, 0, 0)
    assert counter.get_total_flops() == 0 and not list(module.parameters()) and not list(module.buffers())
    assert result.outputs["out"] == tuple(out.shape)
    # the mask is written once (4*49*49 = 9,604) and read by the add with attn (4*3*49*49 = 28,812)
    mask = next(node for node in result.nodes if node.path == "mask")
    assert (mask.values["write"], mask.values["read"]) == (9_604, 0)
