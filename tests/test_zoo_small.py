"""ShuffleNetV2 x1.0, SqueezeNet 1.1 and DenseNet-121 equal torch exactly.

Each reference below is written with torch.nn following torchvision's source (torchvision.models.shufflenetv2,
squeezenet and densenet; torchvision is not a dependency), with its module names and forward: ShuffleNetV2's
chunk / cat / channel_shuffle, SqueezeNet's Fire cat and ceil_mode pools, DenseNet's torch.cat of the whole
feature list in every dense layer and at every block's end. Built on the meta device and counted with
FlopCounterMode on a meta input, at the published 1x3x224x224 and at a batch-2 odd size: symcost's params,
buffers, FLOPs and output shape must equal torch's, and so must the elements written by torch's add and
ReLU kernels (symcost's elementwise 'add' and 'activation'). The copies are checked as well: the elements that
aten.cat and aten.clone (ShuffleNet's .contiguous()) write must equal the writes of symcost's cat, concat,
channel_shuffle and contiguous layers, and there must be as many aten.cat calls as cat layers; a DenseNet
written as a running concat (one cat per layer, of the previous cat and the new features) fails this.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from symcost.arch import load_path
from symcost.compile import Result, evaluate
from symcost.shapes import Graph, build
from tests.test_archs_cnn import ElementwiseCounter, _copies

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ROOT / "archs"
META = torch.device("meta")


# --- torchvision.models.shufflenetv2 ------------------------------------------------------------


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    batchsize, num_channels, height, width = x.size()
    x = x.view(batchsize, groups, num_channels // groups, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


class ShuffleInvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int):
        super().__init__()
        self.stride = stride
        branch_features = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, bias=False, groups=inp),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch_features, 1, 1, 0, bias=False),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch_features, branch_features, 1, 1, 0, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
            nn.Conv2d(branch_features, branch_features, 3, stride, 1, bias=False, groups=branch_features),
            nn.BatchNorm2d(branch_features),
            nn.Conv2d(branch_features, branch_features, 1, 1, 0, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, stages_repeats: list[int], stages_out_channels: list[int], num_classes: int = 1000):
        super().__init__()
        input_channels = 3
        output_channels = stages_out_channels[0]
        self.conv1 = nn.Sequential(
            nn.Conv2d(input_channels, output_channels, 3, 2, 1, bias=False),
            nn.BatchNorm2d(output_channels),
            nn.ReLU(inplace=True),
        )
        input_channels = output_channels
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for name, repeats, output_channels in zip(
            ["stage2", "stage3", "stage4"], stages_repeats, stages_out_channels[1:]
        ):
            seq = [ShuffleInvertedResidual(input_channels, output_channels, 2)]
            seq += [ShuffleInvertedResidual(output_channels, output_channels, 1) for _ in range(repeats - 1)]
            setattr(self, name, nn.Sequential(*seq))
            input_channels = output_channels
        output_channels = stages_out_channels[-1]
        self.conv5 = nn.Sequential(
            nn.Conv2d(input_channels, output_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(output_channels),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(output_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean([2, 3]))


# --- torchvision.models.squeezenet --------------------------------------------------------------


class Fire(nn.Module):
    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


class SqueezeNet11(nn.Module):
    """SqueezeNet(version="1_1")."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(128, 32, 128, 128),
            Fire(256, 32, 128, 128),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
            Fire(512, 64, 256, 256),
        )
        final_conv = nn.Conv2d(512, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


# --- torchvision.models.densenet ----------------------------------------------------------------


class _DenseLayer(nn.Module):
    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)

    def forward(self, prev_features: list[Tensor]) -> Tensor:
        # bn_function: torch.cat of the whole list, every layer (drop_rate 0: no dropout)
        bottleneck_output = self.conv1(self.relu1(self.norm1(torch.cat(prev_features, 1))))
        return self.conv2(self.relu2(self.norm2(bottleneck_output)))


class _DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers: int, num_input_features: int, bn_size: int, growth_rate: int):
        super().__init__()
        for i in range(num_layers):
            self.add_module(
                f"denselayer{i + 1}", _DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size)
            )

    def forward(self, init_features: Tensor) -> Tensor:
        features = [init_features]
        for _, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, num_input_features: int, num_output_features: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    def __init__(
        self,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        num_classes: int = 1000,
    ):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv0", nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                    ("norm0", nn.BatchNorm2d(num_init_features)),
                    ("relu0", nn.ReLU(inplace=True)),
                    ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
                ]
            )
        )
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(num_layers, num_features, bn_size, growth_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            num_features = num_features + num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(num_features, num_features // 2))
                num_features = num_features // 2
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.features(x), inplace=True)
        out = torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1)
        return self.classifier(out)


