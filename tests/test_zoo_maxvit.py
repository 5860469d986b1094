"""MaxViT-T (archs/maxvit_t.yaml) equals torch exactly.

The architecture is checked against a reference model written here with torch.nn, following torchvision's
source (torchvision is not a dependency): torchvision/models/maxvit.py (MBConv,
RelativePositionalMultiHeadAttention, SwapAxes, WindowPartition, WindowDepartition, PartitionAttentionLayer,
MaxVitLayer, MaxVitBlock, MaxVit, maxvit_t) and torchvision/ops/misc.py (Conv2dNormActivation,
SqueezeExcitation) and ops/stochastic_depth.py. torchvision builds MaxViT for one input size (the grid sizes
are fixed in __init__), so the reference is built per size, on the meta device, and counted with
FlopCounterMode on a meta input: symcost's params, buffers, FLOPs and output shape must equal torch's, at
224x224 (the weights' size) and at a second batch and size. The elements written by torch's add, mul,
activation and softmax kernels must equal symcost's elementwise counts, so a missing residual, gate, scaling
or bias add fails; the elements written by torch's copies (the clones behind reshapes of permuted views and
.contiguous()) must equal the writes of symcost's copy layers. Every torch module with parameters is a
symcost layer of the same name with the same parameters and FLOPs. The published numbers (torchvision
weights meta: num_params, and _ops in GMACs) are checked against both.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from symcost.arch import load_path
from symcost.compile import Result, evaluate
from symcost.errors import ShapeError
from symcost.shapes import Graph, build

from .torch_reference import StochasticDepth

ARCHS = Path(__file__).resolve().parent.parent / "archs"
META = torch.device("meta")


# --- torchvision/ops ------------------------------------------------------------------------------


class Conv2dNormActivation(nn.Sequential):
    """torchvision.ops.misc.Conv2dNormActivation: conv (with a bias only without a norm), norm, activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        norm_layer: Callable[..., nn.Module] | None = nn.BatchNorm2d,
        activation_layer: Callable[..., nn.Module] | None = nn.ReLU,
        bias: bool | None = None,
    ):
        if padding is None:
            padding = (kernel_size - 1) // 2
        if bias is None:
            bias = norm_layer is None
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=bias)
        ]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer())  # inplace=None: the activation's own default
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """torchvision.ops.misc.SqueezeExcitation: scale = sigmoid(fc2(activation(fc1(avgpool(x))))); scale * x."""

    def __init__(self, input_channels: int, squeeze_channels: int, activation: Callable[..., nn.Module]):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = nn.Sigmoid()

    def forward(self, input):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(input)))))
        return scale * input


# --- torchvision/models/maxvit.py -----------------------------------------------------------------


def _get_conv_output_shape(input_size: tuple[int, int], kernel_size: int, stride: int, padding: int):
    return (
        (input_size[0] - kernel_size + 2 * padding) // stride + 1,
        (input_size[1] - kernel_size + 2 * padding) // stride + 1,
    )


def _get_relative_position_index(height: int, width: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid([torch.arange(height), torch.arange(width)], indexing="ij"))
    coords_flat = torch.flatten(coords, 1)
    relative_coords = (coords_flat[:, :, None] - coords_flat[:, None, :]).permute(1, 2, 0).contiguous()
    relative_coords[:, :, 0] += height - 1
    relative_coords[:, :, 1] += width - 1
    relative_coords[:, :, 0] *= 2 * width - 1
    return relative_coords.sum(-1)


