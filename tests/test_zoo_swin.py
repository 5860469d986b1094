"""The Swin family (archs/swin_t.yaml with swin_s, swin_b; archs/swin_v2_t.yaml with swin_v2_s, swin_v2_b) equals torch.

Each model is checked against a reference written here with torch.nn, following torchvision's current
source (torchvision/models/swin_transformer.py: SwinTransformer with SwinTransformerBlock and PatchMerging,
or SwinTransformerBlockV2 and PatchMergingV2; torchvision is not a dependency), built on the meta device and
counted with FlopCounterMode on a meta input: params, buffers, FLOPs, output shape and the elements written by
the elementwise kernels (adds, muls, activations, softmax, norms) must be equal, at the weights' input size, and
for the tiny models at a second batch and size where stage maps are padded, odd, shifted along one side only and
several windows wide in the last stage. symcost builds each graph at the values it evaluates (the rolls, masks
and copies follow the map sizes, as torchvision decides them), so each attention's roll, window-partition copy,
window-reverse copy and unpadding copy must be where torch's reference makes them. Every torch module with
parameters, every parameter and every buffer is a symcost layer of the same name with the same count; each
attention's FLOPs are its layers'. The published numbers (torchvision weights meta: num_params, _ops in GMACs)
are checked against both.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from symcost.arch import load_path
from symcost.compile import Result, evaluate
from symcost.shapes import build

from .torch_reference import Permute, StochasticDepth
from .torch_reference import torch_counts as measure

ARCHS = Path(__file__).resolve().parent.parent / "archs"
META = torch.device("meta")


# --- torchvision.models.swin_transformer ------------------------------------------------------------


def _patch_merging_pad(x):
    h, w, _ = x.shape[-3:]
    x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
    return torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)


class PatchMerging(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        return self.reduction(self.norm(_patch_merging_pad(x)))


class PatchMergingV2(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim)  # reduction, then norm

    def forward(self, x):
        return self.norm(self.reduction(_patch_merging_pad(x)))


def shifted_window_attention(x_in, attn: ShiftedWindowAttention, bias, logit_scale=None):
    """torchvision's shifted_window_attention (dropout 0, eval), step by step. It notes in ``attn.made`` whether
    it rolled and whether the window partition, the window reverse and the unpadding copied."""
    window, heads, qkv_bias = attn.window, attn.heads, attn.qkv.bias
    b, h, w, c = x_in.shape
    pad_r = (window[1] - w % window[1]) % window[1]
    pad_b = (window[0] - h % window[0]) % window[0]
    x = F.pad(x_in, (0, 0, 0, pad_r, 0, pad_b))
    _, ph, pw, _ = x.shape
    shift_size = attn.shift.copy()
    if window[0] >= ph:
        shift_size[0] = 0
    if window[1] >= pw:
        shift_size[1] = 0
    if sum(shift_size) > 0:
        x = torch.roll(x, shifts=(-shift_size[0], -shift_size[1]), dims=(1, 2))
    nw = (ph // window[0]) * (pw // window[1])
    x = x.view(b, ph // window[0], window[0], pw // window[1], window[1], c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b * nw, window[0] * window[1], c)
    partition_copied = not x._is_view()
    if logit_scale is not None and qkv_bias is not None:
        qkv_bias = qkv_bias.clone()
        length = qkv_bias.numel() // 3
        qkv_bias[length : 2 * length].zero_()
    t = F.linear(x, attn.qkv.weight, qkv_bias)
    t = t.reshape(x.size(0), x.size(1), 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = t[0], t[1], t[2]
    if logit_scale is not None:
        scores = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        scores = scores * torch.clamp(logit_scale, max=math.log(100.0)).exp()
    else:
        q = q * (c // heads) ** -0.5
        scores = q.matmul(k.transpose(-2, -1))
    scores = scores + bias
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
        scores = scores.view(x.size(0) // nw, nw, heads, x.size(1), x.size(1))
        scores = (scores + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, x.size(1), x.size(1))
    scores = F.softmax(scores, dim=-1)
    x = scores.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), c)
    x = F.linear(x, attn.proj.weight, attn.proj.bias)
    x = x.view(b, ph // window[0], pw // window[1], window[0], window[1], c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
    reverse_copied = not x._is_view()
    if sum(shift_size) > 0:
        x = torch.roll(x, shifts=(shift_size[0], shift_size[1]), dims=(1, 2))
    x = x[:, :h, :w, :]
    attn.made = {
        "roll": sum(shift_size) > 0,
        "partition_copy": partition_copied,
        "reverse_copy": reverse_copied,
        "unpad": not x.is_contiguous(),
    }
    return x.contiguous()


def _relative_position_index(window: list[int]) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(window[0]), torch.arange(window[1]), indexing="ij"))
    flat = torch.flatten(coords, 1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window[0] - 1
    rel[:, :, 1] += window[1] - 1
    rel[:, :, 0] *= 2 * window[1] - 1
    return rel.sum(-1).flatten()


def _gather_bias(table, index, window: list[int]):  # torchvision's _get_relative_position_bias
    n = window[0] * window[1]
    return table[index].view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)


class ShiftedWindowAttention(nn.Module):
    def __init__(self, dim: int, window: list[int], shift: list[int], heads: int):
        super().__init__()
        self.window, self.shift, self.heads = window, shift, heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.define_relative_position_bias_table()
        self.register_buffer("relative_position_index", _relative_position_index(window))

    def define_relative_position_bias_table(self):
        size = (2 * self.window[0] - 1) * (2 * self.window[1] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(size, self.heads))

    def forward(self, x):
        bias = _gather_bias(self.relative_position_bias_table, self.relative_position_index, self.window)
        return shifted_window_attention(x, self, bias)


class ShiftedWindowAttentionV2(ShiftedWindowAttention):
    def __init__(self, dim: int, window: list[int], shift: list[int], heads: int):
        super().__init__(dim, window, shift, heads)
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((heads, 1, 1))))
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, 512, bias=True), nn.ReLU(inplace=True), nn.Linear(512, heads, bias=False)
        )
        # torchvision zeroes qkv.bias[dim:2*dim] here; it stays a parameter of 3*dim values

    def define_relative_position_bias_table(self):  # the relative_coords_table buffer, no parameter table
        table = torch.stack(
            torch.meshgrid(
                torch.arange(-(self.window[0] - 1), self.window[0], dtype=torch.float32),
                torch.arange(-(self.window[1] - 1), self.window[1], dtype=torch.float32),
                indexing="ij",
            )
        )
        table = table.permute(1, 2, 0).contiguous().unsqueeze(0)  # 1, 2*Wh-1, 2*Ww-1, 2
        table[:, :, :, 0] /= self.window[0] - 1
        table[:, :, :, 1] /= self.window[1] - 1
        table *= 8
        table = torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0
        self.register_buffer("relative_coords_table", table)

    def forward(self, x):
        bias = _gather_bias(
            self.cpb_mlp(self.relative_coords_table).view(-1, self.heads), self.relative_position_index, self.window
        )
        return shifted_window_attention(x, self, 16 * torch.sigmoid(bias), self.logit_scale)


def _mlp(
    dim: int,
) -> nn.Sequential:  # torchvision.ops.misc.MLP(dim, [4*dim, dim], activation_layer=nn.GELU, dropout=0.0)
    return nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim), nn.Dropout(0.0))


class SwinTransformerBlock(nn.Module):
    attention = ShiftedWindowAttention

    def __init__(self, dim: int, heads: int, window: list[int], shift: list[int], sd_prob: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = self.attention(dim, window, shift, heads)
        self.stochastic_depth = StochasticDepth(sd_prob)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _mlp(dim)

    def forward(self, x):
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth(self.mlp(self.norm2(x)))


class SwinTransformerBlockV2(SwinTransformerBlock):
    attention = ShiftedWindowAttentionV2

    def forward(self, x):  # post-norm
        x = x + self.stochastic_depth(self.norm1(self.attn(x)))
        return x + self.stochastic_depth(self.norm2(self.mlp(x)))


class SwinTransformer(nn.Module):
    def __init__(self, embed_dim, depths, heads, window, sd_prob, block=SwinTransformerBlock, merging=PatchMerging):
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
                blocks.append(block(dim, heads[stage], list(window), shift, sd_prob * block_id / (total - 1)))
                block_id += 1
            layers.append(nn.Sequential(*blocks))
            if stage < len(depths) - 1:
                layers.append(merging(dim))
        self.features = nn.Sequential(*layers)
        features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(features)
        self.permute = Permute([0, 3, 1, 2])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.head = nn.Linear(features, 1000)

    def forward(self, x):
        return self.head(self.flatten(self.avgpool(self.permute(self.norm(self.features(x))))))


V2 = {"block": SwinTransformerBlockV2, "merging": PatchMergingV2}
#: the builders' arguments (torchvision swin_t, swin_s, ...): embed_dim, depths, num_heads, window_size, stochastic_depth_prob
MODELS = {
    "swin_t": lambda: SwinTransformer(96, [2, 2, 6, 2], [3, 6, 12, 24], [7, 7], 0.2),
    "swin_s": lambda: SwinTransformer(96, [2, 2, 18, 2], [3, 6, 12, 24], [7, 7], 0.3),
    "swin_b": lambda: SwinTransformer(128, [2, 2, 18, 2], [4, 8, 16, 32], [7, 7], 0.5),
    "swin_v2_t": lambda: SwinTransformer(96, [2, 2, 6, 2], [3, 6, 12, 24], [8, 8], 0.2, **V2),
    "swin_v2_s": lambda: SwinTransformer(96, [2, 2, 18, 2], [3, 6, 12, 24], [8, 8], 0.3, **V2),
    "swin_v2_b": lambda: SwinTransformer(128, [2, 2, 18, 2], [4, 8, 16, 32], [8, 8], 0.5, **V2),
}

#: arch -> shapes (N, H, W); the first is the weights' crop size, where the published numbers hold.
#: swin_t at 2x400x200: stage maps 100x50, 50x25, 25x13, 13x7, padded to 105x56, 56x28, 28x14, 14x7: odd maps for
#: patch merging, the last stage two windows high and one wide (shifted along H only, no partition copy, a copy to
#: unpad H at N = 2). swin_v2_t at 2x260x300: 65x75, 33x38, 17x19, 9x10, padded to 72x80, 40x40, 24x24, 16x16.
CASES = {
    "swin_t": [(1, 224, 224), (2, 400, 200)],
    "swin_s": [(1, 224, 224), (1, 320, 256)],
    "swin_b": [(1, 224, 224), (1, 256, 320)],
    "swin_v2_t": [(1, 256, 256), (2, 260, 300)],
    "swin_v2_s": [(1, 256, 256), (1, 288, 224)],
    "swin_v2_b": [(1, 256, 256), (1, 224, 320)],
}

#: torchvision/models/swin_transformer.py weights meta (IMAGENET1K_V1 of each): (num_params, _ops in GMACs)
PUBLISHED = {
    "swin_t": (28_288_354, 4.491),
    "swin_s": (49_606_258, 8.741),
    "swin_b": (87_768_224, 15.431),
    "swin_v2_t": (28_351_570, 5.94),
    "swin_v2_s": (49_737_442, 11.546),
    "swin_v2_b": (87_930_848, 20.325),
}


class ElementwiseCounter(TorchDispatchMode):
    """Elements written by the aten ops behind symcost's elementwise categories, at symcost's per-element costs."""

    CATEGORIES = {
        "aten.add.Tensor": ("add", 1),
        "aten.mul.Tensor": ("mul", 1),
        "aten.relu.default": ("activation", 1),
        "aten.relu_.default": ("activation", 1),
        "aten.gelu.default": ("activation", 1),
        "aten.sigmoid.default": ("activation", 1),
        "aten.exp.default": ("activation", 1),
        "aten.clamp.default": ("activation", 1),
        "aten._softmax.default": ("softmax", 3),  # exp, add, divide per element
        "aten.native_layer_norm.default": ("norm", 4),  # normalize 2, weight 1, bias 1 per element
        "aten.div.Tensor": ("norm", 1),  # F.normalize's divide by the norm
    }

    def __init__(self):
        super().__init__()
        self.counts = {"add": 0, "mul": 0, "activation": 0, "softmax": 0, "norm": 0}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        entry = self.CATEGORIES.get(str(func))
        if entry is not None:
            first = out[0] if isinstance(out, tuple) else out
            self.counts[entry[0]] += entry[1] * first.numel()
        return out


@functools.cache
def graph(arch: str, shape: tuple[int, int, int]):
    """The graph at N, H, W = shape: built with those numbers, as `symcost eval --set` builds it."""
    return build(load_path(ARCHS / f"{arch}.yaml"), dict(zip(("N", "H", "W"), shape)), numeric=True)


def ours(arch: str, shape: tuple[int, int, int]) -> Result:
    return evaluate(graph(arch, shape), dict(zip(("N", "H", "W"), shape)))


@functools.cache
def torch_run(arch: str, shape: tuple[int, int, int]):
    with META:
        model = MODELS[arch]().eval()
    n, h, w = shape
    return model, *measure(model, torch.empty(n, 3, h, w, device=META), counter=ElementwiseCounter())


PAIRS = [(arch, shape) for arch, shapes in CASES.items() for shape in shapes]


@pytest.mark.parametrize(("arch", "shape"), PAIRS, ids=[f"{a}-{'x'.join(map(str, s))}" for a, s in PAIRS])
def test_arch_equals_torch(arch, shape):
    _, totals, out_shape, _ = torch_run(arch, shape)
    r = ours(arch, shape)
    assert {key: r.totals.get(key, 0) for key in totals} == totals, f"{arch} at N, H, W = {shape}"
    assert list(r.outputs.values()) == [out_shape]


@pytest.mark.parametrize(("arch", "shape"), PAIRS, ids=[f"{a}-{'x'.join(map(str, s))}" for a, s in PAIRS])
def test_layers_name_torch_modules(arch, shape):
    """Every torch module with parameters, every parameter and buffer is a symcost layer of its name and count;
    each attention's FLOPs are its layers', and its roll and copies are where torch makes them."""
    model, _, _, per_module = torch_run(arch, shape)
    nodes = {node.path: node for node in ours(arch, shape).nodes}
    assert all(node.count == 1 for node in nodes.values())
    for path, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.LayerNorm)):
            assert nodes[path].values["params"] == sum(p.numel() for p in module.parameters()), path
            if not path.endswith(("attn.qkv", "attn.proj")):  # called as F.linear(x, qkv.weight, ...): attn's FLOPs
                assert nodes[path].values["flops"] == per_module.get(f"SwinTransformer.{path}", 0), path
    covered = {
        f"{path}.{key}"
        for path, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.LayerNorm))
        for key, _ in m.named_parameters(recurse=False)
    }
    for path, parameter in model.named_parameters():
        if path not in covered:  # relative_position_bias_table (v1), logit_scale (v2)
            assert nodes[path].values["params"] == parameter.numel(), path
    for path, buffer in model.named_buffers():  # relative_position_index, relative_coords_table (v2)
        assert nodes[path].values["buffers"] == buffer.numel(), path
    for path, module in model.named_modules():
        if isinstance(module, ShiftedWindowAttention):
            inside = {p: node for p, node in nodes.items() if p.startswith(f"{path}.")}
            assert sum(node.values["flops"] for node in inside.values()) == per_module[f"SwinTransformer.{path}"] > 0
            made = {key: f"{path}.{key}" in inside for key in module.made}
            assert made == module.made, path


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_published_numbers(arch):
    """torchvision's num_params exactly, and its _ops GMACs as 2e9 x GMACs FLOPs rounded to 3 decimals."""
    params, gmacs = PUBLISHED[arch]
    shape = CASES[arch][0]
    variables = load_path(ARCHS / f"{arch}.yaml").variables
    assert tuple(variables[name].default for name in ("N", "H", "W")) == shape, "the defaults are the weights' size"
    r = ours(arch, shape)
    _, totals, _, _ = torch_run(arch, shape)
    assert r.totals["params"] == totals["params"] == params
    assert round(r.totals["flops"] / 2e9, 3) == round(totals["flops"] / 2e9, 3) == gmacs