# --- the cases -----------------------------------------------------------------------------------

#: arch -> (torch reference factory, shapes (N, H, W); the first is the published 1x3x224x224)
CASES: dict[str, tuple[Callable[[], nn.Module], list[tuple[int, int, int]]]] = {
    # 250x199: stages 125 -> 63 -> 32 -> 16 -> 8 (and 100 -> 50 -> 25 -> 13 -> 7), odd maps under stride 2
    "shufflenet_v2_x1_0": (lambda: ShuffleNetV2([4, 8, 4], [24, 116, 232, 464, 1024]), [(1, 224, 224), (2, 250, 199)]),
    # 230x197: conv 114x98, ceil-mode pools 57x49 -> 28x24 -> 14x12 (ceil_mode keeps the last window at 57 and 49)
    "squeezenet1_1": (SqueezeNet11, [(1, 224, 224), (2, 230, 197)]),
    # 250x199: 63x50 after pool0, transitions floor 63 -> 31 -> 15 -> 7 and 50 -> 25 -> 12 -> 6
    "densenet121": (DenseNet, [(1, 224, 224), (2, 250, 199)]),
}

#: torchvision weights meta (torchvision/models/<file>.py, IMAGENET1K_V1): num_params, and _ops in GMACs
PUBLISHED = {
    # shufflenetv2.py ShuffleNet_V2_X1_0_Weights: "num_params": 2278604, "_ops": 0.145
    "shufflenet_v2_x1_0": (2_278_604, 0.145),
    # squeezenet.py SqueezeNet1_1_Weights: "num_params": 1235496, "_ops": 0.349
    "squeezenet1_1": (1_235_496, 0.349),
    # densenet.py DenseNet121_Weights: "num_params": 7978856, "_ops": 2.834
    "densenet121": (7_978_856, 2.834),
}

#: FlopCounterMode FLOPs at 1x3x224x224, from the MAC arithmetic in each file's header (2 x MACs)
PUBLISHED_FLOPS = {
    "shufflenet_v2_x1_0": 2 * 144_907_992,
    "squeezenet1_1": 2 * 349_151_936,
    "densenet121": 2 * 2_834_161_664,
}

COPY_OPS = {"aten.cat.default", "aten.clone.default"}
SYMCOST_COPY_LAYERS = {"cat", "concat", "channel_shuffle", "contiguous"}


class CopyCounter(TorchDispatchMode):
    """Elements written by torch's copying shape ops (cat, and the clone behind .contiguous()), and cat calls."""

    def __init__(self):
        super().__init__()
        self.written = 0
        self.cat_calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = str(func)
        if name in COPY_OPS:
            self.written += out.numel()
            self.cat_calls += name == "aten.cat.default"
        return out


@functools.cache
def graph(arch: str) -> Graph:
    return build(load_path(ARCHS / f"{arch}.yaml"))


@functools.cache
def reference(arch: str) -> nn.Module:
    with META:
        return CASES[arch][0]().eval()


@functools.cache
def torch_counts(arch: str, shape: tuple[int, int, int]) -> tuple[dict, tuple[int, ...], dict]:
    model = reference(arch)
    n, h, w = shape
    x = torch.empty(n, 3, h, w, device=META)
    with FlopCounterMode(display=False) as counter, ElementwiseCounter() as elementwise, CopyCounter() as copies:
        y = model(x)
    totals = {
        "params": sum(p.numel() for p in model.parameters()),
        "buffers": sum(b.numel() for b in model.buffers()),
        "flops": counter.get_total_flops(),
        **{f"elementwise.{k}": v for k, v in elementwise.counts.items()},
        "copy_written": copies.written,
        "cat_calls": copies.cat_calls,
    }
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    return totals, tuple(y.shape), per_module


@functools.cache
def ours(arch: str, shape: tuple[int, int, int] | None = None) -> Result:
    if shape is None:
        return evaluate(graph(arch))
    n, h, w = shape
    return evaluate(graph(arch), {"N": n, "H": h, "W": w})