class MBConv(nn.Module):
    def __init__(
        self, in_channels, out_channels, expansion_ratio, squeeze_ratio, stride, activation_layer, norm_layer, p
    ):
        super().__init__()
        if stride != 1 or in_channels != out_channels:
            proj: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, bias=True)]
            if stride == 2:
                proj = [nn.AvgPool2d(kernel_size=3, stride=stride, padding=1), *proj]
            self.proj = nn.Sequential(*proj)
        else:
            self.proj = nn.Identity()
        mid_channels = int(out_channels * expansion_ratio)
        sqz_channels = int(out_channels * squeeze_ratio)
        self.stochastic_depth = StochasticDepth(p, mode="row") if p else nn.Identity()
        self.layers = nn.Sequential(
            OrderedDict(
                pre_norm=norm_layer(in_channels),
                conv_a=Conv2dNormActivation(
                    in_channels, mid_channels, 1, 1, 0, activation_layer=activation_layer, norm_layer=norm_layer
                ),
                conv_b=Conv2dNormActivation(
                    mid_channels,
                    mid_channels,
                    3,
                    stride,
                    1,
                    groups=mid_channels,
                    activation_layer=activation_layer,
                    norm_layer=norm_layer,
                ),
                squeeze_excitation=SqueezeExcitation(mid_channels, sqz_channels, activation=nn.SiLU),
                conv_c=nn.Conv2d(mid_channels, out_channels, kernel_size=1, bias=True),
            )
        )

    def forward(self, x):
        res = self.proj(x)
        x = self.stochastic_depth(self.layers(x))
        return res + x


class RelativePositionalMultiHeadAttention(nn.Module):
    def __init__(self, feat_dim: int, head_dim: int, max_seq_len: int):
        super().__init__()
        self.n_heads = feat_dim // head_dim
        self.head_dim = head_dim
        self.size = int(math.sqrt(max_seq_len))
        self.max_seq_len = max_seq_len
        self.to_qkv = nn.Linear(feat_dim, self.n_heads * self.head_dim * 3)
        self.scale_factor = feat_dim**-0.5
        self.merge = nn.Linear(self.head_dim * self.n_heads, feat_dim)
        self.relative_position_bias_table = nn.Parameter(
            torch.empty(((2 * self.size - 1) * (2 * self.size - 1), self.n_heads), dtype=torch.float32)
        )
        self.register_buffer("relative_position_index", _get_relative_position_index(self.size, self.size))

    def get_relative_positional_bias(self) -> torch.Tensor:
        bias_index = self.relative_position_index.view(-1)
        relative_bias = self.relative_position_bias_table[bias_index].view(self.max_seq_len, self.max_seq_len, -1)
        relative_bias = relative_bias.permute(2, 0, 1).contiguous()
        return relative_bias.unsqueeze(0)

    def forward(self, x):
        B, G, P, D = x.shape
        H, DH = self.n_heads, self.head_dim
        qkv = self.to_qkv(x)
        q, k, v = torch.chunk(qkv, 3, dim=-1)
        q = q.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4)
        k = k.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4)
        v = v.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4)
        k = k * self.scale_factor
        dot_prod = torch.einsum("B G H I D, B G H J D -> B G H I J", q, k)
        pos_bias = self.get_relative_positional_bias()
        dot_prod = F.softmax(dot_prod + pos_bias, dim=-1)
        out = torch.einsum("B G H I J, B G H J D -> B G H I D", dot_prod, v)
        out = out.permute(0, 1, 3, 2, 4).reshape(B, G, P, D)
        return self.merge(out)


class SwapAxes(nn.Module):
    def __init__(self, a: int, b: int):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return torch.swapaxes(x, self.a, self.b)