def test_block_params_arithmetic():
    """The headers' arithmetic: v1 blocks 12C^2 + 13C + 169h and merging 8C^2 + 8C; v2 blocks
    12C^2 + 13C + 513h + 1536 and merging 8C^2 + 4C; stem 48C + 3C, final norm 16C, head 8C*1000 + 1000."""

    def total(embed, depths, heads, block, merging):
        dims = [embed * 2**i for i in range(4)]
        stages = sum(d * block(c, h) for c, d, h in zip(dims, depths, heads))
        return 51 * embed + stages + sum(merging(c) for c in dims[:3]) + 16 * embed + 8 * embed * 1000 + 1000

    def v1(c, h):
        return 12 * c * c + 13 * c + 169 * h

    def v2(c, h):
        return 12 * c * c + 13 * c + 513 * h + 1536

    def m1(c):
        return 8 * c * c + 8 * c

    def m2(c):
        return 8 * c * c + 4 * c

    small, base = ([3, 6, 12, 24], 96), ([4, 8, 16, 32], 128)
    assert total(96, [2, 2, 6, 2], small[0], v1, m1) == 28_288_354
    assert total(96, [2, 2, 18, 2], small[0], v1, m1) == 49_606_258
    assert total(128, [2, 2, 18, 2], base[0], v1, m1) == 87_768_224
    assert total(96, [2, 2, 6, 2], small[0], v2, m2) == 28_351_570
    assert total(96, [2, 2, 18, 2], small[0], v2, m2) == 49_737_442
    assert total(128, [2, 2, 18, 2], base[0], v2, m2) == 87_930_848
    assert (v2(96, 3), v2(384, 12), v2(1024, 32), m2(96) + m2(192) + m2(384)) == (
        114_915,
        1_782_156,
        12_614_176,
        1_550_976,
    )


def test_family_variables_are_the_builders():
    """swin_s/swin_b and the v2 siblings only re-default the family's variables; a deeper stage than the
    18 blocks the stage block writes is refused, not cut short."""
    t = load_path(ARCHS / "swin_t.yaml")
    b = load_path(ARCHS / "swin_b.yaml")
    assert (t.family, b.family, load_path(ARCHS / "swin_v2_b.yaml").family) == ("swin", "swin", "swin_v2")
    assert b.layers == t.layers and b.blocks == t.blocks
    with pytest.raises(Exception, match="more_than_18_blocks"):
        build(t, {"depth_3": 20}, numeric=True)
    deeper = evaluate(build(t, {"depth_3": 8}, numeric=True), {"depth_3": 8})
    assert deeper.totals["params"] == 28_288_354 + 2 * 1_776_492