def _our_totals(r: Result, keys) -> dict:
    copies = [node for node in r.nodes if node.op in SYMCOST_COPY_LAYERS]
    derived = {
        "copy_written": sum(node.values["write"] for node in copies),
        "cat_calls": sum(node.count for node in copies if node.op in {"cat", "concat"}),
    }
    return {key: derived[key] if key in derived else r.totals.get(key, 0) for key in keys}


PAIRS = [(arch, shape) for arch, (_, shapes) in CASES.items() for shape in shapes]


@pytest.mark.parametrize(("arch", "shape"), PAIRS, ids=[f"{a}-{'x'.join(map(str, s))}" for a, s in PAIRS])
def test_arch_equals_torch(arch, shape):
    totals, out_shape, _ = torch_counts(arch, shape)
    r = ours(arch, shape)
    assert _our_totals(r, totals) == totals, f"{arch} at N, H, W = {shape}"
    assert list(r.outputs.values()) == [out_shape]


@pytest.mark.parametrize("arch", list(CASES))
def test_layers_name_torch_modules(arch):
    """Every layer with parameters or FLOPs is the torch module of the same name, with the same counts."""
    shape = CASES[arch][1][0]
    _, _, per_module = torch_counts(arch, shape)
    model = reference(arch)
    root = type(model).__name__
    modules = dict(model.named_modules())
    checked = 0
    for node in ours(arch, shape).nodes:
        if not (node.values["params"] or node.values["flops"]):
            continue
        for path in _copies(node.path, node.count):
            assert path in modules, f"{arch}: no torch module named {path}"
            assert sum(p.numel() for p in modules[path].parameters()) * node.count == node.values["params"], path
            assert per_module.get(f"{root}.{path}", 0) * node.count == node.values["flops"], path
            checked += 1
    assert checked == sum(1 for m in modules.values() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)))


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_published_numbers(arch):
    """torchvision's published num_params (exact) and _ops (GMACs to 3 decimals) at 1x3x224x224."""
    params, gmacs = PUBLISHED[arch]
    r = ours(arch)
    assert (r.values["N"], r.values["H"], r.values["W"]) == CASES[arch][1][0], "the defaults are the published shape"
    assert r.totals["params"] == params
    assert round(r.totals["flops"] / 2e9, 3) == gmacs
    assert r.totals["flops"] == PUBLISHED_FLOPS[arch]
    totals, _, _ = torch_counts(arch, CASES[arch][1][0])
    assert (totals["params"], totals["flops"]) == (params, PUBLISHED_FLOPS[arch])


def test_densenet_concatenates_the_whole_list_in_every_layer():
    """DenseNet-121's cats at 224: each layer's torch.cat of all earlier features, plus each block's closing cat.

    A block with n0 input channels, growth 32, L layers on an SxS map writes sum_{j=0..L} (n0 + 32*j)*S*S elements
    in its L + 1 cats; a running concat would write n0*S*S fewer per block (no one-tensor cat in the first layer).
    """
    blocks = [(64, 6, 56), (128, 12, 28), (256, 24, 14), (512, 16, 7)]
    per_layer = sum((n0 + 32 * j) * s * s for n0, layers, s in blocks for j in range(layers))
    closing = sum((n0 + 32 * layers) * s * s for n0, layers, s in blocks)
    running = sum((n0 + 32 * j) * s * s for n0, layers, s in blocks for j in range(1, layers + 1))
    assert (per_layer, closing, running) == (9_094_400, 1_455_104, 10_173_184)
    assert per_layer + closing - running == 64 * 56 * 56 + 128 * 28 * 28 + 256 * 14 * 14 + 512 * 7 * 7 == 376_320
    r = ours("densenet121")
    cats = {node.path: node for node in r.nodes if node.op == "concat"}
    assert len(cats) == 58 + 4
    assert sum(node.values["write"] for path, node in cats.items() if path.endswith("layer1.cat")) == 64 * 56 * 56 + (
        128 * 28 * 28 + 256 * 14 * 14 + 512 * 7 * 7
    )
    assert sum(node.values["write"] for node in cats.values()) == per_layer + closing
    assert cats["features.denseblock3.denselayer24.cat"].output == (1, 256 + 23 * 32, 14, 14)
    assert cats["features.denseblock4.cat"].output == (1, 1024, 7, 7)
    assert torch_counts("densenet121", (1, 224, 224))[0]["cat_calls"] == 58 + 4


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_cli_eval_prints_the_published_params(arch):
    result = subprocess.run(
        [sys.executable, "-m", "symcost.cli", "eval", f"archs/{arch}.yaml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"{PUBLISHED[arch][0]:,}" in result.stdout