class WindowPartition(nn.Module):
    def forward(self, x, p: int):
        B, C, H, W = x.shape
        x = x.reshape(B, C, H // p, p, W // p, p)
        x = x.permute(0, 2, 4, 3, 5, 1)
        return x.reshape(B, (H // p) * (W // p), p * p, C)


class WindowDepartition(nn.Module):
    def forward(self, x, p: int, h_partitions: int, w_partitions: int):
        B, G, PP, C = x.shape
        x = x.reshape(B, h_partitions, w_partitions, p, p, C)
        x = x.permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, C, h_partitions * p, w_partitions * p)


class PartitionAttentionLayer(nn.Module):
    def __init__(
        self, in_channels, head_dim, partition_size, partition_type, grid_size, mlp_ratio, activation_layer, p
    ):
        super().__init__()
        self.n_heads = in_channels // head_dim
        self.head_dim = head_dim
        self.n_partitions = grid_size[0] // partition_size
        self.partition_type = partition_type
        self.grid_size = grid_size
        if partition_type == "window":
            self.p, self.g = partition_size, self.n_partitions
        else:
            self.p, self.g = self.n_partitions, partition_size
        self.partition_op = WindowPartition()
        self.departition_op = WindowDepartition()
        self.partition_swap = SwapAxes(-2, -3) if partition_type == "grid" else nn.Identity()
        self.departition_swap = SwapAxes(-2, -3) if partition_type == "grid" else nn.Identity()
        self.attn_layer = nn.Sequential(
            nn.LayerNorm(in_channels),
            RelativePositionalMultiHeadAttention(in_channels, head_dim, partition_size**2),
            nn.Dropout(0.0),
        )
        self.mlp_layer = nn.Sequential(
            nn.LayerNorm(in_channels),
            nn.Linear(in_channels, in_channels * mlp_ratio),
            activation_layer(),
            nn.Linear(in_channels * mlp_ratio, in_channels),
            nn.Dropout(0.0),
        )
        self.stochastic_dropout = StochasticDepth(p, mode="row")

    def forward(self, x):
        gh, gw = self.grid_size[0] // self.p, self.grid_size[1] // self.p
        assert self.grid_size[0] % self.p == 0 and self.grid_size[1] % self.p == 0
        x = self.partition_op(x, self.p)
        x = self.partition_swap(x)
        x = x + self.stochastic_dropout(self.attn_layer(x))
        x = x + self.stochastic_dropout(self.mlp_layer(x))
        x = self.departition_swap(x)
        return self.departition_op(x, self.p, gh, gw)


class MaxVitLayer(nn.Module):
    def __init__(self, in_channels, out_channels, stride, norm_layer, p, grid_size, *, partition_size, head_dim):
        super().__init__()
        attention = partial(
            PartitionAttentionLayer,
            out_channels,
            head_dim,
            partition_size,
            grid_size=grid_size,
            mlp_ratio=4,
            activation_layer=nn.GELU,
            p=p,
        )
        self.layers = nn.Sequential(
            OrderedDict(
                MBconv=MBConv(in_channels, out_channels, 4, 0.25, stride, nn.GELU, norm_layer, p),
                window_attention=attention(partition_type="window"),
                grid_attention=attention(partition_type="grid"),
            )
        )

    def forward(self, x):
        return self.layers(x)


class MaxVitBlock(nn.Module):
    def __init__(self, in_channels, out_channels, norm_layer, input_grid_size, p_stochastic, **kwargs):
        super().__init__()
        self.layers = nn.ModuleList()
        self.grid_size = _get_conv_output_shape(input_grid_size, kernel_size=3, stride=2, padding=1)
        for idx, p in enumerate(p_stochastic):
            self.layers += [
                MaxVitLayer(
                    in_channels if idx == 0 else out_channels,
                    out_channels,
                    2 if idx == 0 else 1,
                    norm_layer,
                    p,
                    self.grid_size,
                    **kwargs,
                )
            ]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class MaxVit(nn.Module):
    """maxvit_t: stem_channels 64, block_channels [64, 128, 256, 512], block_layers [2, 2, 5, 2], head_dim 32,
    stochastic_depth_prob 0.2, partition_size 7; built for one input_size (224x224 with the weights)."""

    def __init__(
        self,
        input_size: tuple[int, int] = (224, 224),
        stem_channels: int = 64,
        partition_size: int = 7,
        block_channels: tuple[int, ...] = (64, 128, 256, 512),
        block_layers: tuple[int, ...] = (2, 2, 5, 2),
        head_dim: int = 32,
        stochastic_depth_prob: float = 0.2,
        num_classes: int = 1000,
    ):
        super().__init__()
        norm_layer = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)
        size = _get_conv_output_shape(input_size, 3, 2, 1)
        for _ in block_channels:  # torchvision's _make_block_input_shapes check
            size = _get_conv_output_shape(size, 3, 2, 1)
            if size[0] % partition_size or size[1] % partition_size:
                raise ValueError(f"input size {input_size}: a block's map {size} is not whole partitions")
        self.stem = nn.Sequential(
            Conv2dNormActivation(3, stem_channels, 3, stride=2, norm_layer=norm_layer, activation_layer=nn.GELU),
            Conv2dNormActivation(stem_channels, stem_channels, 3, stride=1, norm_layer=None, activation_layer=None),
        )
        input_size = _get_conv_output_shape(input_size, kernel_size=3, stride=2, padding=1)
        self.blocks = nn.ModuleList()
        in_channels = [stem_channels, *block_channels[:-1]]
        total = sum(block_layers)
        p_stochastic = [stochastic_depth_prob * i / (total - 1) for i in range(total)]  # np.linspace
        p_idx = 0
        for in_channel, out_channel, num_layers in zip(in_channels, block_channels, block_layers, strict=True):
            self.blocks.append(
                MaxVitBlock(
                    in_channel,
                    out_channel,
                    norm_layer,
                    input_size,
                    p_stochastic[p_idx : p_idx + num_layers],
                    partition_size=partition_size,
                    head_dim=head_dim,
                )
            )
            input_size = self.blocks[-1].grid_size
            p_idx += num_layers
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.LayerNorm(block_channels[-1]),
            nn.Linear(block_channels[-1], block_channels[-1]),
            nn.Tanh(),
            nn.Linear(block_channels[-1], num_classes, bias=False),
        )

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(x)


# --- the checks -----------------------------------------------------------------------------------

#: (N, H, W): the weights' size first (torchvision MaxVit_T_Weights.IMAGENET1K_V1: crop 224, min_size 224); then
#: 445x445, which torchvision accepts (stem 223, then blocks on 112, 56, 28, 14: whole 7x7 partitions): odd maps
#: rounded up by the stride-2 conv and avgpool, two 7x7 windows a side in the last block, a 2x2 grid there
SHAPES = [(1, 224, 224), (2, 445, 445)]

#: torchvision/models/maxvit.py, MaxVit_T_Weights.IMAGENET1K_V1 meta: num_params, _ops (GMACs)
PUBLISHED = (30_919_624, 5.558)


class Counter(TorchDispatchMode):
    """Output elements of the aten ops behind symcost's elementwise 'add', 'mul', 'activation' and 'softmax', and
    the elements written by aten.clone (reshapes of permuted views, .contiguous()) outside torch.einsum."""

    CATEGORIES = {
        "aten.add.Tensor": ("add", 1),  # residual adds, the relative position bias
        "aten.mul.Tensor": ("mul", 1),  # the squeeze-excitation gate, k * scale_factor
        "aten.gelu.default": ("activation", 1),
        "aten.silu.default": ("activation", 1),
        "aten.sigmoid.default": ("activation", 1),
        "aten.tanh.default": ("activation", 1),
        "aten._softmax.default": ("softmax", 3),  # symcost: exp, add, divide per element
    }

    def __init__(self):
        super().__init__()
        self.counts = {"add": 0, "mul": 0, "activation": 0, "softmax": 0}
        self.copied = 0
        self.in_einsum = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        entry = self.CATEGORIES.get(str(func))
        if entry is not None:
            self.counts[entry[0]] += entry[1] * out.numel()
        if str(func) == "aten.clone.default" and not self.in_einsum:
            self.copied += out.numel()
        return out


class EinsumFlag(torch.overrides.TorchFunctionMode):
    """Marks the ops torch.einsum runs: its operand folding (reshapes that copy q, k and v into bmm's layout) is
    not a symcost layer (archs/maxvit_t.yaml notes)."""

    def __init__(self, counter: Counter):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is not torch.einsum:
            return func(*args, **(kwargs or {}))
        self.counter.in_einsum = True
        try:
            return func(*args, **(kwargs or {}))
        finally:
            self.counter.in_einsum = False


@functools.cache
def reference(h: int, w: int) -> nn.Module:
    with META:
        return MaxVit((h, w)).eval()


@functools.cache
def torch_counts(shape: tuple[int, int, int]) -> tuple[dict, tuple[int, ...], dict]:
    n, h, w = shape
    model = reference(h, w)
    counter = Counter()
    with FlopCounterMode(display=False) as flops, EinsumFlag(counter), counter:
        y = model(torch.empty(n, 3, h, w, device=META))
    totals = {
        "params": sum(p.numel() for p in model.parameters()),
        "buffers": sum(b.numel() for b in model.buffers()),
        "flops": flops.get_total_flops(),
        **{f"elementwise.{k}": v for k, v in counter.counts.items()},
        "copied": counter.copied,
    }
    per_module = {name: sum(ops.values()) for name, ops in flops.get_flop_counts().items()}
    return totals, tuple(y.shape), per_module


@functools.cache
def graph(n: int, h: int, w: int) -> Graph:
    """The copies a reshape makes depend on the map sizes (``when:`` on H and W), so the graph holds for one size
    anyway: built at its numbers (the symbolic build prints its deferred divisibility checks, seconds more)."""
    return build(load_path(ARCHS / "maxvit_t.yaml"), {"N": n, "H": h, "W": w}, numeric=True)


@functools.cache
def ours(shape: tuple[int, int, int]) -> Result:
    n, h, w = shape
    return evaluate(graph(n, h, w), {"N": n, "H": h, "W": w})


def _copies(path: str, count: int) -> list[str]:
    """A repeated node's path ``blocks.2.layers.1-4.x`` as the paths of its copies."""
    parts = path.split(".")
    for i, part in enumerate(parts):
        first, dash, last = part.partition("-")
        if dash and first.isdigit() and last.isdigit():
            assert int(last) - int(first) + 1 == count, path
            return [".".join([*parts[:i], str(k), *parts[i + 1 :]]) for k in range(int(first), int(last) + 1)]
    assert count == 1, path
    return [path]


@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_maxvit_equals_torch(shape):
    totals, out_shape, _ = torch_counts(shape)
    r = ours(shape)
    got = {key: r.totals.get(key, 0) for key in totals if key != "copied"}
    got["copied"] = sum(node.values["write"] for node in r.nodes if node.op == "contiguous")
    assert got == totals, f"maxvit_t at N, H, W = {shape}"
    assert list(r.outputs.values()) == [out_shape]


def test_layers_name_torch_modules():
    """Every torch module with parameters is a symcost layer of its name, with its parameters and FLOPs; each
    attention's FLOPs (to_qkv, the two einsum bmm, merge) are its layers' sum."""
    shape = SHAPES[0]
    _, _, per_module = torch_counts(shape)
    model = reference(*shape[1:])
    root = type(model).__name__
    nodes = {}
    for node in ours(shape).nodes:
        for path in _copies(node.path, node.count):
            nodes[path] = (node.values["params"] // node.count, node.values["flops"] // node.count)
    checked = 0
    for path, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm)):
            assert path in nodes, f"no layer named {path}"
            assert nodes[path] == (sum(p.numel() for p in module.parameters()), per_module.get(f"{root}.{path}", 0))
            checked += len(list(module.parameters()))
        if isinstance(module, RelativePositionalMultiHeadAttention):
            table = f"{path}.relative_position_bias_table"
            assert nodes[table][0] == module.relative_position_bias_table.numel(), table
            checked += 1
            inside = sum(flops for p, (_, flops) in nodes.items() if p.startswith(f"{path}."))
            assert inside == per_module[f"{root}.{path}"] > 0, path
    assert checked == len(list(model.parameters()))


def test_published_numbers():
    """torchvision's num_params exactly, and its _ops (GMACs) = FLOPs / 2e9 rounded to 3 decimals, at 224."""
    params, gmacs = PUBLISHED
    r = evaluate(build(load_path(ARCHS / "maxvit_t.yaml"), numeric=True))
    assert (r.values["N"], r.values["H"], r.values["W"]) == SHAPES[0], "the file's defaults are the published shape"
    assert r.totals["params"] == params
    assert round(r.totals["flops"] / 2e9, 3) == gmacs
    totals, _, _ = torch_counts(SHAPES[0])
    assert (totals["params"], round(totals["flops"] / 2e9, 3)) == (params, gmacs)


def test_non_square_refused_as_torch_refuses():
    """torchvision partitions the grid by the height (n_partitions = grid_size[0] // 7): at 224x448 the grid
    attention's 98 cells meet a 49x49 bias, and torch's add fails where symcost's does."""
    with META, pytest.raises(RuntimeError, match=r"broadcastable to \[1, 64, 2, 98, 98\]"):
        MaxVit((224, 448)).eval()(torch.empty(1, 3, 224, 448, device=META))
    with pytest.raises(ShapeError, match="do not broadcast: dim 4 is 98 vs 49"):
        ours((1, 224, 448))
